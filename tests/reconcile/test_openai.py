"""Reading OpenAI's organization usage and costs: the documented parameters and shapes."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

import httpx

from usagetap.reconcile import openai
from usagetap.reconcile._http import AdminAPI
from usagetap.reconcile._model import Key

NOV_3 = 1793664000  # 2026-11-03T00:00:00Z


def _api(pages: dict[str, dict[str, Any]], seen: list[httpx.Request]) -> AdminAPI:
    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json=pages.get(request.url.path, {"data": [], "has_more": False}))

    return AdminAPI(
        openai.DEFAULT_URL, openai.headers("k"), secret="k", transport=httpx.MockTransport(handler)
    )


def test_usage_asks_for_daily_buckets_grouped_by_model_project_and_for_completions_batch_and_tier() -> None:
    seen: list[httpx.Request] = []
    list(openai.usage(_api({}, seen), date(2026, 11, 3), date(2026, 11, 4)))
    first = seen[0]
    assert first.url.path == "/v1/organization/usage/completions"
    assert seen[1].url.path == "/v1/organization/usage/embeddings"
    params = first.url.params
    assert (params["start_time"], params["end_time"], params["bucket_width"]) == (
        str(NOV_3),
        str(NOV_3 + 2 * 86400),
        "1d",
    )
    assert params.get_list("group_by") == ["model", "project_id", "batch", "service_tier"]
    assert seen[1].url.params.get_list("group_by") == ["model", "project_id"]
    assert first.headers["authorization"] == "Bearer k"


def test_usage_results_become_rows_with_cached_tokens_inside_input() -> None:
    page = {
        "object": "page",
        "data": [
            {
                "object": "bucket",
                "start_time": NOV_3,
                "end_time": NOV_3 + 86400,
                "results": [
                    {
                        "object": "organization.usage.completions.result",
                        "input_tokens": 1200,
                        "output_tokens": 300,
                        "input_cached_tokens": 1024,
                        "num_model_requests": 4,
                        "project_id": "proj_x",
                        "model": "gpt-4.1",
                        "batch": True,
                        "service_tier": None,
                    }
                ],
            }
        ],
        "has_more": False,
        "next_page": None,
    }
    seen: list[httpx.Request] = []
    (row,) = openai.usage(
        _api({"/v1/organization/usage/completions": page}, seen), date(2026, 11, 3), date(2026, 11, 3)
    )
    assert row.key == Key("2026-11-03", "gpt-4.1", "proj_x", "default", True)
    assert (row.input_tokens, row.output_tokens, row.cache_read_tokens, row.requests) == (1200, 300, 1024, 4)


def test_costs_are_per_day_in_dollars() -> None:
    page = {
        "data": [
            {
                "start_time": NOV_3,
                "results": [
                    {"amount": {"value": 0.25, "currency": "usd"}, "line_item": None},
                    {"amount": {"value": 1.5, "currency": "usd"}, "line_item": None},
                ],
            }
        ],
        "has_more": False,
    }
    seen: list[httpx.Request] = []
    rows = list(
        openai.costs(_api({"/v1/organization/costs": page}, seen), date(2026, 11, 3), date(2026, 11, 3))
    )
    assert [(r.day, r.amount, r.key) for r in rows] == [
        ("2026-11-03", Decimal("0.25"), None),
        ("2026-11-03", Decimal("1.5"), None),
    ]
