"""Anthropic's Usage and Cost Admin API (the legacy pair), as usage and cost rows.

Usage: ``GET /v1/organizations/usage_report/messages``, daily buckets grouped by model, workspace
and service tier. Cost: ``GET /v1/organizations/cost_report`` grouped by workspace and description
(which gives each token cost's model and tier); amounts are decimal strings in cents.
https://platform.claude.com/docs/en/api/admin/usage_report/retrieve_messages
https://platform.claude.com/docs/en/api/admin/cost_report/retrieve
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, datetime, time, timedelta, timezone
from decimal import Decimal
from typing import Any

from ._http import AdminAPI
from ._model import CostRow, Key, UsageRow

__all__ = ["BUCKETS_PER_PAGE", "DEFAULT_URL", "costs", "headers", "usage"]

DEFAULT_URL = "https://api.anthropic.com"
BUCKETS_PER_PAGE = 31  # the most daily buckets a page holds
VERSION = "2023-06-01"


def headers(key: str) -> dict[str, str]:
    return {"x-api-key": key, "anthropic-version": VERSION}


def _window(since: date, until: date) -> list[tuple[str, str]]:
    start = datetime.combine(since, time(0), timezone.utc)
    end = datetime.combine(until + timedelta(days=1), time(0), timezone.utc)
    return [
        ("starting_at", start.isoformat().replace("+00:00", "Z")),
        ("ending_at", end.isoformat().replace("+00:00", "Z")),
        ("bucket_width", "1d"),
        ("limit", str(BUCKETS_PER_PAGE)),
    ]


def _day(stamp: Any) -> str:
    return (
        datetime.fromisoformat(str(stamp).replace("Z", "+00:00")).astimezone(timezone.utc).date().isoformat()
    )


def _key(day: str, result: dict[str, Any]) -> Key:
    tier = str(result.get("service_tier") or "standard")
    return Key(
        day=day,
        model=str(result.get("model") or "unknown"),
        scope=str(result.get("workspace_id") or ""),
        tier=tier,
        batch=tier == "batch",
    )


def usage(api: AdminAPI, since: date, until: date) -> Iterator[UsageRow]:
    """Tokens per day x model x workspace x tier; input counts uncached, cache-read and cache-write tokens."""
    params = [*_window(since, until), *(("group_by[]", g) for g in ("model", "workspace_id", "service_tier"))]
    for page in api.pages("/v1/organizations/usage_report/messages", params):
        for bucket in page.get("data") or ():
            day = _day(bucket["starting_at"])
            for result in bucket.get("results") or ():
                creation = result.get("cache_creation") or {}
                read = int(result.get("cache_read_input_tokens") or 0)
                written = int(creation.get("ephemeral_5m_input_tokens") or 0) + int(
                    creation.get("ephemeral_1h_input_tokens") or 0
                )
                yield UsageRow(
                    _key(day, result),
                    input_tokens=int(result.get("uncached_input_tokens") or 0) + read + written,
                    output_tokens=int(result.get("output_tokens") or 0),
                    cache_read_tokens=read,
                )


def costs(api: AdminAPI, since: date, until: date) -> Iterator[CostRow]:
    """Cost in USD per bucket for token costs (they name a model), per day for the others (fees)."""
    params = [*_window(since, until), ("group_by[]", "workspace_id"), ("group_by[]", "description")]
    for page in api.pages("/v1/organizations/cost_report", params):
        for bucket in page.get("data") or ():
            day = _day(bucket["starting_at"])
            for result in bucket.get("results") or ():
                currency = str(result.get("currency") or "USD").upper()
                if currency != "USD":
                    raise ValueError(f"Anthropic reported a cost in {currency!r}; usagetap compares USD only")
                amount = Decimal(str(result.get("amount") or "0")) / 100
                tokens = result.get("model") and (result.get("cost_type") or "tokens") == "tokens"
                yield CostRow(day, amount, _key(day, result) if tokens else None)
