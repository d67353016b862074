"""with_raw_response / with_streaming_response: the raw object is unchanged; one record when parsed."""

from __future__ import annotations

import openai

from tests.instrument.conftest import delivered
from usagetap.sinks import Memory
from usagetap.testing import ProviderServer

MESSAGES = [{"role": "user", "content": "raw response please"}]


def test_with_raw_response_meters_once_when_parsed(
    client: openai.OpenAI, server: ProviderServer, sink: Memory
) -> None:
    raw = client.chat.completions.with_raw_response.create(model="gpt-4.1", messages=MESSAGES)
    assert type(raw).__name__ == "LegacyAPIResponse"
    assert raw.http_response.status_code == 200
    assert delivered(sink) == []
    completion = raw.parse()
    assert raw.parse() is completion
    [record] = delivered(sink)
    assert record.response_id == completion.id
    assert record.input_tokens == server.issued[completion.id].input_tokens


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


def test_raw_response_never_parsed_yields_no_record(client: openai.OpenAI, sink: Memory) -> None:
    raw = client.chat.completions.with_raw_response.create(model="gpt-4.1", messages=MESSAGES)
    assert raw.http_response.json()["object"] == "chat.completion"
    assert delivered(sink) == []


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
