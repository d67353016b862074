"""Reserve, then settle: a call's worst case is reserved in the budget store before it is sent.

Before the provider is called, every limit that applies to the call reserves the call's worst
case in its period's bucket, all at once and atomically in the store: the input tokens estimated
from the request (its JSON size in bytes / 4, plus 16) plus its output cap (``max_tokens``,
``max_completion_tokens``, ``max_output_tokens``, ``maxTokens``, ``maxOutputTokens`` x ``n``; else
``default_max_output``; 0 for embeddings), priced like a record of the requested model. When
the settled usage plus the live reservations plus this reservation would pass a limit, the call
is refused before it is sent. When the call ends it is settled: the reservation is dropped and
the record's actual usage added; a call that fails is released. A process that dies leaves
reservations that expire after ``ttl`` seconds. Settling runs on the caller's thread when the
call ends (it builds and prices the record there).

The bound: concurrent calls never pass a limit jointly through their reservations; a call
overruns only by its own reservation error (its actual usage minus what it reserved: input
underestimated by bytes / 4, e.g. images, or output past the cap when the request set none), and
a call longer than ``ttl`` loses its reservation while it runs.
"""

from __future__ import annotations

import json
import math
import os
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone, tzinfo
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Optional, Union
from zoneinfo import ZoneInfo

from .. import _stats
from .._forksafe import module_lock
from .._log import INFO, WARNING, internal_error, log_once
from .._state import CLEAR, STATE, on_reset
from ..errors import BudgetExceeded, ConfigurationError
from .base import NANOS, BudgetStore, Charge, Refusal, Seed, SeededStore, StoreUnavailable, Used

if TYPE_CHECKING:
    from ..delivery.intake import Capture
    from ..instrument._calls import Call
    from ..limits import Limit

__all__ = [
    "ON_ERROR",
    "BudgetConfig",
    "Hold",
    "add",
    "configured",
    "default_path",
    "open_store",
    "release",
    "reserve",
    "settle",
]

ON_ERROR = ("fail_open", "fail_closed")
ENV = "USAGETAP_BUDGETS"
ENV_ON_ERROR = "USAGETAP_BUDGETS_ON_ERROR"
DEFAULT_FILE = "budgets.db"
CALENDAR = ("day", "week", "month", "total")
"""The UTC calendar periods seeded from the ledger with a customer's first call (``limits.PERIODS``)."""
INPUT_OVERHEAD = 16
"""Tokens added to every input estimate (the provider's per-request framing)."""
ROLLING_SLOTS = 24
"""A rolling window is summed over this many slots (plus the current one)."""
_KEPT_AFTER = 86_400.0
_OUTPUT_KEYS = ("max_tokens", "max_completion_tokens", "max_output_tokens", "maxTokens", "maxOutputTokens")
_NESTED = ("inferenceConfig", "generationConfig", "generation_config", "config")


@dataclass(frozen=True)
class BudgetConfig:
    """Where budgets are kept and what happens when the store cannot be reached."""

    store: BudgetStore
    on_error: str = "fail_open"
    ttl: float = 300.0
    default_max_output: int = 4096
    seen: set[str] = field(default_factory=set, compare=False, repr=False)
    """Buckets this process has seeded from the ledger (or found seeded by another process)."""


@dataclass
class Hold:
    """A call's reservation: its id, what it reserved, and whether the store took it."""

    id: str
    customer: str
    charges: tuple[Charge, ...]
    store: BudgetStore
    reserved: bool


def open_store(target: Union[str, os.PathLike[str]], *, timeout: float = 2.0) -> BudgetStore:
    """The store ``target`` names: ``redis://…`` / ``rediss://…``, ``postgresql://…`` / ``postgres://…``,
    or a path (SQLite)."""
    text = os.fspath(target)
    scheme = text.split("://", 1)[0].lower() if "://" in text else ""
    if scheme in ("redis", "rediss", "unix"):
        from .redis import RedisBudgets

        return RedisBudgets(text, timeout=timeout)
    if scheme in ("postgresql", "postgres"):
        from ..db.budgets_pg import PostgresBudgets

        return PostgresBudgets(text, timeout=timeout)
    if scheme:
        raise ConfigurationError(
            f"budget store: unknown scheme {scheme!r} (a path, redis://, or postgresql:// is expected)"
        )
    from ..db.budgets import SQLiteBudgets

    return SQLiteBudgets(text, timeout=timeout)


def configure(config: Optional[BudgetConfig]) -> None:
    """Use ``config`` from now on (None: back to the default, opened when next needed)."""
    old, STATE.budgets = STATE.budgets, config
    STATE.budgets_env_read = config is not None
    if old is not None and old is not config:
        try:
            old.store.close()
        except Exception as exc:
            internal_error("budget store", exc)


_lock = module_lock(globals(), "_lock")
_seeding = module_lock(globals(), "_seeding")


def configured() -> Optional[BudgetConfig]:
    """The budget store in use: set by ``limits.use_store()``, else ``USAGETAP_BUDGETS``, else SQLite at
    :func:`default_path` (resolved once). None: no store could be opened; limits count per process."""
    if STATE.budgets is None and not STATE.budgets_env_read:
        with _lock:
            if STATE.budgets is None and not STATE.budgets_env_read:
                on_error = os.environ.get(ENV_ON_ERROR) or "fail_open"
                if on_error not in ON_ERROR:
                    raise ConfigurationError(f"{ENV_ON_ERROR} must be one of {', '.join(ON_ERROR)}")
                target = os.environ.get(ENV)
                STATE.budgets = BudgetConfig(open_store(target), on_error) if target else _default(on_error)
                STATE.budgets_env_read = True
    return STATE.budgets


def default_path() -> str:
    """Where the default budget store lives: next to the ledger (``$USAGETAP_DB`` when it is a path),
    else in the default directory (``./.usagetap``, or a per-user directory when that is read-only)."""
    from .._paths import default_dir

    ledger = os.environ.get("USAGETAP_DB")
    if ledger and "://" not in ledger:
        return os.path.join(os.path.dirname(os.path.abspath(ledger)), DEFAULT_FILE)
    return os.path.join(default_dir(), DEFAULT_FILE)


def _default(on_error: str) -> Optional[BudgetConfig]:
    """The default SQLite store, opened now; None (logged once) when it cannot be opened."""
    from ..db.budgets import SQLiteBudgets

    path = default_path()
    store = SQLiteBudgets(path)
    try:
        store.open()
    except StoreUnavailable as exc:
        log_once(
            WARNING,
            "budgets-default",
            "usagetap: the budget store %s cannot be opened (%s); limits are counted per process "
            "(set USAGETAP_BUDGETS to a writable path or a server)",
            path,
            exc,
        )
        return None
    return BudgetConfig(store, on_error)


# -- buckets -----------------------------------------------------------------------


def window_of(period: str, now: datetime, tz: str) -> tuple[Optional[datetime], Optional[datetime]]:
    """``[start, end)`` of the calendar ``period`` containing ``now`` in time zone ``tz``."""
    zone: tzinfo = timezone.utc if tz == "UTC" else ZoneInfo(tz)
    local = now.astimezone(zone)
    day = local.replace(hour=0, minute=0, second=0, microsecond=0, tzinfo=None)
    if period == "day":
        start, end = day, day + timedelta(days=1)
    elif period == "week":
        start = day - timedelta(days=day.weekday())
        end = start + timedelta(days=7)
    elif period == "month":
        start = day.replace(day=1)
        end = (
            start.replace(year=start.year + 1, month=1)
            if start.month == 12
            else start.replace(month=start.month + 1)
        )
    else:
        return None, None
    return start.replace(tzinfo=zone), end.replace(tzinfo=zone)


def charge_for(
    customer: str, limit: Limit, now: datetime, tokens: int = 0, nanos: int = 0
) -> tuple[Charge, Optional[datetime]]:
    """The charge of ``limit`` at ``now`` (its bucket and window) and the start of its period."""
    scope = f"{{{customer}}}|{limit.feature or ''}"
    max_nanos = None if limit.max_cost is None else int(limit.max_cost * NANOS)
    if limit.period == "rolling":
        assert limit.window is not None
        slot = limit.window.total_seconds() / ROLLING_SLOTS
        index = math.floor(now.timestamp() / slot)
        name = f"{scope}|rolling:{limit.window.total_seconds():g}"
        buckets = tuple(f"{name}|{i}" for i in range(index - ROLLING_SLOTS, index + 1))
        expires = (index + ROLLING_SLOTS + 2) * slot
        since = datetime.fromtimestamp((index - ROLLING_SLOTS) * slot, timezone.utc)
        charge = Charge(buckets[-1], buckets, tokens, nanos, limit.max_tokens, max_nanos, expires)
        return charge, since
    bucket, start, kept = _calendar(scope, limit.period, limit.tz, now)
    return Charge(bucket, (bucket,), tokens, nanos, limit.max_tokens, max_nanos, kept), start


def _calendar(
    scope: str, period: str, tz: str, now: datetime
) -> tuple[str, Optional[datetime], Optional[float]]:
    """``scope``'s bucket for the calendar ``period`` containing ``now``, its start, when it may go."""
    start, end = window_of(period, now, tz)
    bucket = f"{scope}|{period}|{tz}|{'total' if start is None else start.isoformat()}"
    return bucket, start, None if end is None else end.timestamp() + _KEPT_AFTER


# -- past spend ------------------------------------------------------------------------


def seed(config: BudgetConfig, customer: str, limits: Sequence[Limit], now: datetime) -> None:
    """Seed the buckets of ``customer`` this process has not seen (its UTC calendar periods and its
    limits' periods; not a feature's or a rolling window's) with its ledger spend before ``now``.

    The store adds a bucket's seed once, whichever process comes first, so past spend counts once.
    """
    store = config.store
    if not isinstance(store, SeededStore) or not _unseen(config, customer, limits, now):
        return
    with _seeding:  # the process's other calls wait for the seed rather than reserve without it
        fresh = _unseen(config, customer, limits, now)
        if fresh:
            _seed(config, store, customer, fresh, now)


def _unseen(
    config: BudgetConfig, customer: str, limits: Sequence[Limit], now: datetime
) -> dict[str, tuple[Optional[datetime], Optional[float]]]:
    """The buckets to seed this process has not seen yet: bucket -> (start, expires)."""
    fresh: dict[str, tuple[Optional[datetime], Optional[float]]] = {}
    for period, tz in [*((p, "UTC") for p in CALENDAR), *_seedable(limits)]:
        bucket, start, expires = _calendar(f"{{{customer}}}|", period, tz, now)
        if bucket not in config.seen:
            fresh.setdefault(bucket, (start, expires))
    return fresh


def _seed(
    config: BudgetConfig,
    store: SeededStore,
    customer: str,
    fresh: dict[str, tuple[Optional[datetime], Optional[float]]],
    now: datetime,
) -> None:
    source = STATE.spend_source
    try:
        past = None if source is None else source.spent(customer, [s for s, _ in fresh.values()], now)
    except Exception as exc:
        internal_error("limits ledger", exc)
        config.seen.update(fresh)  # counted once; the budget goes on without the past spend
        return
    if past is None:
        if source is None:  # else the spend source was not ready yet: read it again next time
            log_once(INFO, "limits-no-ledger", "usagetap: no local ledger is configured; budgets start at 0")
            config.seen.update(fresh)
        return
    seeds = [
        Seed(bucket, Used(calls, tokens, math.ceil(cost * NANOS), unpriced), expires)
        for (bucket, (_, expires)), (calls, tokens, cost, unpriced) in zip(fresh.items(), past, strict=True)
    ]
    store.seed(seeds)
    config.seen.update(fresh)


def _seedable(limits: Sequence[Limit]) -> list[tuple[str, str]]:
    return [(lim.period, lim.tz) for lim in limits if lim.feature is None and lim.period != "rolling"]


# -- estimate ----------------------------------------------------------------------


def estimate(call: Call, default_max_output: int) -> tuple[int, int]:
    """``(input, output)`` tokens the call may use at most, from its request (see the module doc)."""
    body = call.request
    if isinstance(body, (bytes, bytearray)):
        size = len(body)
        try:
            parsed: Any = json.loads(body)
        except ValueError:
            parsed = None
        body = parsed if isinstance(parsed, Mapping) else None
    elif isinstance(body, Mapping):
        size = len(json.dumps(body, default=str, ensure_ascii=False).encode())
    else:
        size = 0
    output = _output_cap(body) if isinstance(body, Mapping) else None
    if output is None:
        output = 0 if call.operation == "embeddings" else default_max_output
    choices = body.get("n") if isinstance(body, Mapping) else None
    if isinstance(choices, int) and not isinstance(choices, bool) and choices > 1:
        output *= choices
    return size // 4 + INPUT_OVERHEAD, output


def _output_cap(body: Mapping[str, Any]) -> Optional[int]:
    for mapping in (body, *(body.get(key) for key in _NESTED)):
        if isinstance(mapping, Mapping):
            for key in _OUTPUT_KEYS:
                value = mapping.get(key)
                if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
                    return value
    return None


def _price(provider: str, model: Optional[str], input_tokens: int, output_tokens: int) -> int:
    """Nano-dollars of that usage of ``model`` (0 when it has no price)."""
    if model is None:
        return 0
    from .._cost import price_record
    from .._record import UsageRecord

    record = UsageRecord(
        "budget-estimate",
        datetime.now(timezone.utc),
        None,
        provider,
        model,
        model,
        "chat",
        input_tokens,
        output_tokens,
    )
    cost = price_record(record).cost
    return 0 if cost is None else math.ceil(cost * NANOS)


# -- reserve, settle, release ----------------------------------------------------------


def reserve(config: BudgetConfig, call: Call, customer: str, limits: Sequence[Limit]) -> Hold:
    """Reserve ``call``'s worst case under every limit, or raise :class:`BudgetExceeded` (not sent)."""
    input_tokens, output_tokens = estimate(call, config.default_max_output)
    tokens = input_tokens + output_tokens
    nanos = (
        _price(call.provider, call.request_model, input_tokens, output_tokens)
        if any(limit.max_cost is not None for limit in limits)
        else 0
    )
    now = datetime.now(timezone.utc)
    charged = [charge_for(customer, limit, now, tokens, nanos) for limit in limits]
    hold = Hold(uuid.uuid4().hex, customer, tuple(c for c, _ in charged), config.store, True)
    try:
        seed(config, customer, limits, now)
        refusal = config.store.reserve(hold.id, hold.charges, config.ttl)
    except Exception as exc:
        unavailable(config, "reserve", exc, customer)
        hold.reserved = False
        return hold
    if refusal is not None:
        raise _exceeded(customer, limits[refusal.index], charged[refusal.index][1], refusal, tokens, nanos)
    return hold


def add(config: BudgetConfig, customer: str, limits: Sequence[Limit], capture: Capture) -> None:
    """Add usage recorded by hand (``usagetap.record()``, never refused) to the limits' buckets."""
    now = datetime.now(timezone.utc)
    charges = tuple(charge_for(customer, limit, now)[0] for limit in limits)
    try:
        seed(config, customer, limits, now)
    except Exception as exc:
        _failed("seed", exc, customer)
    settle(Hold(uuid.uuid4().hex, customer, charges, config.store, False), capture)


def settle(hold: Hold, capture: Capture) -> None:
    """Replace ``hold``'s reservation with the call's actual usage (never raises)."""
    try:
        record = capture.record()
        if record is None:
            release(hold)
            return
        cost = record.cost
        actual = Used(
            calls=1,
            tokens=record.input_tokens + record.output_tokens,
            nanos=0 if cost is None else math.ceil(cost * NANOS),
            unpriced=1 if cost is None else 0,
        )
        hold.store.settle(hold.id, hold.charges, actual)
    except Exception as exc:
        _failed("settle", exc, hold.customer)


def release(hold: Hold) -> None:
    """Drop ``hold``'s reservation: the call was not billed (never raises)."""
    if not hold.reserved:
        return
    try:
        hold.store.release(hold.id, hold.charges)
    except Exception as exc:
        _failed("release", exc, hold.customer)


def unavailable(config: BudgetConfig, what: str, exc: Exception, customer: str) -> None:
    """The store failed before a call: count and log it, then let the call go (``fail_open``) or refuse it."""
    _failed(what, exc, customer)
    if config.on_error == "fail_closed":
        raise BudgetExceeded(
            f"usagetap: the budget store is unavailable and on_error='fail_closed': customer {customer!r}'s "
            "call was not made",
            customer=customer,
        ) from None


def _failed(what: str, exc: Exception, customer: str) -> None:
    _stats.incr("budget_store_errors")
    if isinstance(exc, StoreUnavailable):
        log_once(
            WARNING,
            f"budget-store:{what}",
            "usagetap: the budget store failed to %s (%s); see stats()['budget_store_errors']",
            what,
            exc,
        )
    else:
        internal_error("budget store", exc)


def _exceeded(
    customer: str, limit: Limit, since: Optional[datetime], refusal: Refusal, tokens: int, nanos: int
) -> BudgetExceeded:
    used = refusal.used
    cost = Decimal(used.nanos) / NANOS
    held = f"; calls in flight hold {used.held_tokens} tokens (${Decimal(used.held_nanos) / NANOS})"
    when = "in total" if since is None else f"this {limit.period} (since {since.isoformat()})"
    scope = "" if limit.feature is None else f" for feature {limit.feature!r}"
    figures = f"spent ${cost} of its ${limit.max_cost} limit" if limit.max_cost is not None else ""
    if limit.max_tokens is not None:
        figures += (" and " if figures else "") + f"used {used.tokens} of its {limit.max_tokens} token limit"
    return BudgetExceeded(
        f"usagetap: customer {customer!r} has {figures}{scope} {when}{held}; this call may use up to "
        f"{tokens} tokens (${Decimal(nanos) / NANOS}); the call was not made",
        customer=customer,
        period=limit.period,
        period_start=since,
        max_cost=limit.max_cost,
        max_tokens=limit.max_tokens,
        cost=cost,
        tokens=used.tokens,
    )


def _forget() -> None:
    configure(None)
    STATE.budgets_env_read = False


on_reset(_forget, CLEAR)
