"""The reconciliation view of ``usagetap report --html``: coverage per day against the provider.

Shown when ``usagetap reconcile ... --save`` left a result next to the ledger
(``<ledger>.reconcile-<provider>.json``): per provider and UTC day, the provider's and the metered
tokens, the coverage (with a bar), and the provider's and the metered cost.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from html import escape
from typing import Any, Union

__all__ = ["reconciliation_section", "with_reconciliation"]

_BAR_WIDTH = 120


def with_reconciliation(page: str, ledger: Union[str, os.PathLike[str]]) -> str:
    """``page`` with the reconciliation view before its footer, when a saved result is present."""
    if not ledger:
        return page
    from .reconcile._render import saved_results

    results = saved_results(ledger)
    if not results:
        return page
    section = "\n".join(reconciliation_section(result) for result in results)
    head, found, tail = page.rpartition("<footer>")
    return f"{head}{section}\n<footer>{tail}" if found else page + section


def reconciliation_section(result: Mapping[str, Any]) -> str:
    """One provider's saved reconciliation as a section: a row per day with a coverage bar."""
    provider = escape(str(result.get("provider", "?")))
    period = f"{escape(str(result.get('since', '')))} .. {escape(str(result.get('until', '')))}"
    out = [
        f'<section id="reconciliation-{provider}"><h2>Coverage per day against {provider} ({period})</h2>',
        '<table class="reconciliation"><thead><tr><th scope="col">Day (UTC)</th>'
        '<th scope="col" class="num">Provider tokens</th><th scope="col" class="num">Metered tokens</th>'
        '<th scope="col" class="num">Coverage</th><th scope="col"></th>'
        '<th scope="col" class="num">Provider cost</th><th scope="col" class="num">Metered cost</th>'
        '<th scope="col" class="num">Residual cost</th></tr></thead><tbody>',
    ]
    for day in result.get("days") or ():
        if not isinstance(day, Mapping):
            continue
        provider_side, metered = _side(day, "provider"), _side(day, "metered")
        coverage = _number(day.get("coverage"))
        out.append(
            "<tr>"
            f"<td>{escape(str(day.get('day', '')))}</td>"
            f'<td class="num">{_tokens(provider_side):,}</td>'
            f'<td class="num">{_tokens(metered):,}</td>'
            f'<td class="num">{escape(str(coverage))}%</td>'
            f"<td>{_bar(coverage)}</td>"
            f'<td class="num">{escape(str(provider_side.get("cost", "")))}</td>'
            f'<td class="num">{escape(str(metered.get("cost", "")))}</td>'
            f'<td class="num">{escape(str(day.get("residual_cost", "")))}</td>'
            "</tr>"
        )
    out.append("</tbody></table>")
    drifted = [escape(str(line)) for line in result.get("drifted") or ()]
    if drifted:
        limit = escape(str(result.get("max_drift", "")))
        out.append(f'<p class="note">Drift past {limit}%: {"; ".join(drifted)}</p>')
    out.append("</section>")
    return "\n".join(out)


def _side(day: Mapping[str, Any], name: str) -> Mapping[str, Any]:
    side = day.get(name)
    return side if isinstance(side, Mapping) else {}


def _tokens(side: Mapping[str, Any]) -> int:
    total = 0
    for name in ("input_tokens", "output_tokens"):
        value = side.get(name)
        total += value if isinstance(value, int) else 0
    return total


def _number(value: Any) -> Decimal:
    try:
        return Decimal(str(value))
    except InvalidOperation:
        return Decimal(0)


def _bar(coverage: Decimal) -> str:
    """An inline SVG bar: the metered share of the provider's tokens, capped at 100%."""
    share = min(max(coverage, Decimal(0)), Decimal(100)) if coverage.is_finite() else Decimal(100)
    width = int(share * _BAR_WIDTH / 100)
    color = "#59a14f" if coverage == 100 else "#e15759"
    return (
        f'<svg class="coverage" width="{_BAR_WIDTH}" height="10" style="width:{_BAR_WIDTH}px" '
        f'role="img" aria-label="{escape(str(coverage))}%">'
        f'<rect width="{_BAR_WIDTH}" height="10" fill="#e6eaef"/>'
        f'<rect width="{width}" height="10" fill="{color}"/></svg>'
    )
