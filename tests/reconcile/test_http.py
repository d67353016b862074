"""The admin API reader: paging, rate limits and failures, and never showing the admin key."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import httpx
import pytest

from usagetap.reconcile._http import AdminAPI, AdminError, NotFound

KEY = "sk-admin-very-secret"


def _api(handler: Any, attempts: int = 4) -> AdminAPI:
    return AdminAPI(
        "http://admin.test/v1",
        {"Authorization": f"Bearer {KEY}"},
        secret=KEY,
        attempts=attempts,
        transport=httpx.MockTransport(handler),
    )


def test_a_429_is_retried_after_its_retry_after() -> None:
    answers = [
        httpx.Response(429, headers={"Retry-After": "0"}, json={}),
        httpx.Response(200, json={"ok": 1}),
    ]
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.url.path)
        return answers.pop(0)

    assert _api(handler).get("/organization/costs", []) == {"ok": 1}
    assert seen == ["/v1/organization/costs"] * 2


def test_pages_follow_next_page_while_has_more() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        page = request.url.params.get("page")
        if page is None:
            return httpx.Response(200, json={"data": [1], "has_more": True, "next_page": "p2"})
        return httpx.Response(200, json={"data": [2], "has_more": False, "next_page": None})

    pages = list(_api(handler).pages("/organization/costs", [("limit", "1")]))
    assert [p["data"] for p in pages] == [[1], [2]]


def test_amounts_are_read_as_exact_decimals() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=b'{"value": 0.1234567890123456789}')

    assert _api(handler).get("/x", [])["value"] == Decimal("0.1234567890123456789")


def test_a_failure_that_persists_gives_up_naming_the_path_and_status() -> None:
    calls = 0

    def handler(request: httpx.Request) -> httpx.Response:
        nonlocal calls
        calls += 1
        return httpx.Response(503, headers={"Retry-After": "0"}, json={"error": {"message": "down"}})

    with pytest.raises(AdminError, match=r"/organization/costs: HTTP 503: down \(gave up after 2 attempts\)"):
        _api(handler, attempts=2).get("/organization/costs", [])
    assert calls == 2


def test_an_error_echoing_the_admin_key_never_shows_it() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(401, json={"error": {"message": f"Incorrect API key provided: {KEY}"}})

    with pytest.raises(AdminError) as raised:
        _api(handler).get("/organization/costs", [])
    assert KEY not in str(raised.value)
    assert "the admin key was refused" in str(raised.value)


def test_a_missing_endpoint_is_not_found() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(404, json={"error": {"message": "no such route"}})

    with pytest.raises(NotFound):
        _api(handler).get("/organizations/analytics/usage", [])
