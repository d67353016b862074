"""Anthropic with_raw_response / with_streaming_response: the raw object is unchanged; one record when it
is parsed or its body is read (however it is read), a partial one when it is closed or dropped unread."""

from __future__ import annotations

import gc
import importlib
import json
from pathlib import Path

import anthropic
import pytest

import usagetap
from tests.instrument.conftest import delivered
from usagetap.sinks import Memory
from usagetap.testing import ProviderServer

MODEL = "claude-haiku-4-5"
MESSAGES = [{"role": "user", "content": "raw response please"}]


def _events(lines: list[str]) -> list[dict]:
    return [json.loads(line[5:]) for line in lines if line.startswith("data:")]


def test_with_raw_response_is_metered_once_from_the_body_already_read(
    claude: anthropic.Anthropic, claude_server: ProviderServer, sink: Memory
) -> None:
    raw = claude.messages.with_raw_response.create(model=MODEL, max_tokens=8, messages=MESSAGES)  # type: ignore[arg-type]
    assert raw.http_response.status_code == 200
    assert raw.headers.get("request-id", "").startswith("req_")
    [record] = delivered(sink)
    message = raw.parse()
    assert raw.parse() is message
    assert delivered(sink) == [record]
    assert record.response_id == message.id
    assert record.input_tokens == claude_server.issued[message.id].input_tokens


def test_raw_body_read_without_parse_is_metered(
    claude: anthropic.Anthropic, claude_server: ProviderServer, sink: Memory
) -> None:
    raw = claude.messages.with_raw_response.create(model=MODEL, max_tokens=8, messages=MESSAGES)  # type: ignore[arg-type]
    body = raw.http_response.json()
    assert body["type"] == "message"
    [record] = delivered(sink)
    issued = claude_server.issued[body["id"]]
    assert (record.response_id, record.status, record.provider) == (body["id"], "ok", "anthropic")
    assert (record.input_tokens, record.output_tokens) == (issued.input_tokens, issued.output_tokens)


@pytest.mark.parametrize("read", ["read", "json", "text", "iter_bytes", "iter_text", "iter_lines"])
def test_with_streaming_response_body_read_any_way_is_metered_once(
    read: str, claude: anthropic.Anthropic, claude_server: ProviderServer, sink: Memory
) -> None:
    with claude.messages.with_streaming_response.create(
        model=MODEL, max_tokens=8, messages=MESSAGES
    ) as response:  # type: ignore[arg-type]
        result = getattr(response, read)()
        if read.startswith("iter_"):
            result = list(result)
        assert result
    [record] = delivered(sink)
    issued = claude_server.issued[record.response_id]  # type: ignore[index]
    assert record.status == "ok"
    assert (record.input_tokens, record.output_tokens) == (issued.input_tokens, issued.output_tokens)


@pytest.mark.parametrize("read", ["iter_lines", "iter_bytes", "read"])
def test_streamed_body_read_raw_is_metered_with_the_provider_usage(
    read: str, claude: anthropic.Anthropic, claude_server: ProviderServer, sink: Memory
) -> None:
    with claude.messages.with_streaming_response.create(
        model=MODEL,
        max_tokens=8,
        messages=MESSAGES,  # type: ignore[arg-type]
        stream=True,
    ) as response:
        if read == "iter_lines":
            lines = list(response.iter_lines())
        else:
            data = b"".join(response.iter_bytes()) if read == "iter_bytes" else response.read()
            lines = data.decode().splitlines()
    assert _events(lines)[-1]["type"] == "message_stop"
    [record] = delivered(sink)
    issued = claude_server.issued[record.response_id]  # type: ignore[index]
    assert (record.status, record.output_tokens) == ("ok", 8)
    assert record.input_tokens == issued.input_tokens


def test_raw_stream_read_without_parse_is_metered(
    claude: anthropic.Anthropic, claude_server: ProviderServer, sink: Memory
) -> None:
    raw = claude.messages.with_raw_response.create(model=MODEL, max_tokens=8, messages=MESSAGES, stream=True)  # type: ignore[arg-type]
    assert b"message_stop" in raw.http_response.read()
    [record] = delivered(sink)
    assert (record.status, record.output_tokens) == ("ok", 8)
    assert record.input_tokens == claude_server.issued[record.response_id].input_tokens  # type: ignore[index]


def test_streaming_response_closed_unread_yields_one_partial_record(
    claude: anthropic.Anthropic, sink: Memory
) -> None:
    with claude.messages.with_streaming_response.create(model=MODEL, max_tokens=8, messages=MESSAGES):  # type: ignore[arg-type]
        pass
    with claude.messages.with_streaming_response.create(
        model=MODEL,
        max_tokens=8,
        messages=MESSAGES,  # type: ignore[arg-type]
        stream=True,
    ):
        pass
    records = delivered(sink)
    assert [r.status for r in records] == ["partial", "partial"]
    assert all(r.request_model == MODEL for r in records)


def test_unparsed_raw_stream_dropped_is_metered_when_collected(
    claude: anthropic.Anthropic, sink: Memory
) -> None:
    raw = claude.messages.with_raw_response.create(model=MODEL, max_tokens=8, messages=MESSAGES, stream=True)  # type: ignore[arg-type]
    del raw
    gc.collect()
    [record] = delivered(sink)
    assert (record.status, record.request_model) == ("partial", MODEL)


def test_raw_stream_is_metered_when_the_parsed_stream_is_read(
    claude: anthropic.Anthropic, claude_server: ProviderServer, sink: Memory
) -> None:
    raw = claude.messages.with_raw_response.create(model=MODEL, max_tokens=8, messages=MESSAGES, stream=True)  # type: ignore[arg-type]
    stream = raw.parse()
    assert type(stream) is anthropic.Stream
    assert [e.type for e in stream][-1] == "message_stop"
    [record] = delivered(sink)
    assert record.status == "ok"
    assert record.output_tokens == claude_server.issued[record.response_id].output_tokens  # type: ignore[index]


def test_with_streaming_response_meters_once_when_parsed(
    claude: anthropic.Anthropic, claude_server: ProviderServer, sink: Memory
) -> None:
    with claude.messages.with_streaming_response.create(
        model=MODEL, max_tokens=8, messages=MESSAGES
    ) as response:  # type: ignore[arg-type]
        message = response.parse()
        response.parse()
    with claude.messages.with_streaming_response.create(
        model=MODEL,
        max_tokens=8,
        messages=MESSAGES,  # type: ignore[arg-type]
        stream=True,
    ) as response:
        for _ in response.parse():
            pass
    first, second = delivered(sink)
    assert first.response_id == message.id
    assert second.status == "ok"
    for record in (first, second):
        assert record.input_tokens == claude_server.issued[record.response_id].input_tokens  # type: ignore[index]


def test_beta_raw_response_and_count_tokens(
    claude: anthropic.Anthropic, claude_server: ProviderServer, sink: Memory
) -> None:
    raw = claude.beta.messages.with_raw_response.create(model=MODEL, max_tokens=8, messages=MESSAGES)  # type: ignore[arg-type]
    message = raw.parse()
    messages = claude.messages if hasattr(claude.messages, "count_tokens") else claude.beta.messages
    counted = messages.with_raw_response.count_tokens(model=MODEL, messages=MESSAGES).parse()  # type: ignore[arg-type]
    assert counted.input_tokens > 0
    [record] = delivered(sink)
    assert record.response_id == message.id


async def test_async_raw_and_streaming_responses(
    aclaude: anthropic.AsyncAnthropic, claude_server: ProviderServer, sink: Memory
) -> None:
    raw = await aclaude.messages.with_raw_response.create(model=MODEL, max_tokens=8, messages=MESSAGES)  # type: ignore[arg-type]
    first = await _maybe_await(raw.parse())
    async with aclaude.messages.with_streaming_response.create(
        model=MODEL,
        max_tokens=8,
        messages=MESSAGES,  # type: ignore[arg-type]
        stream=True,
    ) as response:
        stream = await response.parse()
        assert type(stream) is anthropic.AsyncStream
        async for _ in stream:
            pass
    records = delivered(sink)
    assert len(records) == 2
    assert records[0].response_id == first.id and records[1].status == "ok"
    for record in records:
        assert record.input_tokens == claude_server.issued[record.response_id].input_tokens  # type: ignore[index]


@pytest.mark.parametrize("read", ["read", "json", "text", "iter_bytes", "iter_lines"])
async def test_async_streaming_response_body_read_any_way_is_metered_once(
    read: str, aclaude: anthropic.AsyncAnthropic, claude_server: ProviderServer, sink: Memory
) -> None:
    async with aclaude.messages.with_streaming_response.create(
        model=MODEL,
        max_tokens=8,
        messages=MESSAGES,  # type: ignore[arg-type]
        stream=read.startswith("iter_"),
    ) as response:
        if read.startswith("iter_"):
            assert [item async for item in getattr(response, read)()]
        else:
            assert await getattr(response, read)()
    [record] = delivered(sink)
    issued = claude_server.issued[record.response_id]  # type: ignore[index]
    assert record.status == "ok"
    assert (record.input_tokens, record.output_tokens) == (issued.input_tokens, issued.output_tokens)


async def test_async_raw_body_read_without_parse_is_metered(
    aclaude: anthropic.AsyncAnthropic, claude_server: ProviderServer, sink: Memory
) -> None:
    raw = await aclaude.messages.with_raw_response.create(model=MODEL, max_tokens=8, messages=MESSAGES)  # type: ignore[arg-type]
    body = raw.http_response.json()
    [record] = delivered(sink)
    assert (record.response_id, record.status) == (body["id"], "ok")
    assert record.output_tokens == claude_server.issued[body["id"]].output_tokens


async def _maybe_await(value: object) -> object:
    """``parse()`` of an async raw response: sync in older SDKs (``LegacyAPIResponse``), async in newer."""
    import inspect

    return await value if inspect.isawaitable(value) else value  # type: ignore[no-any-return]


def test_a_raw_event_stream_read_in_full_before_it_is_returned_is_metered(sink: Memory) -> None:
    """A transport that hands the SDK the whole body at once (httpx.MockTransport) still yields the usage."""
    body = (Path(__file__).parent.parent / "fixtures" / "anthropic" / "stream_basic.sse").read_bytes()
    base = importlib.import_module("anthropic._base_client")
    hx = importlib.import_module("httpx2" if hasattr(base, "httpx2") else "httpx")
    transport = hx.MockTransport(
        lambda request: hx.Response(200, headers={"content-type": "text/event-stream"}, content=body)
    )
    claude = usagetap.wrap(
        anthropic.Anthropic(api_key="sk-ant-test", http_client=hx.Client(transport=transport))
    )
    raw = claude.messages.with_raw_response.create(model=MODEL, max_tokens=8, messages=MESSAGES, stream=True)  # type: ignore[arg-type]
    assert raw.http_response.read() == body
    [record] = delivered(sink)
    assert (record.provider, record.status, record.input_tokens, record.output_tokens) == (
        "anthropic",
        "ok",
        25,
        15,
    )
