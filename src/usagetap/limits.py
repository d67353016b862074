"""Budget guard (opt-in): refuse a customer's call before it reaches the provider once a limit is reached.

::

    usagetap.limits.set("org_123", max_cost=50, period="month")        # USD
    usagetap.limits.set("org_123", max_tokens=2_000_000, period="day")
    usagetap.limits.set(lambda customer: plans.limit_for(customer))    # a Limit, a list of them, or None

A wrapped call for a customer whose spend in the period has reached a limit
raises :class:`usagetap.BudgetExceeded` (with the figures) and is not sent.

Spend = the local ledger (read once per customer, when a limit first applies
to it) + every call this process has made for the customer since (counted
whether delivered yet or not). Calls running at the same time are each
checked before they start, so together they can overshoot a limit by their
own usage. Tokens are ``input_tokens + output_tokens``; calls with no price
add no cost. Periods are calendar periods in UTC: ``"day"``, ``"week"``
(from Monday), ``"month"``, or ``"total"``.

Limits are per process and fail open: if the ledger cannot be read, or a
limit policy raises, the error is logged and the call goes ahead.
"""

from __future__ import annotations

import collections
import os
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Optional, Union, cast

from ._forksafe import SQLITE
from ._log import INFO, internal_error, log_once
from .context import customer_id
from .errors import BudgetExceeded
from .prices import Number, as_decimal

if TYPE_CHECKING:
    from .delivery import Item
    from .record import UsageRecord

__all__ = ["PERIODS", "Limit", "Spend", "clear", "get", "set", "spent"]

PERIODS = ("day", "week", "month", "total")

Policy = Callable[[str], Union["Limit", Iterable["Limit"], None]]


@dataclass(frozen=True, init=False)
class Limit:
    """At most ``max_cost`` USD and/or ``max_tokens`` tokens per ``period``."""

    max_cost: Optional[Decimal]
    max_tokens: Optional[int]
    period: str

    def __init__(
        self, max_cost: Optional[Number] = None, max_tokens: Optional[int] = None, period: str = "month"
    ) -> None:
        if max_cost is None and max_tokens is None:
            raise ValueError("a limit needs max_cost and/or max_tokens")
        if max_tokens is not None and (
            isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 0
        ):
            raise ValueError(f"max_tokens must be an int >= 0, got {max_tokens!r}")
        if period not in PERIODS:
            raise ValueError(f"period must be one of {', '.join(PERIODS)}; got {period!r}")
        object.__setattr__(self, "max_cost", None if max_cost is None else as_decimal(max_cost, "max_cost"))
        object.__setattr__(self, "max_tokens", max_tokens)
        object.__setattr__(self, "period", period)


@dataclass(frozen=True)
class Spend:
    """What a customer spent in a period so far: the ledger plus this process's calls since."""

    customer: str
    period: str
    since: Optional[datetime]
    calls: int
    tokens: int
    cost: Decimal
    unpriced_calls: int


# -- configuration -------------------------------------------------------------

_lock = threading.Lock()
_explicit: dict[str, dict[str, Limit]] = {}
_policy: Optional[Policy] = None
_enabled = False


def set(
    customer: Union[str, int, Policy],
    *,
    max_cost: Optional[Number] = None,
    max_tokens: Optional[int] = None,
    period: str = "month",
) -> None:
    """Limit ``customer``'s spend per ``period``, or install a policy (a callable) for every customer.

    A second ``set()`` for the same customer and period replaces the first;
    limits for different periods all apply. A policy is called with the
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
    global _policy, _enabled
    if callable(customer):
        if max_cost is not None or max_tokens is not None or period != "month":
            raise TypeError("limits.set(policy) takes no other arguments: the policy returns Limit objects")
        with _lock:
            _policy = customer
            _enabled = True
        return
    who = _required(customer, "limits.set()")
    limit = Limit(max_cost=max_cost, max_tokens=max_tokens, period=period)
    with _lock:
        _explicit[who] = {**_explicit.get(who, {}), period: limit}
        _enabled = True


def clear(customer: Union[str, int, None] = None) -> None:
    """Remove ``customer``'s limits, or with no argument every limit, the policy and all counted spend."""
    global _policy, _enabled
    customer = customer_id(customer, "limits.clear()")
    with _lock:
        if customer is None:
            _explicit.clear()
            _policy = None
            _accounts.clear()
        else:
            _explicit.pop(customer, None)
        _enabled = bool(_explicit) or _policy is not None


def get(customer: Union[str, int]) -> list[Limit]:
    """The limits that apply to ``customer``: set by id, else from the policy."""
    customer = _required(customer, "limits.get()")
    explicit = _explicit.get(customer)
    if explicit:
        return list(explicit.values())
    policy = _policy
    if policy is None:
        return []
    found = policy(customer)
    if found is None:
        return []
    if isinstance(found, Limit):
        return [found]
    limits = list(found)
    for limit in limits:
        if not isinstance(limit, Limit):
            raise TypeError(f"a limits policy must return Limit objects, got {type(limit).__name__}")
    return limits


def enabled() -> bool:
    """Whether any limit or policy is set (nothing is counted otherwise)."""
    return _enabled


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
class _Tally:
    start: Optional[datetime]
    end: Optional[datetime]
    calls: int = 0
    tokens: int = 0
    cost: Decimal = Decimal(0)
    unpriced: int = 0

    def holds(self, ts: datetime) -> bool:
        return (self.start is None or ts >= self.start) and (self.end is None or ts < self.end)


@dataclass
class _Account:
    """One customer's spend: a tally per period, and the calls not yet added to them."""

    customer: str
    since: datetime
    tallies: dict[str, _Tally]
    pending: collections.deque[Any] = field(default_factory=collections.deque)
    uncosted: collections.deque[UsageRecord] = field(default_factory=collections.deque)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def update(self, now: datetime, with_cost: bool) -> None:
        """Roll finished periods over and add pending calls; add their costs once priced.

        Costs the delivery worker has computed are taken as they come (oldest
        first); ``with_cost`` prices the rest here, on the caller's thread.
        """
        for period, tally in self.tallies.items():
            if tally.end is not None and now >= tally.end:
                start, end = _window(period, now)
                self.tallies[period] = _Tally(start, end)
        pending = self.pending
        while pending:
            item = pending.popleft()
            record = item.materialize() if hasattr(item, "materialize") else item
            if record is None or record.timestamp < self.since:
                continue
            tokens = record.input_tokens + record.output_tokens
            for tally in self.tallies.values():
                if tally.holds(record.timestamp):
                    tally.calls += 1
                    tally.tokens += tokens
            self.uncosted.append(record)
        if self.uncosted:
            self._add_costs(with_cost)

    def _add_costs(self, price_now: bool) -> None:
        from .pricing import price_record

        uncosted = self.uncosted
        while uncosted and (price_now or uncosted[0].price_version is not None):
            record = uncosted.popleft()
            try:
                cost = price_record(record)
            except Exception as exc:
                internal_error("pricing", exc)
                cost = None
            for tally in self.tallies.values():
                if tally.holds(record.timestamp):
                    if cost is None:
                        tally.unpriced += 1
                    else:
                        tally.cost += cost


_accounts: dict[str, _Account] = {}


def _account(customer: str) -> _Account:
    account = _accounts.get(customer)
    if account is not None:
        return account
    with _lock:
        account = _accounts.get(customer)
        if account is None:
            now = datetime.now(timezone.utc)
            tallies = {period: _Tally(*_window(period, now)) for period in PERIODS}
            account = _accounts[customer] = _Account(customer, now, tallies)
            _seed(account)
    return account


def observe(customer: Optional[str], item: Union[Item, UsageRecord]) -> None:
    """Count a finished call towards its customer's spend (caller's thread: an append, nothing more)."""
    if customer is None:
        return
    account = _accounts.get(customer)
    if account is not None:
        account.pending.append(item)


def spent(customer: Union[str, int], period: str = "month") -> Spend:
    """What ``customer`` has spent in the current ``period`` (prices the calls not priced yet).

    ::

        spend = usagetap.limits.spent("org_123", period="month")
        print(f"{spend.calls} calls, {spend.tokens} tokens, ${spend.cost} since {spend.since:%Y-%m-%d}")
    """
    if period not in PERIODS:
        raise ValueError(f"period must be one of {', '.join(PERIODS)}; got {period!r}")
    customer = _required(customer, "limits.spent()")
    account = _account(customer)
    with account.lock:
        account.update(datetime.now(timezone.utc), with_cost=True)
        tally = account.tallies[period]
        return Spend(customer, period, tally.start, tally.calls, tally.tokens, tally.cost, tally.unpriced)


def check(customer: Optional[str]) -> None:
    """Raise :class:`usagetap.BudgetExceeded` if ``customer`` has reached one of its limits."""
    if customer is None or not _enabled:
        return
    try:
        limits = get(customer)
    except Exception as exc:
        internal_error("limits policy", exc)
        return
    if not limits:
        return
    account = _account(customer)
    with account.lock:
        account.update(datetime.now(timezone.utc), any(limit.max_cost is not None for limit in limits))
        for limit in limits:
            tally = account.tallies[limit.period]
            over_cost = limit.max_cost is not None and tally.cost >= limit.max_cost
            over_tokens = limit.max_tokens is not None and tally.tokens >= limit.max_tokens
            if over_cost or over_tokens:
                account.update(datetime.now(timezone.utc), with_cost=True)
                raise _exceeded(customer, limit, tally, "cost" if over_cost else "tokens")


def _required(customer: object, where: str) -> str:
    """A customer id by the one rule of :func:`usagetap.context.customer_id`; None is refused here."""
    who = customer_id(customer, where)
    if who is None:
        raise TypeError(f"{where}: customer id must be a str or an int, got None")
    return who


def _exceeded(customer: str, limit: Limit, tally: _Tally, what: str) -> BudgetExceeded:
    since = "in total" if tally.start is None else f"this {limit.period} (since {tally.start.isoformat()})"
    if what == "cost":
        figures = f"spent ${tally.cost} of its ${limit.max_cost} limit"
    else:
        figures = f"used {tally.tokens} of its {limit.max_tokens} token limit"
    return BudgetExceeded(
        f"usagetap: customer {customer!r} has {figures} {since}; the call was not made",
        customer=customer,
        period=limit.period,
        period_start=tally.start,
        max_cost=limit.max_cost,
        max_tokens=limit.max_tokens,
        cost=tally.cost,
        tokens=tally.tokens,
    )


# -- the ledger ------------------------------------------------------------------------


class _DecimalSum:
    """SQLite aggregate: the exact sum of decimal strings (the ledger stores costs as text)."""

    def __init__(self) -> None:
        self.total = Decimal(0)

    def step(self, value: Optional[str]) -> None:
        if value is not None:
            self.total += Decimal(value)

    def finalize(self) -> str:
        return str(self.total)


def _ledger_path() -> Optional[str]:
    """The path of the SQLite ledger records are delivered to, if they go to one."""
    from . import _runtime
    from .sinks.ledger import Ledger

    for candidate in _runtime.get_pipeline().sinks:
        if isinstance(candidate, Ledger):
            return candidate.path
    log_once(
        INFO,
        "limits-no-ledger",
        "usagetap: no local ledger is configured; budget limits count this process's calls only",
    )
    return None


def _seed(account: _Account) -> None:
    """Add what the ledger holds for the customer before ``account.since`` (one query, once)."""
    try:
        path = _ledger_path()
        if path is None or not os.path.exists(path):
            return
        rows = _ledger_sums(path, account.customer, account.tallies, account.since)
    except Exception as exc:
        internal_error("limits ledger", exc)
        return
    for period, (calls, tokens, cost, unpriced) in rows.items():
        tally = account.tallies[period]
        tally.calls += calls
        tally.tokens += tokens
        tally.cost += cost
        tally.unpriced += unpriced


def _ledger_sums(
    path: str, customer: str, tallies: Mapping[str, _Tally], until: datetime
) -> dict[str, tuple[int, int, Decimal, int]]:
    columns: list[str] = []
    params: list[Any] = []
    for tally in tallies.values():
        since = "" if tally.start is None else tally.start.isoformat()
        columns += [
            "COALESCE(SUM(timestamp >= ?), 0)",
            "COALESCE(SUM(CASE WHEN timestamp >= ? THEN input_tokens + output_tokens END), 0)",
            "usagetap_dsum(CASE WHEN timestamp >= ? THEN cost END)",
            "COALESCE(SUM(timestamp >= ? AND cost IS NULL), 0)",
        ]
        params += [since] * 4
    sql = f"SELECT {', '.join(columns)} FROM usage WHERE customer = ? AND timestamp < ?"
    params += [customer, until.isoformat()]
    import sqlite3
    from pathlib import Path

    uri = Path(path).resolve().as_uri() + "?mode=ro"
    with SQLITE:
        conn = sqlite3.connect(uri, uri=True, timeout=5.0)
        try:
            conn.create_aggregate("usagetap_dsum", 1, cast(Any, _DecimalSum))
            row = conn.execute(sql, params).fetchone()
        finally:
            conn.close()
    out: dict[str, tuple[int, int, Decimal, int]] = {}
    for i, period in enumerate(tallies):
        calls, tokens, cost, unpriced = row[4 * i : 4 * i + 4]
        out[period] = (int(calls), int(tokens), Decimal(cost), int(unpriced))
    return out
