"""Anthropic's usage and cost reports (admin key), as usage and cost rows.

The Usage and Cost Analytics API (``GET /v1/organizations/analytics/usage`` and ``/analytics/cost``,
beta ``analytics-usage-cost-2026-08-24``: one row per day and group) where the organization has it;
where it answers 404, the legacy pair: ``GET /v1/organizations/usage_report/messages`` (daily
buckets grouped by model, workspace and service tier) and ``/v1/organizations/cost_report`` (grouped
by workspace and description, which gives each token cost's model and tier). Amounts are decimal
strings in cents. Keys: ``GET /v1/organizations/api_keys`` (``partial_key_hint`` per key id).
https://platform.claude.com/docs/en/api/admin/usage_report/retrieve_messages
https://platform.claude.com/docs/en/api/admin/cost_report/retrieve
https://platform.claude.com/docs/en/api/admin/api_keys/list
https://platform.claude.com/docs/en/api/beta/organization/analytics/usage/list (the SDK's
``client.beta.organization.analytics.usage.list`` / ``cost.list`` types spell out the shapes)
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import date, datetime, time, timedelta, timezone
from decimal import Decimal
from typing import Any, Optional

from ._http import AdminAPI, NotFound
from ._model import CostRow, Key, UsageRow

__all__ = ["ANALYTICS_BETA", "BUCKETS_PER_PAGE", "DEFAULT_URL", "api_keys", "costs", "headers", "usage"]

DEFAULT_URL = "https://api.anthropic.com"
BUCKETS_PER_PAGE = 31  # the most daily buckets a legacy page holds
ROWS_PER_PAGE = 1000  # the most rows an analytics page holds
KEYS_PER_PAGE = 1000  # the most keys a listing page holds
VERSION = "2023-06-01"
ANALYTICS_BETA = "analytics-usage-cost-2026-08-24"
_BETA = {"anthropic-beta": ANALYTICS_BETA}
_GROUPS = ("model", "workspace_id", "service_tier")
_KEY_GROUPS = (*_GROUPS, "api_key_id")


def headers(key: str) -> dict[str, str]:
    return {"x-api-key": key, "anthropic-version": VERSION}


def _span(since: date, until: date) -> list[tuple[str, str]]:
    start = datetime.combine(since, time(0), timezone.utc)
    end = datetime.combine(until + timedelta(days=1), time(0), timezone.utc)
    return [
        ("starting_at", start.isoformat().replace("+00:00", "Z")),
        ("ending_at", end.isoformat().replace("+00:00", "Z")),
    ]


def _legacy(since: date, until: date, groups: tuple[str, ...]) -> list[tuple[str, str]]:
    return [
        *_span(since, until),
        ("bucket_width", "1d"),
        ("limit", str(BUCKETS_PER_PAGE)),
        *(("group_by[]", g) for g in groups),
    ]


def _analytics(since: date, until: date, groups: tuple[str, ...]) -> list[tuple[str, str]]:
    return [
        *_span(since, until),
        ("time_bucket_width", "1d"),
        ("limit", str(ROWS_PER_PAGE)),
        *(("group_by[]", g) for g in groups),
    ]


def _day(stamp: Any) -> str:
    return (
        datetime.fromisoformat(str(stamp).replace("Z", "+00:00")).astimezone(timezone.utc).date().isoformat()
    )


def _key(day: str, group: Mapping[str, Any]) -> Key:
    tier = str(group.get("service_tier") or "standard")
    return Key(
        day=day,
        model=str(group.get("model") or "unknown"),
        scope=str(group.get("workspace_id") or ""),
        tier=tier,
        batch=tier == "batch",
        api_key=str(group.get("api_key_id") or ""),
    )


def _usage_row(day: str, group: Mapping[str, Any], tokens: Mapping[str, Any]) -> UsageRow:
    creation = tokens.get("cache_creation") or {}
    read = int(tokens.get("cache_read_input_tokens") or 0)
    written = int(creation.get("ephemeral_5m_input_tokens") or 0) + int(
        creation.get("ephemeral_1h_input_tokens") or 0
    )
    return UsageRow(
        _key(day, group),
        input_tokens=int(tokens.get("uncached_input_tokens") or 0) + read + written,
        output_tokens=int(tokens.get("output_tokens") or 0),
        cache_read_tokens=read,
        requests=int(tokens.get("requests") or 0),
    )


def _cost_row(day: str, group: Mapping[str, Any], cost: Mapping[str, Any]) -> CostRow:
    currency = str(cost.get("currency") or "USD").upper()
    if currency != "USD":
        raise ValueError(f"Anthropic reported a cost in {currency!r}; usagetap compares USD only")
    amount = Decimal(str(cost.get("amount") or "0")) / 100
    tokens = group.get("model") and (group.get("cost_type") or "tokens") == "tokens"
    return CostRow(day, amount, _key(day, group) if tokens else None)


def usage(api: AdminAPI, since: date, until: date, *, by_key: bool = False) -> Iterator[UsageRow]:
    """Tokens per day x model x workspace x tier (x API key id); input counts uncached, cache-read and
    cache-write tokens."""
    groups = _KEY_GROUPS if by_key else _GROUPS
    rows = _or_none(lambda: list(_analytics_usage(api, since, until, groups)))
    if rows is not None:
        yield from rows
        return
    for page in api.pages("/v1/organizations/usage_report/messages", _legacy(since, until, groups)):
        for bucket in page.get("data") or ():
            day = _day(bucket["starting_at"])
            for result in bucket.get("results") or ():
                yield _usage_row(day, result, result)


def costs(api: AdminAPI, since: date, until: date) -> Iterator[CostRow]:
    """Cost in USD per bucket for token costs (they name a model), per day for the others (fees)."""
    rows = _or_none(lambda: list(_analytics_costs(api, since, until)))
    if rows is not None:
        yield from rows
        return
    params = _legacy(since, until, ("workspace_id", "description"))
    for page in api.pages("/v1/organizations/cost_report", params):
        for bucket in page.get("data") or ():
            day = _day(bucket["starting_at"])
            for result in bucket.get("results") or ():
                yield _cost_row(day, result, result)


def _analytics_usage(api: AdminAPI, since: date, until: date, groups: tuple[str, ...]) -> Iterator[UsageRow]:
    for page in api.pages("/v1/organizations/analytics/usage", _analytics(since, until, groups), _BETA):
        for row in page.get("data") or ():
            yield _usage_row(_day(row["starting_at"]), row.get("group") or {}, row.get("usage") or {})


def _analytics_costs(api: AdminAPI, since: date, until: date) -> Iterator[CostRow]:
    params = _analytics(since, until, ("cost_type", *_GROUPS))
    for page in api.pages("/v1/organizations/analytics/cost", params, _BETA):
        for row in page.get("data") or ():
            yield _cost_row(_day(row["starting_at"]), row.get("group") or {}, row.get("cost") or {})


def api_keys(api: AdminAPI) -> dict[str, str]:
    """Each key id of the organization with its ``partial_key_hint``."""
    out: dict[str, str] = {}
    for item in api.listing("/v1/organizations/api_keys", [("limit", str(KEYS_PER_PAGE))], "after_id"):
        if item.get("id") and item.get("partial_key_hint"):
            out[str(item["id"])] = str(item["partial_key_hint"])
    return out


def _or_none(read: Any) -> Optional[list[Any]]:
    """``read()``, or None when the organization has no analytics API (404)."""
    try:
        rows: list[Any] = read()
    except NotFound:
        return None
    return rows
