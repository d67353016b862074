"""Anthropic with_raw_response / with_streaming_response: raw objects unchanged; one record when parsed."""

from __future__ import annotations

import anthropic

from tests.instrument.conftest import delivered
from usagetap.sinks import Memory
from usagetap.testing import ProviderServer

MODEL = "claude-haiku-4-5"
MESSAGES = [{"role": "user", "content": "raw response please"}]


def test_with_raw_response_meters_once_when_parsed(
    claude: anthropic.Anthropic, claude_server: ProviderServer, sink: Memory
) -> None:
    raw = claude.messages.with_raw_response.create(model=MODEL, max_tokens=8, messages=MESSAGES)  # type: ignore[arg-type]
    assert raw.http_response.status_code == 200
    assert raw.headers.get("request-id", "").startswith("req_")
    assert delivered(sink) == []
    message = raw.parse()
    assert raw.parse() is message
    [record] = delivered(sink)
    assert record.response_id == message.id
    assert record.input_tokens == claude_server.issued[message.id].input_tokens


def test_raw_response_never_parsed_yields_no_record(claude: anthropic.Anthropic, sink: Memory) -> None:
    raw = claude.messages.with_raw_response.create(model=MODEL, max_tokens=8, messages=MESSAGES)  # type: ignore[arg-type]
    assert raw.http_response.json()["type"] == "message"
    assert delivered(sink) == []


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
    counted = claude.messages.with_raw_response.count_tokens(model=MODEL, messages=MESSAGES).parse()  # type: ignore[arg-type]
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


async def _maybe_await(value: object) -> object:
    """``parse()`` of an async raw response: sync in older SDKs (``LegacyAPIResponse``), async in newer."""
    import inspect

    return await value if inspect.isawaitable(value) else value  # type: ignore[no-any-return]
