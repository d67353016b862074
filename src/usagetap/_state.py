"""usagetap's process-wide state, in one object, and :func:`reset` that makes it fresh again.

Every module keeps what it configures or remembers here, as attributes of :data:`STATE`, instead of
module globals: a test (or a fork) renews the whole process state in one place. Containers are
cleared in place, so a module may keep a name for one. Locks stay in their modules
(:func:`usagetap._forksafe.module_lock`): a lock is not state, and a forked child gets new ones.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Optional, Union

if TYPE_CHECKING:
    import threading
    from decimal import Decimal

    from ._record import UsageRecord
    from .budgets.guard import BudgetConfig
    from .delivery.pipeline import Pipeline
    from .limits import Account, Limit, LimitLookup, SpendSource
    from .prices import Price
    from .publish import Consumer

__all__ = ["STATE", "State", "on_reset", "reset"]

DEFAULT_EXIT_TIMEOUT = 5.0


class State:
    """What usagetap holds for this process. See :func:`reset` for the fresh values."""

    __slots__ = (
        "accounts",
        "budgets",
        "budgets_env_read",
        "captured",
        "closing_streams",
        "consumers",
        "counts_ended",
        "counts_live",
        "customer_policy",
        "exit_timeout",
        "fee_overrides",
        "impersonated",
        "limit_lookup",
        "limits",
        "limits_on",
        "logged_once",
        "markups",
        "named",
        "open_streams",
        "patched",
        "pipeline",
        "price_overrides",
        "signals_installed",
        "spend_source",
        "started",
    )

    def __init__(self) -> None:
        # _runtime: the pipeline, the configure() parameters that shaped it, start-up and exit
        self.pipeline: Optional[Pipeline] = None
        self.named: dict[str, Any] = {}
        self.exit_timeout = DEFAULT_EXIT_TIMEOUT
        self.started = False
        self.signals_installed = False
        # publish: who receives each finished call
        self.consumers: tuple[Consumer, ...] = ()
        # policy: what happens to a call with no customer
        self.customer_policy = "allow"
        # limits: the limits by customer and period, the limits policy, the spend counted
        self.limits: dict[str, dict[str, Limit]] = {}
        self.limit_lookup: Optional[LimitLookup] = None
        self.limits_on = False
        self.accounts: dict[str, Account] = {}
        self.spend_source: Optional[SpendSource] = None
        # budgets: the shared budget store (None: limits count per process), USAGETAP_BUDGETS read yet
        self.budgets: Optional[BudgetConfig] = None
        self.budgets_env_read = False
        # prices: the user's overrides (models and fees) and markups (replaced whole, never changed in place)
        self.price_overrides: dict[tuple[Optional[str], str], Price] = {}
        self.markups: dict[Optional[str], Union[Decimal, Callable[[UsageRecord], Any]]] = {}
        self.fee_overrides: dict[tuple[Optional[str], str], Decimal] = {}
        # _log: the once-only messages already logged
        self.logged_once: set[str] = set()
        # _stats: the counts of live threads (each its own dict) and of ended ones
        self.counts_live: list[tuple[threading.Thread, dict[str, int]]] = []
        self.captured = itertools.count()  # calls metered: next() counts one, atomically, in C
        self.counts_ended: dict[str, int] = {}
        # instrument: patched classes, hosts taken for a provider, streams being metered
        self.patched: dict[tuple[type, str], Any] = {}
        self.impersonated: dict[str, dict[str, str]] = {}
        self.open_streams: dict[int, Any] = {}
        self.closing_streams: dict[type, bool] = {}


STATE = State()


_RESETS: list[tuple[int, Callable[[], None]]] = []

# the order reset hooks run in: delivery stops first (its errors are still counted), counters last
STOP, UNDO, CLEAR, FORGET = 0, 1, 2, 3


def on_reset(hook: Callable[[], None], stage: int = CLEAR) -> None:
    """Run ``hook`` in :func:`reset`, at ``stage``; a module registers what it alone knows how to undo."""
    _RESETS.append((stage, hook))


def reset() -> None:
    """Shut delivery down and make every piece of state fresh, as in a new process (tests).

    Each module registered, when imported, how to undo what it holds (:func:`on_reset`); a module
    never imported holds nothing. Hosts a live :class:`usagetap.testing.ProviderServer` impersonates
    stay taken: they belong to the server, which gives them back when it stops.
    """
    for _, hook in sorted(_RESETS, key=lambda entry: entry[0]):
        hook()
    fresh = State()
    for name in ("started", "signals_installed", "customer_policy"):
        setattr(STATE, name, getattr(fresh, name))
    STATE.open_streams.clear()
    STATE.closing_streams.clear()
