"""Aggregate the local ledger: calls, tokens, cost and billed cost grouped by customer, model, month, ...

Money has one name everywhere: ``cost`` (what the provider charges, from the price table) and
``billed_cost`` (with the configured markup). JSON and CSV carry them as exact decimal strings;
tables and pages show them rounded to cents (:func:`format_usd`).
"""

from __future__ import annotations

import calendar
import csv
import io
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from typing import TYPE_CHECKING, Any, Optional

from ._record import TOKEN_FIELDS
from .db.ledger import GROUP_KEYS

if TYPE_CHECKING:
    from ._ledger_source import LedgerSource

__all__ = [
    "CURRENCY",
    "GROUP_KEYS",
    "NUMERIC_COLUMNS",
    "PERIOD_KEYS",
    "TOTAL_LABEL",
    "Row",
    "aggregate",
    "billed_cell",
    "cost_cell",
    "format_usd",
    "numeric_columns",
    "period",
    "render_csv",
    "render_json",
    "totals",
]

_SUMS = TOKEN_FIELDS
CURRENCY = "USD"
PERIOD_KEYS = ("day", "month")
"""Group keys that are periods: rows stay in time order, and JSON/CSV add ``period_start``/``period_end``."""

# (title, Row attribute) of the numeric columns a human-readable report can show
NUMERIC_COLUMNS = (
    ("Calls", "calls"),
    ("Input", "input_tokens"),
    ("Output", "output_tokens"),
    ("Cache read", "cache_read_tokens"),
    ("Cache write", "cache_write_tokens"),
    ("Reasoning", "reasoning_tokens"),
)

TOTAL_LABEL = "(total)"
_CENT = Decimal("0.01")


@dataclass
class Row:
    """One group of the report. ``cost`` sums the priced calls; ``unpriced`` counts calls with no price;
    ``billed_cost`` sums the calls that carry one (``billed`` counts them)."""

    keys: dict[str, Optional[str]]
    calls: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    reasoning_tokens: int = 0
    cost: Decimal = field(default_factory=Decimal)
    unpriced: int = 0
    billed_cost: Decimal = field(default_factory=Decimal)
    billed: int = 0

    @property
    def priced(self) -> bool:
        """Whether any call of the row has a price (a row with none has no cost, never a cost of 0)."""
        return not self.calls or self.unpriced < self.calls

    def as_dict(
        self, columns: Sequence[str], *, since: Optional[date] = None, until: Optional[date] = None
    ) -> dict[str, Any]:
        """The row for JSON and CSV: money as exact decimal strings (None when unknown)."""
        out: dict[str, Any] = {key: self.keys.get(key) for key in columns}
        if any(key in PERIOD_KEYS for key in columns):
            start, end = period(self.keys, since, until)
            out.update(period_start=start, period_end=end)
        out.update(
            calls=self.calls,
            input_tokens=self.input_tokens,
            output_tokens=self.output_tokens,
            cache_read_tokens=self.cache_read_tokens,
            cache_write_tokens=self.cache_write_tokens,
            reasoning_tokens=self.reasoning_tokens,
            cost=format(self.cost, "f") if self.priced else None,
            billed_cost=format(self.billed_cost, "f") if self.billed else None,
            currency=CURRENCY,
            unpriced_calls=self.unpriced,
        )
        return out


def aggregate(
    source: LedgerSource,
    by: Sequence[str] = ("customer", "model"),
    *,
    since: Optional[date] = None,
    until: Optional[date] = None,
) -> list[Row]:
    """Group the ledger by ``by`` (keys of :data:`GROUP_KEYS` or dimension names the records carry),
    optionally within UTC days since..until.

    Rows come in time order of the period keys (``day``, ``month``) if any, then by cost, the
    largest first (unpriced rows last), then by key.
    """
    _check_keys(source, by)
    groups: dict[tuple[Any, ...], Row] = {}
    width = len(by)
    for values in source.aggregate(by, since, until):
        key = tuple(_text(v) for v in values[:width])
        row = groups.get(key)
        if row is None:
            row = groups[key] = Row(keys=dict(zip(by, key, strict=False)))
        row.calls += values[width]
        for name, value in zip(_SUMS, values[width + 1 : width + 1 + len(_SUMS)], strict=False):
            setattr(row, name, getattr(row, name) + value)
        cost, unpriced, billed, billed_cost = values[-4:]
        if cost is not None:
            row.cost += Decimal(cost)
        row.unpriced += unpriced
        row.billed += billed
        if billed_cost is not None:
            row.billed_cost += Decimal(billed_cost)
    return sorted(groups.values(), key=lambda r: _order(r, by))


def _check_keys(source: LedgerSource, by: Sequence[str]) -> None:
    named = [key for key in by if key not in GROUP_KEYS]
    if not named:
        return
    dimensions = source.dimension_names()
    unknown = [key for key in named if key not in dimensions]
    if unknown:
        seen = f"; dimensions in this ledger: {', '.join(dimensions)}" if dimensions else ""
        raise ValueError(f"cannot group by {', '.join(unknown)}; choose from {', '.join(GROUP_KEYS)}{seen}")


def _text(value: Any) -> Optional[str]:
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _order(row: Row, by: Sequence[str]) -> tuple[Any, ...]:
    periods = tuple(row.keys[k] or "" for k in by if k in PERIOD_KEYS)
    rest = tuple("" if row.keys[k] is None else row.keys[k] for k in by if k not in PERIOD_KEYS)
    return (*periods, not row.priced, -row.cost, *rest)


def period(
    keys: dict[str, Optional[str]], since: Optional[date] = None, until: Optional[date] = None
) -> tuple[Optional[str], Optional[str]]:
    """The first and last UTC day (both included) of a row's ``day`` or ``month``, within since..until."""
    day, month = keys.get("day"), keys.get("month")
    if day:
        start = end = date.fromisoformat(day)
    elif month:
        year, number = (int(part) for part in month.split("-"))
        start = date(year, number, 1)
        end = date(year, number, calendar.monthrange(year, number)[1])
    else:
        return None, None
    if since is not None:
        start = max(start, since)
    if until is not None:
        end = min(end, until)
    return start.isoformat(), end.isoformat()


def totals(rows: Sequence[Row]) -> Row:
    """The sum of ``rows``, as a row with no keys."""
    total = Row(keys={})
    for row in rows:
        total.calls += row.calls
        for name in _SUMS:
            setattr(total, name, getattr(total, name) + getattr(row, name))
        total.cost += row.cost
        total.unpriced += row.unpriced
        total.billed_cost += row.billed_cost
        total.billed += row.billed
    return total


def render_json(
    rows: Sequence[Row],
    by: Sequence[str],
    *,
    with_totals: bool = False,
    since: Optional[date] = None,
    until: Optional[date] = None,
) -> str:
    """A JSON list of rows; with ``with_totals``, an object ``{"rows": [...], "totals": {...}}``.

    The plain list is the documented shape (each row carries customer, model, calls,
    token sums, cost, billed_cost and currency), so the totals never appear as one more row in it.
    """
    columns = _columns(by)
    data: Any = [row.as_dict(columns, since=since, until=until) for row in rows]
    if with_totals:
        total = totals(rows).as_dict(())
        data = {"rows": data, "totals": total}
    return json.dumps(data, indent=2)


def render_csv(
    rows: Sequence[Row],
    by: Sequence[str],
    *,
    with_totals: bool = False,
    since: Optional[date] = None,
    until: Optional[date] = None,
) -> str:
    """CSV with a header, one line per row; money as exact decimal strings (empty when unknown).

    Grouped by ``month`` or ``day``, each line also has ``period_start`` and ``period_end`` (the
    first and last UTC day it covers, both included): ``--by customer,month`` is an invoice export.
    With ``with_totals`` a last row sums the others; its first column reads ``(total)``.
    """
    columns = _columns(by)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    lines = [row.as_dict(columns, since=since, until=until) for row in rows]
    if with_totals:
        total = totals(rows).as_dict(columns)
        total[columns[0]] = TOTAL_LABEL
        lines.append(total)
    header = list(lines[0]) if lines else list(Row(keys={}).as_dict(columns))
    writer.writerow(header)
    for line in lines:
        writer.writerow(["" if line[name] is None else line[name] for name in header])
    return buffer.getvalue()


def _columns(by: Sequence[str]) -> list[str]:
    """Grouped keys first; ``customer`` and ``model`` are always present (null when not grouped)."""
    columns = list(by)
    for key in ("customer", "model"):
        if key not in columns:
            columns.append(key)
    return columns


def format_usd(cost: Decimal) -> str:
    """Dollars rounded to cents, for people; an amount under half a cent reads ``<$0.01``."""
    if 0 < cost < Decimal("0.005"):
        return "<$0.01"
    return f"${cost.quantize(_CENT, rounding=ROUND_HALF_UP):,.2f}"


def cost_cell(row: Row) -> str:
    """The cost of ``row`` for people: ``unknown`` when no call is priced, a ``*`` when some are not."""
    if not row.priced:
        return "unknown"
    text = format_usd(row.cost)
    return f"{text} *" if row.unpriced else text


def billed_cell(row: Row) -> str:
    """The billed cost of ``row`` for people: ``-`` when no call carries one, a ``*`` when some do not."""
    if not row.billed:
        return "-"
    text = format_usd(row.billed_cost)
    return f"{text} *" if row.billed < row.calls else text


def numeric_columns(total: Row) -> list[tuple[str, str]]:
    """The numeric columns worth showing: calls, input and output always, the token parts when non-zero."""
    return [
        (title, attr)
        for title, attr in NUMERIC_COLUMNS
        if attr in ("calls", "input_tokens", "output_tokens") or getattr(total, attr)
    ]
