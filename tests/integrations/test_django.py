"""The Django middleware in a real Django project (settings configured here), through its test clients."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Iterator
from typing import Any, Optional

import django
import openai
import pytest
from django.conf import settings

if not settings.configured:
    settings.configure(
        DEBUG=False,
        SECRET_KEY="usagetap-tests",
        ALLOWED_HOSTS=["testserver"],
        ROOT_URLCONF=__name__,
        INSTALLED_APPS=[],
        MIDDLEWARE=[],
        USE_TZ=True,
    )
    django.setup()

from django.core.exceptions import ImproperlyConfigured
from django.http import HttpRequest, JsonResponse, StreamingHttpResponse
from django.test import AsyncClient, Client, override_settings
from django.urls import path
from django.utils.asyncio import async_unsafe

from tests.integrations.conftest import HELLO, customers_by_response, delivered
from usagetap import _stats
from usagetap._context import Scope, current_scope
from usagetap.integrations.django import UsagetapMiddleware

MIDDLEWARE = "usagetap.integrations.django.UsagetapMiddleware"
clients: dict[str, Any] = {}


def sync_view(request: HttpRequest) -> JsonResponse:
    completion = clients["sync"].chat.completions.create(model="gpt-4.1", messages=HELLO)
    return JsonResponse({"id": completion.id})


async def async_view(request: HttpRequest) -> JsonResponse:
    completion = await clients["async"].chat.completions.create(model="gpt-4.1-mini", messages=HELLO)
    return JsonResponse({"id": completion.id})


def streaming_view(request: HttpRequest) -> StreamingHttpResponse:
    def body() -> Iterator[str]:
        yield "start\n"
        completion = clients["sync"].chat.completions.create(model="gpt-4.1-nano", messages=HELLO)
        yield completion.id

    return StreamingHttpResponse(body())


async def async_streaming_view(request: HttpRequest) -> StreamingHttpResponse:
    async def body() -> AsyncIterator[str]:
        yield "start\n"
        stream = await clients["async"].chat.completions.create(model="gpt-4.1", messages=HELLO, stream=True)
        async for _ in stream:
            pass
        yield "done"

    return StreamingHttpResponse(body())


urlpatterns = [
    path("sync", sync_view),
    path("async", async_view),
    path("stream", streaming_view),
    path("astream", async_streaming_view),
]


def org_header(request: HttpRequest) -> Optional[str]:
    return request.headers.get("X-Org")


resolver_threads: list[int] = []


@async_unsafe
def org_header_orm_style(request: HttpRequest) -> Optional[str]:
    """Guarded like the ORM: raises SynchronousOnlyOperation when called inside an event loop."""
    resolver_threads.append(threading.get_ident())
    return request.headers.get("X-Org")


async def org_header_async(request: HttpRequest) -> tuple[Optional[str], dict[str, Any]]:
    await asyncio.sleep(0)
    return request.headers.get("X-Org"), {"via": "async-resolver"}


class SubclassMiddleware(UsagetapMiddleware):
    dimensions = {"product": "web"}  # noqa: RUF012

    def resolve(self, request: HttpRequest) -> Any:
        return request.headers.get("X-Tenant"), {"tenant_header": True}


def factory_middleware(get_response: Any) -> UsagetapMiddleware:
    return UsagetapMiddleware(get_response, resolver=org_header, dimensions={"product": "factory"})


def failing_resolver(request: HttpRequest) -> str:
    raise KeyError("session")


@pytest.fixture(autouse=True)
def sdk_clients(client: openai.OpenAI, aclient: openai.AsyncOpenAI) -> Iterator[None]:
    clients.update({"sync": client, "async": aclient})
    yield
    clients.clear()


def configured(**overrides: Any) -> Any:
    values = {"MIDDLEWARE": [MIDDLEWARE], "USAGETAP_RESOLVER": f"{__name__}.org_header", **overrides}
    return override_settings(**values)


def test_wsgi_requests_bill_the_resolved_customer(sink) -> None:  # type: ignore[no-untyped-def]
    with configured(USAGETAP_DIMENSIONS={"product": "web"}):
        web = Client()
        ids = {org: web.get("/sync", headers={"X-Org": org}).json()["id"] for org in ("org_a", "org_b")}
        anonymous = web.get("/sync").json()["id"]
    records = {r.response_id: r for r in delivered(sink)}
    assert {org: records[i].customer for org, i in ids.items()} == {"org_a": "org_a", "org_b": "org_b"}
    assert records[anonymous].customer is None
    assert {r.dimensions["product"] for r in records.values()} == {"web"}


async def test_asgi_requests_run_a_sync_resolver_off_the_event_loop(sink) -> None:  # type: ignore[no-untyped-def]
    resolver_threads.clear()
    with configured(USAGETAP_RESOLVER=org_header_orm_style):
        web = AsyncClient()
        responses = await asyncio.gather(
            *(web.get("/async", headers={"X-Org": f"org_{i}"}) for i in range(4)),
        )
    billed = customers_by_response(sink)
    assert [billed[r.json()["id"]] for r in responses] == [f"org_{i}" for i in range(4)]
    assert len(resolver_threads) == 4 and threading.get_ident() not in resolver_threads


def test_async_resolver_under_wsgi(sink) -> None:  # type: ignore[no-untyped-def]
    with configured(USAGETAP_RESOLVER=f"{__name__}.org_header_async"):
        response_id = Client().get("/sync", headers={"X-Org": "org_async"}).json()["id"]
    [record] = delivered(sink)
    assert (record.response_id, record.customer, record.dimensions["via"]) == (
        response_id,
        "org_async",
        "async-resolver",
    )


@pytest.mark.parametrize(
    ("middleware", "headers", "expected"),
    [
        (f"{__name__}.SubclassMiddleware", {"X-Tenant": "t_1"}, ("t_1", "web")),
        (f"{__name__}.factory_middleware", {"X-Org": "org_f"}, ("org_f", "factory")),
    ],
)
def test_configured_in_code(sink, middleware: str, headers: dict, expected: tuple) -> None:  # type: ignore[no-untyped-def]
    with override_settings(MIDDLEWARE=[middleware]):
        Client().get("/sync", headers=headers)
    [record] = delivered(sink)
    assert (record.customer, record.dimensions["product"]) == expected


def test_streamed_body_is_billed_after_the_view_returned(sink) -> None:  # type: ignore[no-untyped-def]
    with configured():
        response = Client().get("/stream", headers={"X-Org": "org_stream"})
        assert response.streaming
        body = b"".join(response.streaming_content).decode()  # iterated after the middleware returned
    response_id = body.splitlines()[-1]
    assert customers_by_response(sink) == {response_id: "org_stream"}


async def test_async_streamed_body_is_billed_after_the_view_returned(sink) -> None:  # type: ignore[no-untyped-def]
    with configured():
        response = await AsyncClient().get("/astream", headers={"X-Org": "org_astream"})
        chunks = [chunk async for chunk in response.streaming_content]
    assert b"".join(chunks) == b"start\ndone"
    assert [r.customer for r in delivered(sink)] == ["org_astream"]


def test_failing_resolver_serves_the_request_unattributed(sink) -> None:  # type: ignore[no-untyped-def]
    with configured(USAGETAP_RESOLVER=failing_resolver):
        web = Client()
        assert [web.get("/sync", headers={"X-Org": "org_1"}).status_code for _ in range(2)] == [200, 200]
    assert [r.customer for r in delivered(sink)] == [None, None]
    assert _stats.snapshot()["resolver_errors"] == 2


@pytest.mark.parametrize(
    ("resolver", "message"),
    [(None, "UsagetapMiddleware needs a resolver"), (42, "USAGETAP_RESOLVER is not callable")],
)
def test_misconfiguration_fails_loudly_at_startup(resolver: Any, message: str) -> None:
    with (
        override_settings(MIDDLEWARE=[MIDDLEWARE], USAGETAP_RESOLVER=resolver),
        pytest.raises(ImproperlyConfigured, match=message),
    ):
        Client().get("/sync")


def test_constructor_arguments_win_over_settings() -> None:
    scopes: list[Scope] = []

    def get_response(request: HttpRequest) -> JsonResponse:
        scopes.append(current_scope())
        return JsonResponse({})

    with configured(USAGETAP_DIMENSIONS={"product": "settings"}):
        middleware = UsagetapMiddleware(
            get_response, resolver=org_header_async, dimensions={"product": "arg"}
        )
    request = HttpRequest()
    request.META["HTTP_X_ORG"] = "org_ctor"
    middleware(request)
    [scope] = scopes
    assert scope.customer == "org_ctor"
    assert dict(scope.dimensions) == {"product": "arg", "via": "async-resolver"}
    assert current_scope().customer is None
