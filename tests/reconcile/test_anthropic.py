"""Reading Anthropic's usage and cost reports: the documented parameters and shapes."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

import httpx

from usagetap.reconcile import anthropic
from usagetap.reconcile._http import AdminAPI
from usagetap.reconcile._model import Key


def _api(pages: dict[str, dict[str, Any]], seen: list[httpx.Request]) -> AdminAPI:
    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        path = request.url.path
        if "/analytics/" in path and path not in pages:  # an organization without the analytics API
            return httpx.Response(
                404, json={"type": "error", "error": {"type": "not_found_error", "message": "-"}}
            )
        return httpx.Response(200, json=pages.get(path, {"data": [], "has_more": False}))

    return AdminAPI(
        anthropic.DEFAULT_URL, anthropic.headers("k"), secret="k", transport=httpx.MockTransport(handler)
    )


def test_the_usage_report_asks_for_daily_buckets_by_model_workspace_and_tier() -> None:
    seen: list[httpx.Request] = []
    list(anthropic.usage(_api({}, seen), date(2026, 11, 3), date(2026, 11, 4)))
    (_, request) = seen
    assert request.url.path == "/v1/organizations/usage_report/messages"
    params = request.url.params
    assert (params["starting_at"], params["ending_at"], params["bucket_width"]) == (
        "2026-11-03T00:00:00Z",
        "2026-11-05T00:00:00Z",
        "1d",
    )
    assert params.get_list("group_by[]") == ["model", "workspace_id", "service_tier"]
    assert (request.headers["x-api-key"], request.headers["anthropic-version"]) == ("k", "2023-06-01")


def test_usage_input_counts_uncached_cache_read_and_cache_write_tokens() -> None:
    result = {
        "uncached_input_tokens": 100,
        "cache_creation": {"ephemeral_1h_input_tokens": 7, "ephemeral_5m_input_tokens": 30},
        "cache_read_input_tokens": 500,
        "output_tokens": 40,
        "model": "claude-sonnet-4-0",
        "workspace_id": "wrkspc_1",
        "service_tier": "batch",
    }
    page = {"data": [{"starting_at": "2026-11-03T00:00:00Z", "results": [result]}], "has_more": False}
    seen: list[httpx.Request] = []
    path = "/v1/organizations/usage_report/messages"
    (row,) = anthropic.usage(_api({path: page}, seen), date(2026, 11, 3), date(2026, 11, 3))
    assert row.key == Key("2026-11-03", "claude-sonnet-4-0", "wrkspc_1", "batch", True)
    assert (row.input_tokens, row.output_tokens, row.cache_read_tokens) == (637, 40, 500)


def test_cost_amounts_in_cents_become_dollars_per_bucket_and_fees_per_day() -> None:
    results = [
        {"amount": "123.45", "currency": "USD", "model": "claude-sonnet-4-0", "cost_type": "tokens"},
        {"amount": "50", "currency": "USD", "model": None, "cost_type": "web_search"},
    ]
    page = {"data": [{"starting_at": "2026-11-03T00:00:00Z", "results": results}], "has_more": False}
    seen: list[httpx.Request] = []
    tokens, fees = anthropic.costs(
        _api({"/v1/organizations/cost_report": page}, seen), date(2026, 11, 3), date(2026, 11, 3)
    )
    assert seen[-1].url.params.get_list("group_by[]") == ["workspace_id", "description"]
    assert (tokens.amount, tokens.key) == (
        Decimal("1.2345"),
        Key("2026-11-03", "claude-sonnet-4-0", "", "standard", False),
    )
    assert (fees.amount, fees.key) == (Decimal("0.5"), None)


def test_the_analytics_api_is_read_where_the_organization_has_it() -> None:
    row = {
        "starting_at": "2026-11-03T00:00:00Z",
        "ending_at": "2026-11-04T00:00:00Z",
        "group": {"model": "claude-sonnet-4-0", "workspace_id": None, "service_tier": "priority"},
        "usage": {
            "uncached_input_tokens": 10,
            "cache_creation": {"ephemeral_1h_input_tokens": 0, "ephemeral_5m_input_tokens": 5},
            "cache_read_input_tokens": 20,
            "output_tokens": 8,
            "requests": 2,
        },
    }
    cost = {
        "starting_at": "2026-11-03T00:00:00Z",
        "group": {"cost_type": "tokens", "model": "claude-sonnet-4-0", "service_tier": "priority"},
        "cost": {"amount": "12.5", "currency": "USD", "list_amount": "12.5"},
    }
    pages = {
        "/v1/organizations/analytics/usage": {"data": [row], "has_more": False, "next_page": None},
        "/v1/organizations/analytics/cost": {"data": [cost], "has_more": False, "next_page": None},
    }
    seen: list[httpx.Request] = []
    api = _api(pages, seen)
    (used,) = anthropic.usage(api, date(2026, 11, 3), date(2026, 11, 3))
    (charged,) = anthropic.costs(api, date(2026, 11, 3), date(2026, 11, 3))
    key = Key("2026-11-03", "claude-sonnet-4-0", "", "priority", False)
    assert (used.key, used.input_tokens, used.output_tokens, used.requests) == (key, 35, 8, 2)
    assert (charged.key, charged.amount) == (key, Decimal("0.125"))
    assert [r.url.path for r in seen] == list(pages)
    assert {r.headers["anthropic-beta"] for r in seen} == {anthropic.ANALYTICS_BETA}
    assert seen[0].url.params["time_bucket_width"] == "1d"
    assert seen[1].url.params.get_list("group_by[]") == ["cost_type", "model", "workspace_id", "service_tier"]
