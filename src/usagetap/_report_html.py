"""``usagetap report --html``: one self-contained page with charts drawn as inline SVG.

The page loads nothing (no script, no stylesheet, no font, no CDN) and says so in
its Content-Security-Policy, so it opens offline and customer names in it can
never run as code. It holds, for the selected days:

- the cost per customer by day (stacked columns, ``#cost-by-day``): the ``top`` customers by
  cost each in their colour, more when the rest together would cost more than the smallest of
  them, so the "other customers" band never outweighs a named customer,
- the cost by model (horizontal bars, ``#cost-by-model``),
- each customer's cost by model, the largest customer first (``#customer-drilldown``),
- the report table grouped as asked, with a totals row (``#usage-table``).

Money reads in cents; the exact amounts are in the ``data-cost`` attributes.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from html import escape
from typing import TYPE_CHECKING, Optional

from ._report import Row, aggregate, billed_cell, cost_cell, format_usd, numeric_columns, totals
from ._version import __version__

if TYPE_CHECKING:
    from ._ledger_source import LedgerSource

__all__ = ["build_page", "render_page"]

PALETTE = ("#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#ff9da7")
OTHER_COLOR = "#bab0ac"
NO_CUSTOMER = "(no customer)"
MAX_AXIS_DAYS = 731
TOP = 8
_CSP = "default-src 'none'; style-src 'unsafe-inline'"

_STYLE = """
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: #1f2328;
       margin: 0 auto; max-width: 1080px; padding: 24px; }
h1 { font-size: 22px; margin: 0 0 4px; }
h2 { font-size: 16px; margin: 32px 0 8px; }
.meta, .note { color: #59636e; margin: 0; }
.note { font-size: 13px; margin-top: 6px; }
.summary { display: flex; flex-wrap: wrap; gap: 12px; margin: 20px 0 0; padding: 0; list-style: none; }
.summary li { border: 1px solid #d1d9e0; border-radius: 6px; padding: 8px 14px; min-width: 120px; }
.summary b { display: block; font-size: 18px; }
.summary span { color: #59636e; font-size: 12px; }
figure { margin: 0; }
svg { display: block; width: 100%; height: auto; }
svg text { font: 11px system-ui, sans-serif; fill: #59636e; }
svg .value { fill: #1f2328; }
.grid { stroke: #e6eaef; }
.axis { stroke: #8c959f; }
.legend { display: flex; flex-wrap: wrap; gap: 4px 16px; margin: 8px 0 0; padding: 0; list-style: none; }
.legend li { font-size: 13px; }
.swatch { display: inline-block; width: 10px; height: 10px; border-radius: 2px; margin-right: 6px; }
.empty { color: #59636e; border: 1px dashed #d1d9e0; border-radius: 6px; padding: 24px; text-align: center; }
table { border-collapse: collapse; width: 100%; font-variant-numeric: tabular-nums; }
th, td { padding: 6px 10px; border-bottom: 1px solid #e6eaef; text-align: left; white-space: nowrap; }
td.num, th.num { text-align: right; }
tr.customer td { font-weight: 600; background: #f6f8fa; }
tr.detail td:first-child { padding-left: 28px; color: #59636e; }
tfoot td { font-weight: 600; border-top: 2px solid #8c959f; }
footer { color: #8c959f; font-size: 12px; margin-top: 32px; }
"""


@dataclass
class _Series:
    label: str
    color: str
    customers: frozenset[Optional[str]]
    cost: Decimal


def build_page(
    conn: LedgerSource,
    by: Sequence[str],
    *,
    since: Optional[date] = None,
    until: Optional[date] = None,
    source: str = "",
    top: int = TOP,
) -> str:
    """Query the ledger and render the page: the table grouped by ``by``, the charts over the same days."""
    table = aggregate(conn, by, since=since, until=until)
    daily = aggregate(conn, ("day", "customer"), since=since, until=until)
    models = aggregate(conn, ("model",), since=since, until=until)
    drill = aggregate(conn, ("customer", "model"), since=since, until=until)
    page = render_page(
        table, by, daily, models, source=source, since=since, until=until, drill=drill, top=top
    )
    from ._report_reconcile import with_reconciliation  # the reconciliation view, when one was saved

    return with_reconciliation(page, source)


def render_page(
    table: Sequence[Row],
    by: Sequence[str],
    daily: Sequence[Row],
    models: Sequence[Row],
    *,
    source: str = "",
    since: Optional[date] = None,
    until: Optional[date] = None,
    generated: Optional[datetime] = None,
    drill: Sequence[Row] = (),
    top: int = TOP,
) -> str:
    """The HTML page from aggregated rows: ``daily`` grouped by day and customer, ``models`` by model,
    ``drill`` by customer and model."""
    total = totals(table)
    generated = generated or datetime.now(timezone.utc)
    period = _period(since, until, _days(daily))
    customers = {row.keys.get("customer") for row in daily} - {None}
    grouping = ", ".join(by)
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f'<meta http-equiv="Content-Security-Policy" content="{_CSP}">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f'<meta name="generator" content="usagetap {escape(__version__)}">',
        f"<title>LLM usage · {escape(period)}</title>",
        f"<style>{_STYLE}</style></head><body>",
        "<header><h1>LLM usage</h1>",
        f'<p class="meta">{escape(period)} · ledger {escape(source)} · '
        f"generated {generated.strftime('%Y-%m-%d %H:%M UTC')}</p>",
        '<ul class="summary" id="summary">',
        _card("Cost (USD)", cost_cell(total)),
        *([_card("Billed cost (USD)", billed_cell(total))] if total.billed else []),
        _card("Calls", f"{total.calls:,}"),
        _card("Input tokens", f"{total.input_tokens:,}"),
        _card("Output tokens", f"{total.output_tokens:,}"),
        _card("Customers", f"{len(customers):,}"),
        "</ul></header>",
        '<section><h2 id="cost-by-day-title">Cost per customer by day (UTC)</h2>',
        _cost_by_day(daily, since, until, top),
        '</section><section><h2 id="cost-by-model-title">Cost by model</h2>',
        _cost_by_model(models, total.cost),
        f'</section><section><h2 id="usage-table-title">Usage by {escape(grouping)}</h2>',
        _table(table, by, total),
        _unpriced_note(total),
        '</section><section><h2 id="customer-drilldown-title">Cost per customer, by model</h2>',
        _drilldown(drill, total),
        "</section>",
        f"<footer>usagetap {escape(__version__)} · costs in US dollars from the genai-prices table; "
        "input tokens include cache reads and writes.</footer>",
        "</body></html>",
    ]
    return "\n".join(parts) + "\n"


def _period(since: Optional[date], until: Optional[date], days: Sequence[str]) -> str:
    first = since.isoformat() if since else (days[0] if days else None)
    last = until.isoformat() if until else (days[-1] if days else None)
    if first is None and last is None:
        return "no usage"
    if first == last:
        return f"{first}"
    return f"{first or '…'} to {last or '…'}"


def _days(daily: Sequence[Row]) -> list[str]:
    return sorted({day for row in daily if (day := row.keys.get("day"))})


def _card(label: str, value: str) -> str:
    return f"<li><b>{escape(value)}</b><span>{escape(label)}</span></li>"


def _customer_label(customer: Optional[str]) -> str:
    return NO_CUSTOMER if customer is None else customer


def _color(i: int) -> str:
    """The palette's colours, then evenly spread hues for customers past it."""
    if i < len(PALETTE):
        return PALETTE[i]
    return f"hsl({(i - len(PALETTE)) * 137.508 % 360:.0f}, 45%, 58%)"


def _series(daily: Sequence[Row], top: int = TOP) -> list[_Series]:
    """One series per customer by cost, the largest first: the ``top`` ones, and more while the rest
    together cost more than the smallest named one; the rest share one "other customers" series."""
    cost: dict[Optional[str], Decimal] = {}
    for row in daily:
        key = row.keys.get("customer")
        cost[key] = cost.get(key, Decimal(0)) + row.cost
    ranked = sorted((c for c in cost if cost[c] > 0), key=lambda c: (-cost[c], _customer_label(c)))
    named = min(max(top, 1), len(ranked))
    while named < len(ranked) and (
        named == len(ranked) - 1 or sum(cost[c] for c in ranked[named:]) > cost[ranked[named - 1]]
    ):
        named += 1
    head, rest = ranked[:named], ranked[named:]
    series = [_Series(_customer_label(c), _color(i), frozenset([c]), cost[c]) for i, c in enumerate(head)]
    if rest:
        label = f"{len(rest)} other customers"
        series.append(_Series(label, OTHER_COLOR, frozenset(rest), sum((cost[c] for c in rest), Decimal(0))))
    return series


def _day_range(days: Sequence[str], since: Optional[date], until: Optional[date]) -> list[str]:
    """Every day of the asked window (the data's own ends where none was asked), unless that is too long."""
    first, last = date.fromisoformat(days[0]), date.fromisoformat(days[-1])
    asked_first, asked_last = since or first, until or last
    if (asked_last - asked_first).days < MAX_AXIS_DAYS:
        first, last = min(first, asked_first), max(last, asked_last)
    return [(first + timedelta(days=i)).isoformat() for i in range((last - first).days + 1)]


def _ticks(top: Decimal, count: int = 5) -> list[Decimal]:
    """Round axis ticks from 0 past ``top``: steps of 1, 2 or 5 times a power of ten."""
    raw = top / count
    base = Decimal(1).scaleb(raw.adjusted())
    step = next(base * m for m in (1, 2, 5, 10) if base * m >= raw)
    return [step * i for i in range(math.ceil(top / step) + 1)]


def _axis_usd(value: Decimal, step: Decimal) -> str:
    places = 0 if step >= 1 else max(2, -step.adjusted())
    return f"${value:,.{places}f}"


def _short_day(day: str) -> str:
    d = date.fromisoformat(day)
    return f"{d:%b} {d.day}"


def _num(value: float) -> str:
    return f"{value:.1f}".rstrip("0").rstrip(".")


def _cost_by_day(daily: Sequence[Row], since: Optional[date], until: Optional[date], top_n: int = TOP) -> str:
    series = _series(daily, top_n)
    if not series:
        return '<p class="empty" id="cost-by-day">No priced usage in this period.</p>'
    owner = {customer: s for s in series for customer in s.customers}
    days = _day_range(_days(daily), since, until)
    cells: dict[tuple[str, str], Decimal] = {}
    calls: dict[tuple[str, str], int] = {}
    for row in daily:
        s = owner.get(row.keys.get("customer"))
        day = row.keys.get("day")
        if s is None or day is None or row.cost <= 0:
            continue
        cells[day, s.label] = cells.get((day, s.label), Decimal(0)) + row.cost
        calls[day, s.label] = calls.get((day, s.label), 0) + row.calls
    day_total = {
        day: sum((cells.get((day, s.label), Decimal(0)) for s in series), Decimal(0)) for day in days
    }
    ticks = _ticks(max(day_total.values()))
    top, step = ticks[-1], ticks[1] - ticks[0]

    width, height = 960, 300
    left, right, top_pad, bottom = 80, 16, 12, 36
    plot_w, plot_h = width - left - right, height - top_pad - bottom
    slot = plot_w / len(days)
    bar_w = min(max(slot * 0.7, min(slot, 1.0)), 56.0)
    label_every = max(1, math.ceil(len(days) / 12))

    def y_of(value: Decimal) -> float:
        return top_pad + plot_h - float(value / top) * plot_h

    out = [
        f'<figure><svg id="cost-by-day" class="chart" viewBox="0 0 {width} {height}" role="img" '
        f'aria-labelledby="cost-by-day-title">'
    ]
    for tick in ticks:
        y = _num(y_of(tick))
        out.append(f'<line class="grid" x1="{left}" x2="{width - right}" y1="{y}" y2="{y}"/>')
        out.append(
            f'<text class="tick" x="{left - 8}" y="{y}" text-anchor="end" dominant-baseline="middle">'
            f"{escape(_axis_usd(tick, step))}</text>"
        )
    for i, day in enumerate(days):
        x = left + i * slot + (slot - bar_w) / 2
        base = Decimal(0)
        for s in series:
            cost = cells.get((day, s.label))
            if not cost:
                continue
            y0, y1 = y_of(base), y_of(base + cost)
            base += cost
            n = calls[day, s.label]
            tip = f"{s.label} · {day}: {format_usd(cost)} ({n} call{'s' if n != 1 else ''})"
            out.append(
                f'<rect class="bar" x="{_num(x)}" y="{_num(y1)}" width="{_num(bar_w)}" '
                f'height="{_num(max(y0 - y1, 0.5))}" fill="{s.color}" data-customer="{escape(s.label)}" '
                f'data-day="{day}" data-cost="{cost}"><title>{escape(tip)}</title></rect>'
            )
        if i % label_every == 0:
            out.append(
                f'<text class="day" x="{_num(left + (i + 0.5) * slot)}" y="{height - bottom + 18}" '
                f'text-anchor="middle">{escape(_short_day(day))}</text>'
            )
    baseline = _num(y_of(Decimal(0)))
    out.append(f'<line class="axis" x1="{left}" x2="{width - right}" y1="{baseline}" y2="{baseline}"/>')
    out.append("</svg>")
    out.append('<ul class="legend" id="cost-by-day-legend">')
    for s in series:
        out.append(
            f'<li><span class="swatch" style="background:{s.color}"></span>{escape(s.label)} '
            f"<b>{escape(format_usd(s.cost))}</b></li>"
        )
    out.append("</ul></figure>")
    return "\n".join(out)


def _cost_by_model(models: Sequence[Row], total_cost: Decimal) -> str:
    if not models:
        return '<p class="empty" id="cost-by-model">No usage in this period.</p>'
    ranked = sorted(models, key=lambda r: (r.unpriced == r.calls, -r.cost, r.keys.get("model") or ""))
    biggest = max((r.cost for r in ranked), default=Decimal(0))
    row_h, width = 30, 960
    names = [r.keys.get("model") or "(unknown model)" for r in ranked]
    left = min(max(len(n) for n in names) * 7 + 16, 260)
    value_w = 250
    bar_space = width - left - value_w
    height = row_h * len(ranked) + 8
    out = [
        f'<figure><svg id="cost-by-model" class="chart" viewBox="0 0 {width} {height}" role="img" '
        f'aria-labelledby="cost-by-model-title">'
    ]
    for i, (row, name) in enumerate(zip(ranked, names, strict=False)):
        y = 4 + i * row_h
        shown = name if len(name) * 7 + 16 <= left else name[: (left - 16) // 7 - 1] + "…"
        out.append(
            f'<text class="model" x="{left - 8}" y="{y + row_h / 2}" text-anchor="end" '
            f'dominant-baseline="middle">{escape(shown)}<title>{escape(name)}</title></text>'
        )
        calls = f"{row.calls:,} call{'s' if row.calls != 1 else ''}"
        bar_end = float(left)
        if row.unpriced == row.calls:
            value = f"price unknown · {calls}"
        else:
            share = f"{float(row.cost / total_cost) * 100:.1f}%" if total_cost > 0 else "-"
            value = f"{cost_cell(row)} · {share} · {calls}"
            bar = max(float(row.cost / biggest) * bar_space if biggest > 0 else 0.0, 1.0)
            bar_end += bar
            out.append(
                f'<rect class="bar" x="{left}" y="{y + 5}" width="{_num(bar)}" height="{row_h - 10}" '
                f'fill="{PALETTE[0]}" data-model="{escape(name)}" data-cost="{row.cost}">'
                f"<title>{escape(name)}: {escape(value)}</title></rect>"
            )
        out.append(
            f'<text class="value" x="{_num(bar_end + 8)}" y="{y + row_h / 2}" '
            f'dominant-baseline="middle">{escape(value)}</text>'
        )
    out.append("</svg></figure>")
    return "\n".join(out)


def _money_heads(total: Row) -> list[str]:
    heads = ['<th scope="col" class="num">Cost (USD)</th>']
    if total.billed:
        heads.append('<th scope="col" class="num">Billed cost (USD)</th>')
    return heads


def _money_cells(row: Row, total: Row) -> list[str]:
    cells = [f'<td class="num" data-cost="{row.cost}">{escape(cost_cell(row))}</td>']
    if total.billed:
        cells.append(f'<td class="num" data-billed-cost="{row.billed_cost}">{escape(billed_cell(row))}</td>')
    return cells


def _table(rows: Sequence[Row], by: Sequence[str], total: Row) -> str:
    columns = numeric_columns(total)
    head = [f'<th scope="col">{escape(key.capitalize())}</th>' for key in by]
    head += [f'<th scope="col" class="num">{escape(title)}</th>' for title, _ in columns]
    head += _money_heads(total)
    out = ['<table id="usage-table">', f"<thead><tr>{''.join(head)}</tr></thead>", "<tbody>"]
    for row in rows:
        cells = [f"<td>{escape(_key_cell(key, row.keys.get(key)))}</td>" for key in by]
        cells += [f'<td class="num">{getattr(row, attr):,}</td>' for _, attr in columns]
        cells += _money_cells(row, total)
        out.append(f"<tr>{''.join(cells)}</tr>")
    out.append("</tbody>")
    foot = ["<td>Total</td>"] + ["<td></td>"] * (len(by) - 1)
    foot += [f'<td class="num">{getattr(total, attr):,}</td>' for _, attr in columns]
    foot += _money_cells(total, total)
    out.append(f"<tfoot><tr>{''.join(foot)}</tr></tfoot></table>")
    return "\n".join(out)


def _drilldown(rows: Sequence[Row], total: Row) -> str:
    """One line per customer (its totals and share of the cost), then one per model it used."""
    if not rows:
        return '<p class="empty" id="customer-drilldown">No usage in this period.</p>'
    by_customer: dict[Optional[str], list[Row]] = {}
    for row in rows:
        by_customer.setdefault(row.keys.get("customer"), []).append(row)
    summed = {customer: totals(models) for customer, models in by_customer.items()}
    order = sorted(summed, key=lambda c: (not summed[c].priced, -summed[c].cost, _customer_label(c)))
    head = ['<th scope="col">Customer / model</th>', '<th scope="col" class="num">Calls</th>']
    head += ['<th scope="col" class="num">Input</th>', '<th scope="col" class="num">Output</th>']
    head += [*_money_heads(total), '<th scope="col" class="num">Share</th>']
    out = ['<table id="customer-drilldown">', f"<thead><tr>{''.join(head)}</tr></thead>"]
    for customer in order:
        out.append(f'<tbody data-customer="{escape(_customer_label(customer))}">')
        lines = [("customer", _customer_label(customer), summed[customer])]
        lines += [("detail", r.keys.get("model") or "(unknown model)", r) for r in by_customer[customer]]
        for kind, label, row in lines:
            share = f"{float(row.cost / total.cost) * 100:.1f}%" if total.cost > 0 and row.priced else "-"
            cells = [f"<td>{escape(label)}</td>", f'<td class="num">{row.calls:,}</td>']
            cells += [
                f'<td class="num">{row.input_tokens:,}</td>',
                f'<td class="num">{row.output_tokens:,}</td>',
            ]
            cells += [*_money_cells(row, total), f'<td class="num">{share}</td>']
            out.append(f'<tr class="{kind}">{"".join(cells)}</tr>')
        out.append("</tbody>")
    out.append("</table>")
    return "\n".join(out)


def _key_cell(key: str, value: Optional[str]) -> str:
    if value is None:
        return NO_CUSTOMER if key == "customer" else "-"
    return value


def _unpriced_note(total: Row) -> str:
    if not total.unpriced:
        return ""
    return (
        f'<p class="note" id="unpriced-note">* {total.unpriced:,} call(s) have no price (unknown model); '
        "their cost is not included in the charts or totals.</p>"
    )
