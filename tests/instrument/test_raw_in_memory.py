"""Raw event streams whose body is already in memory (``httpx.MockTransport``, respx, caching
transports: ``content=bytes``): metered from that body, and the caller reads what a bare client reads."""

from __future__ import annotations

import inspect
import uuid
from collections.abc import Callable
from typing import Any

import openai
import pytest

import usagetap
from tests.instrument import sse_bodies as bodies
from tests.instrument.conftest import delivered, needs_responses
from usagetap.sinks import Memory

MESSAGES = [{"role": "user", "content": "in memory"}]


class Surface:
    """One OpenAI stream surface: how to call it, the body its server sends, the usage it bills.

    A chat server asked for usage (by usagetap) adds ``usage: null`` to every chunk when ``nulls``:
    the parsed chunks are the same, their raw bytes are not (the server's doing).
    """

    def __init__(self, name: str, api: Callable[[Any], Any], kwargs: dict[str, Any], tokens: tuple[int, int]):
        self.name = name
        self.api = api
        self.kwargs = {**kwargs, "stream": True}
        self.tokens = tokens
        self.response_id = f"resp_fx_{uuid.uuid4().hex[:10]}"  # Responses ids are metered once each
        self.nulls = False
        self.usage: Any = bodies.CHAT_USAGE

    def body(self, asked: bool) -> bytes:
        if self.name == "chat":
            return bodies.chat_body(asked, nulls=self.nulls, usage=self.usage)
        if self.name == "completions":
            return bodies.completions_body(asked)
        return bodies.responses_body(self.response_id)


SURFACES = {
    "chat": (lambda c: c.chat.completions, {"model": "gpt-4.1-mini", "messages": MESSAGES}, (23, 4)),
    "completions": (lambda c: c.completions, {"model": "gpt-3.5-turbo-instruct", "prompt": "Say hi"}, (6, 2)),
    "responses": (lambda c: c.responses, {"model": "gpt-4.1", "input": "Say hello"}, (31, 5)),
}


@pytest.fixture(params=[pytest.param(n, marks=needs_responses) if n == "responses" else n for n in SURFACES])
def surface(request: pytest.FixtureRequest) -> Surface:
    return Surface(request.param, *SURFACES[request.param])


def _client(surface: Surface, is_async: bool, wrapped: bool) -> Any:
    cls = openai.AsyncOpenAI if is_async else openai.OpenAI
    client = cls(api_key="sk-test", http_client=bodies.openai_http(surface.body, is_async), max_retries=0)
    return usagetap.wrap(client) if wrapped else client


async def _await(value: Any) -> Any:
    return await value if inspect.isawaitable(value) else value


async def _items(stream: Any) -> list[Any]:
    if hasattr(stream, "__aiter__"):
        return bodies.dumps([item async for item in stream])
    return bodies.dumps(list(stream))


async def _raw_parse(surface: Surface, client: Any) -> Any:
    raw = await _await(surface.api(client).with_raw_response.create(**surface.kwargs))
    return await _items(await _await(raw.parse()))


async def _raw_text(surface: Surface, client: Any) -> Any:
    raw = await _await(surface.api(client).with_raw_response.create(**surface.kwargs))
    return raw.http_response.text


async def _streaming_lines(surface: Surface, client: Any) -> Any:
    manager = surface.api(client).with_streaming_response.create(**surface.kwargs)
    if hasattr(manager, "__aenter__"):
        async with manager as response:
            return [line async for line in response.iter_lines()]
    with manager as response:
        return list(response.iter_lines())


async def _streaming_parse(surface: Surface, client: Any) -> Any:
    manager = surface.api(client).with_streaming_response.create(**surface.kwargs)
    if hasattr(manager, "__aenter__"):
        async with manager as response:
            return await _items(await response.parse())
    with manager as response:
        return await _items(response.parse())


READS = {
    "raw_parse": _raw_parse,
    "raw_text": _raw_text,
    "streaming_lines": _streaming_lines,
    "streaming_parse": _streaming_parse,
}


@pytest.mark.parametrize("is_async", [False, True], ids=["sync", "async"])
@pytest.mark.parametrize("read", list(READS))
async def test_raw_stream_in_memory_is_metered_and_reads_like_a_bare_one(
    read: str, is_async: bool, surface: Surface, sink: Memory
) -> None:
    surface.nulls = read.endswith("parse")
    bare = await READS[read](surface, _client(surface, is_async, wrapped=False))
    seen = await READS[read](surface, _client(surface, is_async, wrapped=True))
    assert seen == bare
    [record] = delivered(sink)
    assert record.status == "ok"
    assert (record.input_tokens, record.output_tokens) == surface.tokens


async def test_raw_chat_stream_in_memory_hides_a_null_usage_chunk_usagetap_asked_for(sink: Memory) -> None:
    surface = Surface("chat", *SURFACES["chat"])
    surface.usage = None
    bare = await _raw_text(surface, _client(surface, False, wrapped=False))
    seen = await _raw_text(surface, _client(surface, False, wrapped=True))
    assert seen == bare
    [record] = delivered(sink)
    assert record.status == "partial"
