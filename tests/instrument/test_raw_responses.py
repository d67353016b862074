"""with_raw_response / with_streaming_response: the raw object is unchanged; one record when it is
parsed or its body is read (however it is read), a partial one when it is closed unread."""

from __future__ import annotations

import gc
import json

import openai
import pytest

from tests.instrument.conftest import delivered, needs_responses
from usagetap.sinks import Memory
from usagetap.testing import ProviderServer

MESSAGES = [{"role": "user", "content": "raw response please"}]


def _payloads(lines: list[str]) -> list[dict]:
    return [json.loads(line[5:]) for line in lines if line.startswith("data:") and "[DONE]" not in line]


def test_with_raw_response_is_metered_once_from_the_body_already_read(
    client: openai.OpenAI, server: ProviderServer, sink: Memory
) -> None:
    raw = client.chat.completions.with_raw_response.create(model="gpt-4.1", messages=MESSAGES)
    assert type(raw).__name__ == "LegacyAPIResponse"
    assert raw.http_response.status_code == 200
    [record] = delivered(sink)
    completion = raw.parse()
    assert raw.parse() is completion
    assert delivered(sink) == [record]
    assert record.response_id == completion.id
    assert record.input_tokens == server.issued[completion.id].input_tokens


def test_raw_body_read_without_parse_is_metered(
    client: openai.OpenAI, server: ProviderServer, sink: Memory
) -> None:
    raw = client.chat.completions.with_raw_response.create(model="gpt-4.1", messages=MESSAGES)
    body = raw.http_response.json()
    [record] = delivered(sink)
    assert record.response_id == body["id"]
    assert record.output_tokens == server.issued[body["id"]].output_tokens


def test_raw_stream_is_metered_when_the_parsed_stream_is_read(
    client: openai.OpenAI, server: ProviderServer, sink: Memory
) -> None:
    raw = client.chat.completions.with_raw_response.create(model="gpt-4.1", messages=MESSAGES, stream=True)
    stream = raw.parse()
    assert type(stream) is openai.Stream
    chunks = list(stream)
    assert all(chunk.choices for chunk in chunks)
    [record] = delivered(sink)
    assert record.status == "ok"
    assert record.output_tokens == server.issued[record.response_id].output_tokens  # type: ignore[index]


def test_with_streaming_response_meters_once_when_parsed(
    client: openai.OpenAI, server: ProviderServer, sink: Memory
) -> None:
    with client.chat.completions.with_streaming_response.create(
        model="gpt-4.1", messages=MESSAGES
    ) as response:
        assert type(response).__name__ == "APIResponse"
        completion = response.parse()
        response.parse()
    [record] = delivered(sink)
    assert record.response_id == completion.id


@pytest.mark.parametrize("read", ["read", "json", "text", "iter_bytes", "iter_text", "iter_lines"])
def test_with_streaming_response_body_read_any_way_is_metered_once(
    read: str, client: openai.OpenAI, server: ProviderServer, sink: Memory
) -> None:
    with client.chat.completions.with_streaming_response.create(
        model="gpt-4.1", messages=MESSAGES
    ) as response:
        result = getattr(response, read)()
        if read.startswith("iter_"):
            result = list(result)
        assert result
    [record] = delivered(sink)
    assert record.status == "ok"
    issued = server.issued[record.response_id]  # type: ignore[index]
    assert (record.input_tokens, record.output_tokens) == (issued.input_tokens, issued.output_tokens)


@pytest.mark.parametrize("read", ["iter_lines", "iter_bytes", "read"])
def test_streamed_body_read_raw_hides_the_usage_event_and_is_metered(
    read: str, client: openai.OpenAI, server: ProviderServer, sink: Memory
) -> None:
    with client.chat.completions.with_streaming_response.create(
        model="gpt-4.1", messages=MESSAGES, stream=True, max_tokens=9
    ) as response:
        if read == "iter_lines":
            lines = list(response.iter_lines())
        else:
            data = b"".join(response.iter_bytes()) if read == "iter_bytes" else response.read()
            lines = data.decode().splitlines()
    payloads = _payloads(lines)
    assert len(payloads) == 9 + 2
    assert all(p["choices"] for p in payloads), "the caller saw the usage-only chunk"
    assert lines[-1] == "data: [DONE]" or lines[-2] == "data: [DONE]"
    [record] = delivered(sink)
    assert (record.status, record.output_tokens) == ("ok", 9)
    assert record.input_tokens == server.issued[record.response_id].input_tokens  # type: ignore[index]


def test_a_caller_who_asked_for_usage_sees_the_usage_event_in_the_raw_body(
    client: openai.OpenAI, sink: Memory
) -> None:
    with client.chat.completions.with_streaming_response.create(
        model="gpt-4.1", messages=MESSAGES, stream=True, stream_options={"include_usage": True}
    ) as response:
        payloads = _payloads(list(response.iter_lines()))
    assert payloads[-1]["choices"] == [] and payloads[-1]["usage"]["completion_tokens"] == 16
    [record] = delivered(sink)
    assert record.output_tokens == 16


def test_streaming_response_closed_unread_yields_one_partial_record(
    client: openai.OpenAI, sink: Memory
) -> None:
    with client.chat.completions.with_streaming_response.create(model="gpt-4.1", messages=MESSAGES):
        pass
    with client.chat.completions.with_streaming_response.create(
        model="gpt-4.1", messages=MESSAGES, stream=True
    ):
        pass
    records = delivered(sink)
    assert [r.status for r in records] == ["partial", "partial"]
    assert all(r.request_model == "gpt-4.1" and r.input_tokens == 0 for r in records)


def test_raw_stream_broken_off_mid_way_is_partial(
    client: openai.OpenAI, server: ProviderServer, sink: Memory
) -> None:
    server.stream_delay = 0.002  # one event per write, so the usage event is not read with the first ones
    with client.chat.completions.with_streaming_response.create(
        model="gpt-4.1", messages=MESSAGES, stream=True, max_tokens=40
    ) as response:
        for i, _ in enumerate(response.iter_lines()):
            if i == 3:
                break
    gc.collect()
    [record] = delivered(sink)
    assert record.status == "partial"
    assert record.response_id is not None, "the id of the first event is kept"


def test_unparsed_raw_stream_dropped_is_metered_when_collected(client: openai.OpenAI, sink: Memory) -> None:
    raw = client.chat.completions.with_raw_response.create(model="gpt-4.1", messages=MESSAGES, stream=True)
    del raw
    gc.collect()
    [record] = delivered(sink)
    assert record.status == "partial"


@needs_responses
def test_responses_raw_event_stream_read_as_lines(
    client: openai.OpenAI, server: ProviderServer, sink: Memory
) -> None:
    with client.responses.with_streaming_response.create(
        model="gpt-4.1", input="stream it", stream=True
    ) as r:
        lines = list(r.iter_lines())
    assert [line for line in lines if line.startswith("event:")][-1] == "event: response.completed"
    [record] = delivered(sink)
    issued = server.issued[record.response_id]  # type: ignore[index]
    assert (record.operation, record.status) == ("responses", "ok")
    assert (record.input_tokens, record.output_tokens) == (issued.input_tokens, issued.output_tokens)


async def test_async_raw_and_streaming_responses(
    aclient: openai.AsyncOpenAI, server: ProviderServer, sink: Memory
) -> None:
    raw = await aclient.chat.completions.with_raw_response.create(model="gpt-4.1", messages=MESSAGES)
    first = raw.parse()
    async with aclient.chat.completions.with_streaming_response.create(
        model="gpt-4.1", messages=MESSAGES, stream=True
    ) as response:
        stream = await response.parse()
        assert type(stream) is openai.AsyncStream
        async for chunk in stream:
            assert chunk.choices
    records = delivered(sink)
    assert len(records) == 2
    assert records[0].response_id == first.id
    assert records[1].status == "ok"
    for record in records:
        assert record.input_tokens == server.issued[record.response_id].input_tokens  # type: ignore[index]


@pytest.mark.parametrize("read", ["read", "json", "text", "iter_bytes", "iter_lines"])
async def test_async_streaming_response_body_read_any_way_is_metered_once(
    read: str, aclient: openai.AsyncOpenAI, server: ProviderServer, sink: Memory
) -> None:
    async with aclient.chat.completions.with_streaming_response.create(
        model="gpt-4.1", messages=MESSAGES, stream=read.startswith("iter_")
    ) as response:
        if read.startswith("iter_"):
            lines = [x async for x in getattr(response, read)()]
            text = b"".join(lines).decode() if read == "iter_bytes" else "\n".join(lines)
            assert all(p["choices"] for p in _payloads(text.splitlines()))
        else:
            await getattr(response, read)()
    [record] = delivered(sink)
    assert record.status == "ok"
    assert record.output_tokens == server.issued[record.response_id].output_tokens  # type: ignore[index]


async def test_async_streaming_response_closed_unread_is_partial(
    aclient: openai.AsyncOpenAI, sink: Memory
) -> None:
    async with aclient.chat.completions.with_streaming_response.create(model="gpt-4.1", messages=MESSAGES):
        pass
    [record] = delivered(sink)
    assert record.status == "partial"
