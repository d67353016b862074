"""Budget guard (opt-in): refuse a customer's call before it reaches the provider once a limit is reached.

::

    usagetap.limits.set("org_123", max_cost=50, period="month")        # USD
    usagetap.limits.set("org_123", max_tokens=2_000_000, period="day")
    usagetap.limits.set(lambda customer: plans.limit_for(customer))    # a Limit, a list of them, or None

A wrapped call for a customer whose spend in the period has reached a limit
raises :class:`usagetap.BudgetExceeded` (with the figures) and is not sent.

Budgets live in a store every process of the machine shares: by default a
SQLite file next to the ledger (``budgets.db``; see :func:`use_store` and
``USAGETAP_BUDGETS`` for another path, ``redis://…`` or ``postgresql://…``
for a fleet). Each call reserves its worst case there before it is sent and
settles to its actual usage after, so concurrent calls, in any process, never
pass a limit together (see :mod:`usagetap.budgets.guard` for the bound). The
spend the local ledger held before the store first saw a customer's period is
added to it once. Tokens are ``input_tokens + output_tokens``; calls with no
price add no cost. Periods are calendar periods in UTC: ``"day"``, ``"week"``
(from Monday), ``"month"``, or ``"total"``; limits may also be per customer x
``feature``, in a time zone (``tz=``), or over a rolling ``window``.

When no store can be opened (logged once), limits fall back to counting per
process: spend = the local ledger (read once per customer) + every call this
process has made for the customer since, each call checked before it starts;
only UTC calendar limits without a feature are enforced then. Limits fail
open: if the ledger cannot be read, or a limits lookup raises, the error is
logged and the call goes ahead.
"""

from __future__ import annotations

import collections
import os
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import TYPE_CHECKING, Optional, Protocol, Union
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from ._context import customer_id
from ._forksafe import module_lock
from ._log import INFO, WARNING, internal_error, log_once
from ._state import CLEAR, STATE, on_reset
from .errors import BudgetExceeded
from .prices import Number, as_decimal

if TYPE_CHECKING:
    from .budgets.base import BudgetStore
    from .budgets.guard import BudgetConfig
    from .delivery.intake import Capture
    from .instrument._calls import Call

__all__ = ["PERIODS", "Limit", "Spend", "SpendSource", "clear", "get", "set", "spent", "use_store"]

PERIODS = ("day", "week", "month", "total")

LimitLookup = Callable[[str], Union["Limit", Iterable["Limit"], None]]
"""A function giving a customer's limits (``limits.set(lookup)``): a :class:`Limit`, several, or None."""

PastSpend = tuple[int, int, Decimal, int]
"""What a customer spent in a window before this process counted: calls, tokens, cost, unpriced calls."""


class SpendSource(Protocol):
    """Where spend from before this process is read (the local ledger), given at ``configure()``."""

    def spent(
        self, customer: str, starts: Sequence[Optional[datetime]], until: datetime
    ) -> Optional[list[PastSpend]]:
        """``customer``'s spend in each window ``[start, until)`` (a None start: from the beginning),
        in one read; None when there is no record of past spend."""
        ...


@dataclass(frozen=True, init=False)
class Limit:
    """At most ``max_cost`` USD and/or ``max_tokens`` tokens per ``period``.

    ``feature``: the limit covers only the customer's calls with that ``feature`` dimension (a
    customer x feature budget). ``tz``: the time zone of the calendar periods (default UTC).
    ``period="rolling"`` with ``window=timedelta(...)``: the last ``window`` (summed over 24
    slots; usage up to one slot older may still count). Both need a budget store (the default one will do).
    """

    max_cost: Optional[Decimal]
    max_tokens: Optional[int]
    period: str
    feature: Optional[str]
    tz: str
    window: Optional[timedelta]

    def __init__(
        self,
        max_cost: Optional[Number] = None,
        max_tokens: Optional[int] = None,
        period: str = "month",
        *,
        feature: Optional[str] = None,
        tz: str = "UTC",
        window: Optional[timedelta] = None,
    ) -> None:
        if max_cost is None and max_tokens is None:
            raise ValueError("a limit needs max_cost and/or max_tokens")
        if max_tokens is not None and (
            isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 0
        ):
            raise ValueError(f"max_tokens must be an int >= 0, got {max_tokens!r}")
        if period not in (*PERIODS, "rolling"):
            raise ValueError(f"period must be one of {', '.join(PERIODS)}, rolling; got {period!r}")
        if (period == "rolling") != (window is not None):
            raise ValueError("window= (a timedelta) goes with period='rolling', and only with it")
        if window is not None and (not isinstance(window, timedelta) or window <= timedelta(0)):
            raise ValueError(f"window must be a positive timedelta, got {window!r}")
        if feature is not None and not isinstance(feature, str):
            raise ValueError(f"feature must be a str, got {type(feature).__name__}")
        try:
            if tz != "UTC":  # no tz database needed for UTC (Windows has none without tzdata)
                ZoneInfo(tz)
        except (ZoneInfoNotFoundError, ValueError, TypeError) as exc:
            raise ValueError(f"tz must be an IANA time zone name, got {tz!r}") from exc
        object.__setattr__(self, "max_cost", None if max_cost is None else as_decimal(max_cost, "max_cost"))
        object.__setattr__(self, "max_tokens", max_tokens)
        object.__setattr__(self, "period", period)
        object.__setattr__(self, "feature", feature)
        object.__setattr__(self, "tz", tz)
        object.__setattr__(self, "window", window)

    @property
    def key(self) -> str:
        """What a second ``limits.set()`` replaces: the same period, feature, time zone and window."""
        if self.feature is None and self.tz == "UTC" and self.window is None:
            return self.period
        return f"{self.period}|{self.feature or ''}|{self.tz}|{self.window or ''}"

    @property
    def per_process(self) -> bool:
        """Whether per-process counting (no budget store) enforces it: a UTC calendar period, no feature."""
        return self.feature is None and self.tz == "UTC" and self.window is None


@dataclass(frozen=True)
class Spend:
    """What a customer spent in a period so far (the budget store's settled usage, past spend included)."""

    customer: str
    period: str
    since: Optional[datetime]
    calls: int
    tokens: int
    cost: Decimal
    unpriced_calls: int


# -- configuration -------------------------------------------------------------

_lock = module_lock(globals(), "_lock")


def set(
    customer: Union[str, int, LimitLookup],
    *,
    max_cost: Optional[Number] = None,
    max_tokens: Optional[int] = None,
    period: str = "month",
    feature: Optional[str] = None,
    tz: str = "UTC",
    window: Optional[timedelta] = None,
) -> None:
    """Limit ``customer``'s spend per ``period``, or install a lookup (a callable) for every customer.

    A second ``set()`` for the same customer and period replaces the first;
    limits for different periods all apply. A lookup is called with the
    customer id before each of its calls (keep it cheap: cache what it looks
    up) and returns a :class:`Limit`, a list of them, or None; it is used for
    customers with no limit set by id::

        usagetap.limits.set("org_trial", max_tokens=200_000, period="day")
        usagetap.limits.set(lambda org: usagetap.limits.Limit(max_cost=budget_of(org), period="month"))
        try:
            client.chat.completions.create(...)
        except usagetap.BudgetExceeded as exc:
            return f"This {exc.period}'s budget is used up ({exc.tokens} tokens, ${exc.cost})"
    """
    if callable(customer):
        if (max_cost, max_tokens, period, feature, tz, window) != (None, None, "month", None, "UTC", None):
            raise TypeError("limits.set(lookup) takes no other arguments: the lookup returns Limit objects")
        with _lock:
            STATE.limit_lookup = customer
            STATE.limits_on = True
        _count_spend()
        return
    who = _required(customer, "limits.set()")
    limit = Limit(max_cost, max_tokens, period, feature=feature, tz=tz, window=window)
    with _lock:
        STATE.limits[who] = {**STATE.limits.get(who, {}), limit.key: limit}
        STATE.limits_on = True
    _count_spend()


def clear(customer: Union[str, int, None] = None) -> None:
    """Remove ``customer``'s limits, or with no argument every limit, the lookup and all counted spend."""
    customer = customer_id(customer, "limits.clear()")
    with _lock:
        if customer is None:
            STATE.limits.clear()
            STATE.limit_lookup = None
            STATE.accounts.clear()
        else:
            STATE.limits.pop(customer, None)
        STATE.limits_on = bool(STATE.limits) or STATE.limit_lookup is not None
    if not STATE.limits_on:
        from .publish import unregister

        unregister(_COUNT_SPEND)


def get(customer: Union[str, int]) -> list[Limit]:
    """The limits that apply to ``customer``: set by id, else from the lookup."""
    customer = _required(customer, "limits.get()")
    explicit = STATE.limits.get(customer)
    if explicit:
        return list(explicit.values())
    lookup = STATE.limit_lookup
    if lookup is None:
        return []
    found = lookup(customer)
    if found is None:
        return []
    if isinstance(found, Limit):
        return [found]
    limits = list(found)
    for limit in limits:
        if not isinstance(limit, Limit):
            raise TypeError(f"a limits lookup must return Limit objects, got {type(limit).__name__}")
    return limits


def enabled() -> bool:
    """Whether any limit or lookup is set (nothing is counted otherwise)."""
    return STATE.limits_on


# -- spend -----------------------------------------------------------------------


def _window(period: str, now: datetime) -> tuple[Optional[datetime], Optional[datetime]]:
    """``[start, end)`` of the calendar period containing ``now`` (UTC); None for an open end."""
    day = now.astimezone(timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0)
    if period == "day":
        return day, day + timedelta(days=1)
    if period == "week":
        start = day - timedelta(days=day.weekday())
        return start, start + timedelta(days=7)
    if period == "month":
        start = day.replace(day=1)
        end = (
            start.replace(year=start.year + 1, month=1)
            if start.month == 12
            else start.replace(month=start.month + 1)
        )
        return start, end
    return None, None


@dataclass
class _PeriodSpend:
    """What a customer spent in one calendar period ``[start, end)``."""

    start: Optional[datetime]
    end: Optional[datetime]
    calls: int = 0
    tokens: int = 0
    cost: Decimal = Decimal(0)
    unpriced: int = 0

    def holds(self, ts: datetime) -> bool:
        return (self.start is None or ts >= self.start) and (self.end is None or ts < self.end)


@dataclass
class Account:
    """One customer's spend: per period, and the calls not yet added to it (or not yet priced)."""

    customer: str
    since: datetime
    periods: dict[str, _PeriodSpend]
    pending: collections.deque[Capture] = field(default_factory=collections.deque)
    uncosted: collections.deque[Capture] = field(default_factory=collections.deque)
    lock: threading.Lock = field(default_factory=threading.Lock)
    seeded: bool = False

    def update(self, now: datetime, with_cost: bool) -> None:
        """Read past spend once, roll finished periods over and add pending calls; add their costs
        once priced.

        Calls the intake has priced are costed as they come (oldest first); ``with_cost`` prices
        the rest here, on the caller's thread.
        """
        if not self.seeded:
            self.seeded = True
            _seed(self)
        for period, spend in self.periods.items():
            if spend.end is not None and now >= spend.end:
                start, end = _window(period, now)
                self.periods[period] = _PeriodSpend(start, end)
        pending = self.pending
        while pending:
            capture = pending.popleft()
            record = capture.record(price=False)
            if record is None or record.timestamp < self.since:
                continue
            tokens = record.input_tokens + record.output_tokens
            for spend in self.periods.values():
                if spend.holds(record.timestamp):
                    spend.calls += 1
                    spend.tokens += tokens
            self.uncosted.append(capture)
        if self.uncosted:
            self._add_costs(with_cost)

    def _add_costs(self, price_now: bool) -> None:
        uncosted = self.uncosted
        while uncosted and (price_now or uncosted[0].priced):
            record = uncosted.popleft().record()
            if record is None:
                continue
            for spend in self.periods.values():
                if spend.holds(record.timestamp):
                    if record.cost is None:
                        spend.unpriced += 1
                    else:
                        spend.cost += record.cost


def _account(customer: str) -> Account:
    account = STATE.accounts.get(customer)
    if account is not None:
        return account
    with _lock:
        account = STATE.accounts.get(customer)
        if account is None:
            now = datetime.now(timezone.utc)
            periods = {period: _PeriodSpend(*_window(period, now)) for period in PERIODS}
            account = STATE.accounts[customer] = Account(customer, now, periods)
    return account


class _CountSpend:
    """The consumer of finished calls that counts each towards its customer's spend."""

    def on_end(self, capture: Capture) -> None:
        """Queue the call on its customer's account (caller's thread: an append, nothing more)."""
        customer = capture.customer
        if customer is not None and STATE.budgets is None:  # a budget store counts it when it settles
            account = STATE.accounts.get(customer)
            if account is not None:
                account.pending.append(capture)


_COUNT_SPEND = _CountSpend()


def _count_spend() -> None:
    from .publish import register

    register(_COUNT_SPEND)


def spent(customer: Union[str, int], period: str = "month", *, feature: Optional[str] = None) -> Spend:
    """What ``customer`` has spent in the current ``period`` (prices the calls not priced yet).

    With a budget store: the usage settled there by every process (``feature``: in the customer x
    feature budget; the period in the time zone of the customer's limit for it, else UTC).

    ::

        spend = usagetap.limits.spent("org_123", period="month")
        print(f"{spend.calls} calls, {spend.tokens} tokens, ${spend.cost} since {spend.since:%Y-%m-%d}")
    """
    if period not in PERIODS:
        raise ValueError(f"period must be one of {', '.join(PERIODS)}; got {period!r}")
    customer = _required(customer, "limits.spent()")
    from .budgets import guard

    config = guard.configured()
    if config is not None:
        return _stored_spend(config, customer, period, feature)
    account = _account(customer)
    with account.lock:
        account.update(datetime.now(timezone.utc), with_cost=True)
        spend = account.periods[period]
        return Spend(customer, period, spend.start, spend.calls, spend.tokens, spend.cost, spend.unpriced)


def _stored_spend(config: BudgetConfig, customer: str, period: str, feature: Optional[str]) -> Spend:
    from .budgets import guard
    from .budgets.base import NANOS
    from .budgets.guard import charge_for

    tz = next(
        (limit.tz for limit in get(customer) if limit.period == period and limit.feature == feature),
        "UTC",
    )
    now = datetime.now(timezone.utc)
    charge, since = charge_for(customer, Limit(max_tokens=0, period=period, feature=feature, tz=tz), now)
    guard.seed(config, customer, get(customer), now)
    used = config.store.used(charge.window)
    return Spend(customer, period, since, used.calls, used.tokens, Decimal(used.nanos) / NANOS, used.unpriced)


def use_store(
    target: Union[str, os.PathLike[str], BudgetStore, None],
    *,
    on_error: str = "fail_open",
    ttl: float = 300.0,
    timeout: float = 2.0,
    default_max_output: int = 4096,
) -> None:
    """Keep budgets in a store shared by processes (and machines): reserve each call's worst case
    there before it is sent, settle it to the actual usage after (see :mod:`usagetap.budgets.guard`).

    ``target``: a path (SQLite: one machine's processes), ``redis://…`` or ``postgresql://…`` (a
    fleet), a store object, or None (back to the default: ``USAGETAP_BUDGETS``, else SQLite next to
    the ledger). ``USAGETAP_BUDGETS`` sets it
    from the environment (``USAGETAP_BUDGETS_ON_ERROR`` the policy). ``on_error``: ``"fail_open"``
    (the call goes ahead when the store cannot be reached) or ``"fail_closed"`` (it raises
    :class:`usagetap.BudgetExceeded`); either way it is counted (``stats()["budget_store_errors"]``)
    and logged once, and ``timeout`` (seconds) bounds every wait on the store. ``ttl``: seconds after
    which a reservation left by a crashed process expires (longer than your longest call).
    ``default_max_output``: the output tokens reserved for a request that sets no cap::

        usagetap.limits.use_store("redis://budgets.internal:6379/0", on_error="fail_closed")
        usagetap.limits.set("org_123", max_cost=50, period="month", tz="Europe/Paris")
        usagetap.limits.set("org_123", max_tokens=100_000, period="day", feature="chat")
    """
    from .budgets import guard

    if on_error not in guard.ON_ERROR:
        raise ValueError(f"on_error must be one of {', '.join(guard.ON_ERROR)}; got {on_error!r}")
    if not ttl > 0 or not timeout > 0:
        raise ValueError("ttl and timeout must be > 0 seconds")
    if target is None:
        guard.configure(None)
        return
    store = guard.open_store(target, timeout=timeout) if isinstance(target, (str, os.PathLike)) else target
    guard.configure(guard.BudgetConfig(store, on_error, ttl, default_max_output))


def check(customer: Optional[str], call: Optional[Call] = None) -> None:
    """Raise :class:`usagetap.BudgetExceeded` if ``customer`` has reached one of its limits.

    With a budget store, reserve ``call``'s worst case there (``call.hold``) or refuse it.
    """
    if customer is None or not STATE.limits_on:
        return
    try:
        limits = get(customer)
    except Exception as exc:
        internal_error("limits lookup", exc)
        return
    if not limits:
        return
    from .budgets import guard

    config = guard.configured()
    if config is not None and call is not None:
        feature = _feature(call)
        applying = [limit for limit in limits if limit.feature is None or limit.feature == feature]
        if applying:
            call.hold = guard.reserve(config, call, customer, applying)
        return
    if not all(limit.per_process for limit in limits):
        log_once(
            WARNING,
            "limits-need-store",
            "usagetap: limits with feature=, tz= or period='rolling' need a budget store, and none "
            "could be opened (see USAGETAP_BUDGETS); they are not enforced",
        )
        limits = [limit for limit in limits if limit.per_process]
    account = _account(customer)
    with account.lock:
        account.update(datetime.now(timezone.utc), any(limit.max_cost is not None for limit in limits))
        for limit in limits:
            spend = account.periods[limit.period]
            over_cost = limit.max_cost is not None and spend.cost >= limit.max_cost
            over_tokens = limit.max_tokens is not None and spend.tokens >= limit.max_tokens
            if over_cost or over_tokens:
                account.update(datetime.now(timezone.utc), with_cost=True)
                raise _exceeded(customer, limit, spend, "cost" if over_cost else "tokens")


def recorded(capture: Capture) -> None:
    """Add usage recorded by hand (``usagetap.record()``) to the budget store, when one is set."""
    customer = capture.customer
    if customer is None or not STATE.limits_on:
        return
    from .budgets import guard

    config = guard.configured()
    if config is None:
        return
    record = capture.record()
    if record is None:
        return
    feature = record.dimensions.get("feature")
    applying = [
        limit
        for limit in get(customer)
        if limit.feature is None or (feature is not None and limit.feature == str(feature))
    ]
    if applying:
        guard.add(config, customer, applying, capture)


def _feature(call: Call) -> Optional[str]:
    """The call's ``feature`` dimension (its scope's, else its client's)."""
    for dimensions in (call.scope.dimensions, call.binding.dimensions):
        value = dimensions.get("feature") if dimensions else None
        if value is not None:
            return str(value)
    return None


def _watch(customer: Optional[str]) -> None:
    """Open ``customer``'s account when a limit applies to it, so that usage recorded from now on
    (``usagetap.record()``, which is never refused) counts toward it."""
    if customer is None or not STATE.limits_on:
        return
    from .budgets import guard

    try:
        if get(customer) and guard.configured() is None:
            _account(customer)
    except Exception as exc:
        internal_error("limits lookup", exc)


def _required(customer: object, where: str) -> str:
    """A customer id by the one rule of :func:`usagetap._context.customer_id`; None is refused here."""
    who = customer_id(customer, where)
    if who is None:
        raise TypeError(f"{where}: customer id must be a str or an int, got None")
    return who


def _exceeded(customer: str, limit: Limit, spend: _PeriodSpend, what: str) -> BudgetExceeded:
    since = "in total" if spend.start is None else f"this {limit.period} (since {spend.start.isoformat()})"
    if what == "cost":
        figures = f"spent ${spend.cost} of its ${limit.max_cost} limit"
    else:
        figures = f"used {spend.tokens} of its {limit.max_tokens} token limit"
    return BudgetExceeded(
        f"usagetap: customer {customer!r} has {figures} {since}; the call was not made",
        customer=customer,
        period=limit.period,
        period_start=spend.start,
        max_cost=limit.max_cost,
        max_tokens=limit.max_tokens,
        cost=spend.cost,
        tokens=spend.tokens,
    )


# -- past spend ------------------------------------------------------------------


def _seed(account: Account) -> None:
    """Add what the spend source holds for the customer before ``account.since`` (one read, once)."""
    source = STATE.spend_source
    try:
        past = (
            None
            if source is None
            else source.spent(account.customer, [p.start for p in account.periods.values()], account.since)
        )
    except Exception as exc:
        internal_error("limits ledger", exc)
        return
    if past is None:
        log_once(
            INFO,
            "limits-no-ledger",
            "usagetap: no local ledger is configured; budget limits count this process's calls only",
        )
        return
    for spend, (calls, tokens, cost, unpriced) in zip(account.periods.values(), past, strict=True):
        spend.calls += calls
        spend.tokens += tokens
        spend.cost += cost
        spend.unpriced += unpriced


on_reset(clear, CLEAR)
