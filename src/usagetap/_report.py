"""Aggregate the local ledger: calls, tokens and cost grouped by customer, model, feature, day, ..."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Optional

from ._record import TOKEN_FIELDS
from .db.ledger import GROUP_KEYS

if TYPE_CHECKING:
    from ._ledger_source import LedgerSource

__all__ = [
    "GROUP_KEYS",
    "NUMERIC_COLUMNS",
    "TOTAL_LABEL",
    "Row",
    "aggregate",
    "cost_cell",
    "format_usd",
    "numeric_columns",
    "render_csv",
    "render_json",
    "totals",
]

_SUMS = TOKEN_FIELDS

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


@dataclass
class Row:
    """One group of the report. ``cost`` sums the priced calls; ``unpriced`` counts calls with no price."""

    keys: dict[str, Optional[str]]
    calls: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    reasoning_tokens: int = 0
    cost: Decimal = field(default_factory=Decimal)
    unpriced: int = 0

    def as_dict(self, columns: Sequence[str]) -> dict[str, Any]:
        out: dict[str, Any] = {key: self.keys.get(key) for key in columns}
        out.update(
            calls=self.calls,
            input_tokens=self.input_tokens,
            output_tokens=self.output_tokens,
            cache_read_tokens=self.cache_read_tokens,
            cache_write_tokens=self.cache_write_tokens,
            reasoning_tokens=self.reasoning_tokens,
            cost=None if self.calls and self.unpriced == self.calls else float(self.cost),
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
    """Group the ledger by ``by`` (keys of :data:`GROUP_KEYS`), optionally within UTC days since..until."""
    unknown = [key for key in by if key not in GROUP_KEYS]
    if unknown:
        raise ValueError(f"cannot group by {', '.join(unknown)}; choose from {', '.join(GROUP_KEYS)}")
    groups: dict[tuple[Any, ...], Row] = {}
    width = len(by)
    for values in source.aggregate(by, since, until):
        key = tuple(None if v is None else str(v) for v in values[:width])
        row = groups.get(key)
        if row is None:
            row = groups[key] = Row(keys=dict(zip(by, key, strict=False)))
        row.calls += values[width]
        for name, value in zip(_SUMS, values[width + 1 : width + 1 + len(_SUMS)], strict=False):
            setattr(row, name, getattr(row, name) + value)
        cost = values[-2]
        if cost is not None:
            row.cost += Decimal(cost)
        row.unpriced += values[-1]
    return sorted(groups.values(), key=lambda r: tuple("" if r.keys[k] is None else r.keys[k] for k in by))


def totals(rows: Sequence[Row]) -> Row:
    """The sum of ``rows``, as a row with no keys."""
    total = Row(keys={})
    for row in rows:
        total.calls += row.calls
        for name in _SUMS:
            setattr(total, name, getattr(total, name) + getattr(row, name))
        total.cost += row.cost
        total.unpriced += row.unpriced
    return total


def render_json(rows: Sequence[Row], by: Sequence[str], *, with_totals: bool = False) -> str:
    """A JSON list of rows; with ``with_totals``, an object ``{"rows": [...], "totals": {...}}``.

    The plain list is the documented shape (each row carries customer, model, calls,
    token sums and cost), so the totals never appear as one more row in it.
    """
    columns = _columns(by)
    data: Any = [row.as_dict(columns) for row in rows]
    if with_totals:
        total = totals(rows).as_dict(())
        data = {"rows": data, "totals": total}
    return json.dumps(data, indent=2)


def render_csv(rows: Sequence[Row], by: Sequence[str], *, with_totals: bool = False) -> str:
    """CSV with a header; costs are exact decimal strings (empty when no call of the row is priced).

    With ``with_totals`` a last row sums the others; its first column reads ``(total)``.
    """
    columns = _columns(by)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    header = [*columns, "calls", *_SUMS, "cost_usd", "unpriced_calls"]
    writer.writerow(header)
    lines = [(row, [row.keys.get(c) for c in columns]) for row in rows]
    if with_totals:
        lines.append((totals(rows), [TOTAL_LABEL] + [None] * (len(columns) - 1)))
    for row, keys in lines:
        writer.writerow(
            [
                *("" if key is None else key for key in keys),
                row.calls,
                *(getattr(row, n) for n in _SUMS),
                "" if row.calls and row.unpriced == row.calls else format(row.cost, "f"),
                row.unpriced,
            ]
        )
    return buffer.getvalue()


def _columns(by: Sequence[str]) -> list[str]:
    """Grouped keys first; ``customer`` and ``model`` are always present (null when not grouped)."""
    columns = list(by)
    for key in ("customer", "model"):
        if key not in columns:
            columns.append(key)
    return columns


def format_usd(cost: Decimal) -> str:
    """Dollars with cents for large amounts and six decimals for fractions of a cent."""
    return f"${cost:,.2f}" if abs(cost) >= 100 else f"${cost:,.6f}"


def cost_cell(row: Row) -> str:
    """The cost of ``row`` for people: ``unknown`` when no call is priced, a ``*`` when some are not."""
    if row.calls and row.unpriced == row.calls:
        return "unknown"
    text = format_usd(row.cost)
    return f"{text} *" if row.unpriced else text


def numeric_columns(total: Row) -> list[tuple[str, str]]:
    """The numeric columns worth showing: calls, input and output always, the token parts when non-zero."""
    return [
        (title, attr)
        for title, attr in NUMERIC_COLUMNS
        if attr in ("calls", "input_tokens", "output_tokens") or getattr(total, attr)
    ]
