"""Chat streams show the caller exactly the chunks a bare client shows: only the chunk usagetap's
``include_usage`` caused is hidden; usage seen before the stream finished makes a partial record."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import openai
import pytest

import usagetap
from tests.instrument import sse_bodies as bodies
from tests.instrument.conftest import delivered
from usagetap.sinks import Memory

MESSAGES = [{"role": "user", "content": "capital of France?"}]
OPENAI_URL = "https://api.openai.com/v1"


def _client(body: bodies.Body, *, base_url: str = OPENAI_URL, is_async: bool = False, **http: Any) -> Any:
    cls = openai.AsyncOpenAI if is_async else openai.OpenAI
    return cls(
        api_key="sk-test",
        base_url=base_url,
        http_client=bodies.openai_http(body, is_async, **http),
        max_retries=0,
    )


async def _chunks(client: Any, model: str = "gpt-4.1-mini", stop_after: int = 0) -> list[Any]:
    """The chunks the caller reads (all, or the first ``stop_after``, then the stream is closed)."""
    stream = client.chat.completions.create(model=model, messages=MESSAGES, stream=True)
    seen: list[Any] = []
    if isinstance(client, openai.AsyncOpenAI):
        async with await stream as chunks:
            async for chunk in chunks:
                seen.append(chunk)
                if len(seen) == stop_after:
                    break
    else:
        with stream as chunks:
            for chunk in chunks:
                seen.append(chunk)
                if len(seen) == stop_after:
                    break
    return bodies.dumps(seen)


def _lines(client: Any, model: str = "gpt-4.1-mini", stop_after: int = 0) -> list[str]:
    """The raw lines read through ``with_streaming_response`` (all, or the first ``stop_after``)."""
    seen: list[str] = []
    with client.chat.completions.with_streaming_response.create(
        model=model, messages=MESSAGES, stream=True
    ) as response:
        for line in response.iter_lines():
            seen.append(line)
            if len(seen) == stop_after:
                break
    return seen


NOVITA = {
    "hf-router-path": ("https://router.huggingface.co/novita/v3/openai", "meta-llama/llama-3.1-8b-instruct"),
    "hf-router-model": ("https://router.huggingface.co/v1", "meta-llama/Llama-3.1-8B-Instruct:novita"),
    "novita": ("https://api.novita.ai/v3/openai", "meta-llama/llama-3.1-8b-instruct"),
}


def _unasked(asked: bool) -> bytes:
    return bodies.chat_body(asked, unasked_usage=True, nulls=False)


@pytest.mark.parametrize("server", list(NOVITA))
async def test_usage_chunk_a_server_sends_unasked_is_shown(server: str, sink: Memory) -> None:
    base_url, model = NOVITA[server]
    bare = await _chunks(_client(_unasked, base_url=base_url), model)
    seen = await _chunks(usagetap.wrap(_client(_unasked, base_url=base_url)), model)
    assert seen == bare
    assert len(seen) == 4 and seen[-1]["usage"]["completion_tokens"] == 4
    [record] = delivered(sink)
    assert (record.status, record.input_tokens, record.output_tokens) == ("ok", 23, 4)


def test_raw_usage_event_a_server_sends_unasked_is_shown(sink: Memory) -> None:
    base_url, model = NOVITA["hf-router-path"]
    bare = _lines(_client(_unasked, base_url=base_url, unread=True), model)
    seen = _lines(usagetap.wrap(_client(_unasked, base_url=base_url, unread=True)), model)
    assert seen == bare
    [record] = delivered(sink)
    assert (record.status, record.output_tokens) == ("ok", 4)


@pytest.mark.parametrize("is_async", [False, True], ids=["sync", "async"])
async def test_null_usage_chunk_usagetap_asked_for_is_hidden(is_async: bool, sink: Memory) -> None:
    def body(asked: bool) -> bytes:
        return bodies.chat_body(asked, usage=None)

    bare = await _chunks(_client(body, is_async=is_async))
    seen = await _chunks(usagetap.wrap(_client(body, is_async=is_async)))
    assert seen == bare
    assert len(seen) == 3
    [record] = delivered(sink)
    assert record.status == "partial"


async def test_a_usage_chunk_after_the_one_usagetap_asked_for_is_the_servers_and_shown(sink: Memory) -> None:
    def body(asked: bool) -> bytes:
        theirs = bodies.chat_usage_chunk()
        chunks = [bodies.chat_chunk("Ly"), bodies.chat_chunk("on", finish="stop")]
        return bodies.sse(*chunks, *([bodies.chat_usage_chunk()] if asked else []), theirs)

    bare = await _chunks(_client(body))
    seen = await _chunks(usagetap.wrap(_client(body)))
    assert seen == bare
    assert len(seen) == 3
    [record] = delivered(sink)
    assert (record.status, record.output_tokens) == ("ok", 4)


@pytest.mark.parametrize("is_async", [False, True], ids=["sync", "async"])
async def test_usage_seen_mid_stream_before_an_early_break_is_partial(is_async: bool, sink: Memory) -> None:
    bare = await _chunks(_client(bodies.cumulative_chat_body, is_async=is_async), stop_after=2)
    seen = await _chunks(usagetap.wrap(_client(bodies.cumulative_chat_body, is_async=is_async)), stop_after=2)
    assert seen == bare
    [record] = delivered(sink)
    assert (record.status, record.input_tokens, record.output_tokens) == ("partial", 23, 2)


def test_raw_usage_seen_mid_stream_before_the_body_is_closed_is_partial(sink: Memory) -> None:
    read: Callable[[Any], list[str]] = lambda client: _lines(client, stop_after=4)  # noqa: E731
    bare = read(_client(bodies.cumulative_chat_body, unread=True))
    seen = read(usagetap.wrap(_client(bodies.cumulative_chat_body, unread=True)))
    assert seen == bare
    [record] = delivered(sink)
    assert (record.status, record.output_tokens) == ("partial", 2)
