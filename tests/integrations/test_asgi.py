"""The ASGI middleware in real FastAPI / Starlette apps, driven through ``httpx.ASGITransport``."""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Optional

import httpx
import openai
import pytest
from fastapi import BackgroundTasks, FastAPI, Request, WebSocket
from fastapi.responses import StreamingResponse
from starlette.testclient import TestClient

import usagetap
from tests.integrations.conftest import HELLO, customers_by_response, delivered
from usagetap import _stats
from usagetap.integrations.asgi import UsagetapMiddleware


def org_header(request: Request) -> Optional[str]:
    return request.headers.get("x-org")


def build_app(client: openai.OpenAI, aclient: openai.AsyncOpenAI, resolver: Any, **options: Any) -> FastAPI:
    app = FastAPI()

    @app.get("/sync")
    def sync_endpoint() -> dict[str, str]:
        return {"id": client.chat.completions.create(model="gpt-4.1", messages=HELLO).id}  # type: ignore[arg-type]

    @app.get("/async")
    async def async_endpoint() -> dict[str, str]:
        await asyncio.sleep(0)
        completion = await aclient.chat.completions.create(model="gpt-4.1-mini", messages=HELLO)  # type: ignore[arg-type]
        return {"id": completion.id}

    @app.get("/stream")
    async def stream_endpoint() -> StreamingResponse:
        async def body() -> Any:
            stream = await aclient.chat.completions.create(model="gpt-4.1", messages=HELLO, stream=True)  # type: ignore[arg-type]
            async for chunk in stream:
                yield (chunk.choices[0].delta.content or "") if chunk.choices else ""

        return StreamingResponse(body(), media_type="text/plain")

    @app.get("/background")
    def background_endpoint(tasks: BackgroundTasks) -> dict[str, str]:
        tasks.add_task(client.chat.completions.create, model="gpt-4.1-nano", messages=HELLO)
        return {}

    @app.websocket("/ws")
    async def websocket_endpoint(websocket: WebSocket) -> None:
        await websocket.accept()
        await websocket.receive_text()
        completion = await aclient.chat.completions.create(model="gpt-4.1", messages=HELLO)  # type: ignore[arg-type]
        await websocket.send_text(completion.id)
        await websocket.close()

    app.add_middleware(UsagetapMiddleware, resolver=resolver, **options)
    return app


def http(app: Any) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://app.test")


async def test_concurrent_requests_each_bill_their_own_customer(sink, client, aclient) -> None:  # type: ignore[no-untyped-def]
    app = build_app(client, aclient, org_header)
    orgs = [f"org_{i}" for i in range(8)]
    async with http(app) as web:
        responses = await asyncio.gather(
            *(web.get("/sync" if i % 2 else "/async", headers={"x-org": org}) for i, org in enumerate(orgs))
        )
    assert [r.status_code for r in responses] == [200] * len(orgs)
    billed = customers_by_response(sink)
    assert {billed[r.json()["id"]] for r in responses} == set(orgs)
    assert [billed[r.json()["id"]] for r in responses] == orgs


async def test_async_resolver_with_dimensions_over_fixed_ones(sink, client, aclient) -> None:  # type: ignore[no-untyped-def]
    async def resolver(request: Request) -> tuple[str, dict[str, Any]]:
        await asyncio.sleep(0)
        return request.headers["x-org"], {"plan": "pro", "product": "chat-api"}

    app = build_app(client, aclient, resolver, dimensions={"product": "api", "region": "eu"})
    async with http(app) as web:
        assert (await web.get("/async", headers={"x-org": "org_9"})).status_code == 200
    [record] = delivered(sink)
    assert record.customer == "org_9"
    assert record.dimensions.items() >= {"plan": "pro", "product": "chat-api", "region": "eu"}.items()


async def test_streamed_body_and_background_task_are_attributed(sink, client, aclient) -> None:  # type: ignore[no-untyped-def]
    app = build_app(client, aclient, org_header)
    async with http(app) as web:
        streamed = await web.get("/stream", headers={"x-org": "org_stream"})
        assert streamed.status_code == 200 and streamed.text
        assert (await web.get("/background", headers={"x-org": "org_bg"})).status_code == 200
    records = delivered(sink)
    assert {(r.model, r.customer) for r in records} == {("gpt-4.1", "org_stream"), ("gpt-4.1-nano", "org_bg")}


def test_websocket_is_attributed(sink, client, aclient) -> None:  # type: ignore[no-untyped-def]
    app = build_app(client, aclient, org_header)
    with TestClient(app) as web, web.websocket_connect("/ws", headers={"x-org": "org_ws"}) as ws:
        ws.send_text("hi")
        response_id = ws.receive_text()
    assert customers_by_response(sink) == {response_id: "org_ws"}


async def test_request_without_a_customer_is_metered_unattributed(sink, client, aclient) -> None:  # type: ignore[no-untyped-def]
    app = build_app(client, aclient, org_header, dimensions={"product": "api"})
    async with http(app) as web:
        assert (await web.get("/async")).status_code == 200
        assert (await web.get("/async", headers={"x-org": ""})).status_code == 200
    records = delivered(sink)
    assert [(r.customer, r.dimensions["product"]) for r in records] == [(None, "api")] * 2


async def test_failing_resolver_never_fails_the_request(sink, client, aclient, caplog_usagetap) -> None:  # type: ignore[no-untyped-def]
    def resolver(request: Request) -> str:
        raise LookupError("no session store")

    app = build_app(client, aclient, resolver)
    async with http(app) as web:
        for _ in range(3):
            assert (await web.get("/async", headers={"x-org": "org_1"})).status_code == 200
    assert [r.customer for r in delivered(sink)] == [None] * 3
    assert _stats.snapshot()["resolver_errors"] == 3
    errors = [
        r for r in caplog_usagetap.records if r.levelno == logging.ERROR and "resolver" in r.getMessage()
    ]
    assert len(errors) == 1 and "test_failing_resolver" in errors[0].getMessage()


async def test_resolver_answer_of_the_wrong_shape_is_a_resolver_error(sink, client, aclient) -> None:  # type: ignore[no-untyped-def]
    app = build_app(client, aclient, lambda request: ("org_1", {"tags": ["a", "b"]}))
    async with http(app) as web:
        assert (await web.get("/async")).status_code == 200
    assert [r.customer for r in delivered(sink)] == [None]
    assert _stats.snapshot()["resolver_errors"] == 1


async def test_raw_scope_on_a_plain_asgi_app(sink, aclient) -> None:  # type: ignore[no-untyped-def]
    """No Starlette: the resolver reads the ASGI scope; integer ids become strings; lifespan passes by."""
    seen: list[str] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        seen.append(scope["type"])
        if scope["type"] == "lifespan":
            return
        completion = await aclient.chat.completions.create(model="gpt-4.1", messages=HELLO)
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": completion.id.encode()})

    def resolver(scope: dict[str, Any]) -> int:
        return int(dict(scope["headers"])[b"x-org-number"])

    wrapped = UsagetapMiddleware(app, resolver=resolver, raw_scope=True)
    await wrapped({"type": "lifespan"}, None, None)  # type: ignore[arg-type]
    async with http(wrapped) as web:
        response = await web.get("/", headers={"x-org-number": "4711"})
    assert customers_by_response(sink) == {response.text: "4711"}
    assert seen == ["lifespan", "http"]


def test_configuration_errors_raise_at_construction() -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None: ...

    with pytest.raises(TypeError, match="resolver must be callable"):
        UsagetapMiddleware(app, resolver="x-org")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="dimension 'tags' must be str"):
        UsagetapMiddleware(app, resolver=org_header, dimensions={"tags": ["a"]})  # type: ignore[dict-item]


def test_missing_starlette_is_one_clear_import_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(__import__("sys").modules, "starlette.requests", None)

    async def app(scope: Any, receive: Any, send: Any) -> None: ...

    with pytest.raises(ImportError, match=r"pip install 'usagetap\[fastapi\]'"):
        UsagetapMiddleware(app, resolver=org_header)
    assert UsagetapMiddleware(app, resolver=org_header, raw_scope=True).app is app


def test_scope_is_restored_after_the_request(sink, client, aclient) -> None:  # type: ignore[no-untyped-def]
    app = build_app(client, aclient, org_header)

    async def run() -> None:
        with usagetap.customer("outer", feature="batch"):
            async with http(app) as web:
                await web.get("/async", headers={"x-org": "inner"})
            await aclient.chat.completions.create(model="gpt-4.1", messages=HELLO)  # type: ignore[arg-type]

    asyncio.run(run())
    assert [(r.customer, r.dimensions.get("feature")) for r in delivered(sink)] == [
        ("inner", "batch"),
        ("outer", "batch"),
    ]
