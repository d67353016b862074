"""A reconciliation as JSON, CSV or a table; saved next to the ledger for ``report --html``."""

from __future__ import annotations

import csv
import io
import json
import os
from pathlib import Path
from typing import Any, Union

from ._model import Result

__all__ = ["CSV_COLUMNS", "render_csv", "render_json", "render_table", "saved_results", "save", "saved_path"]

CSV_COLUMNS = (
    "row",
    "day",
    "model",
    "scope",
    "tier",
    "batch",
    "api_key",
    "provider_tokens",
    "metered_tokens",
    "provider_cost",
    "metered_cost",
    "coverage",
    "residual_tokens",
    "residual_cost",
)


def render_json(result: Result) -> str:
    return json.dumps(result.as_dict(), indent=2)


def _rows(result: Result) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for b in result.buckets:
        residual = b.residual_cost
        rows.append(
            {
                "row": "bucket",
                "day": b.key.day,
                "model": b.key.model,
                "scope": b.key.scope,
                "tier": b.key.tier,
                "batch": str(b.key.batch).lower(),
                "api_key": result.hint_of(b.key.api_key) if result.api_keys is not None else "",
                "provider_tokens": b.provider.tokens,
                "metered_tokens": b.metered.tokens,
                "provider_cost": b.provider.cost if b.has_cost else "",
                "metered_cost": b.metered.cost,
                "coverage": b.coverage,
                "residual_tokens": b.residual_tokens,
                "residual_cost": "" if residual is None else residual,
            }
        )
    for d in result.days:
        rows.append(
            {
                "row": "day",
                "day": d.day,
                "model": "",
                "scope": "",
                "tier": "",
                "batch": "",
                "api_key": "",
                "provider_tokens": d.provider.tokens,
                "metered_tokens": d.metered.tokens,
                "provider_cost": d.provider.cost,
                "metered_cost": d.metered.cost,
                "coverage": d.coverage,
                "residual_tokens": d.provider.tokens - d.metered.tokens,
                "residual_cost": d.residual_cost,
            }
        )
    return rows


def render_csv(result: Result) -> str:
    """One ``bucket`` row per bucket, then one ``day`` row per day (the per-day cost comparison)."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=CSV_COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(_rows(result))
    return out.getvalue()


def render_table(result: Result) -> Any:
    """The buckets and the days as rich tables (a renderable group)."""
    from rich.console import Group
    from rich.table import Table

    title = f"{result.provider} reconciliation {result.since} .. {result.until}"
    buckets = Table(title=f"{title}: tokens per bucket")
    by_key = result.api_keys is not None
    for name in ("Day", "Model", "Scope", "Tier", "Batch", *(("API key",) if by_key else ())):
        buckets.add_column(name, no_wrap=True)
    for name in ("Provider tokens", "Metered tokens", "Coverage %", "Residual tokens"):
        buckets.add_column(name, justify="right", no_wrap=True)
    if any(b.has_cost for b in result.buckets):
        buckets.add_column("Provider cost", justify="right")
        buckets.add_column("Metered cost", justify="right")
        buckets.add_column("Residual cost", justify="right")
    for row in _rows(result):
        if row["row"] != "bucket":
            continue
        cells = [row["day"], row["model"], row["scope"] or "-", row["tier"], row["batch"]]
        cells += [row["api_key"]] if by_key else []
        cells += [f"{row['provider_tokens']:,}", f"{row['metered_tokens']:,}", str(row["coverage"])]
        cells.append(f"{row['residual_tokens']:,}")
        if len(buckets.columns) > len(cells):
            cells += [str(row["provider_cost"]), str(row["metered_cost"]), str(row["residual_cost"])]
        buckets.add_row(*cells)
    days = Table(title=f"{title}: cost per day (USD)")
    for name in ("Day", "Provider cost", "Metered cost", "Residual cost", "Token coverage %"):
        days.add_column(name, justify="left" if name == "Day" else "right", no_wrap=True)
    for d in result.days:
        days.add_row(d.day, str(d.provider.cost), str(d.metered.cost), str(d.residual_cost), str(d.coverage))
    return Group(buckets, days)


def saved_path(ledger: Union[str, os.PathLike[str]], provider: str) -> Path:
    """Where ``reconcile --save`` keeps its result: next to the ledger, one file per provider."""
    path = Path(ledger)
    return path.with_name(f"{path.name}.reconcile-{provider}.json")


def save(result: Result, ledger: Union[str, os.PathLike[str]]) -> Path:
    """Write ``result`` as JSON next to the ledger (owner-only, like the ledger); return the path."""
    target = saved_path(ledger, result.provider)
    fd = os.open(str(target), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(render_json(result))
    return target


def saved_results(ledger: Union[str, os.PathLike[str]]) -> list[dict[str, Any]]:
    """The saved reconciliations next to the ledger (as their JSON), by provider; unreadable ones skipped."""
    out: list[dict[str, Any]] = []
    for provider in ("openai", "anthropic"):
        path = saved_path(ledger, provider)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if isinstance(data, dict) and isinstance(data.get("days"), list):
            out.append(data)
    return out
