"""Every billable OpenAI surface as one call, sync and async, for the surface tests.

Each function makes one billable call the way an application would and reads
its result to the end; streams also check that the caller never sees a chunk
with empty ``choices`` (the usage chunk usagetap asked for is hidden).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pydantic

MESSAGES: Any = [{"role": "user", "content": "How much does metering this prompt cost?"}]
CHAT, RESPONSES, EMBEDDINGS, INSTRUCT = (
    "gpt-4.1",
    "o4-mini",
    "text-embedding-3-small",
    "gpt-3.5-turbo-instruct",
)


class Answer(pydantic.BaseModel):
    answer: str


def _no_empty_choices(chunks: list[Any]) -> None:
    assert chunks, "the stream yielded nothing"
    assert all(chunk.choices for chunk in chunks), "the caller saw a chunk with empty choices"


def _no_usage_event(lines: list[str]) -> None:
    payloads = [json.loads(line[5:]) for line in lines if line.startswith("data:") and "[DONE]" not in line]
    assert payloads and all(p["choices"] for p in payloads), "the raw stream carried the usage-only chunk"


# -- sync ---------------------------------------------------------------------


def chat_create(c: Any) -> None:
    assert c.chat.completions.create(model=CHAT, messages=MESSAGES).choices


def chat_create_stream(c: Any) -> None:
    _no_empty_choices(list(c.chat.completions.create(model=CHAT, messages=MESSAGES, stream=True)))


def chat_parse(c: Any) -> None:
    completion = c.chat.completions.parse(model=CHAT, messages=MESSAGES, response_format=Answer)
    assert completion.choices[0].message.parsed.answer


def chat_stream_helper(c: Any) -> None:
    with c.chat.completions.stream(model=CHAT, messages=MESSAGES, response_format=Answer) as stream:
        kinds = {event.type for event in stream}
        final = stream.get_final_completion()
    assert "content.done" in kinds
    assert final.choices[0].message.parsed.answer
    assert final.usage is None, "usage the caller did not ask for leaked into the final completion"


def beta_chat_parse(c: Any) -> None:
    completion = c.beta.chat.completions.parse(model=CHAT, messages=MESSAGES, response_format=Answer)
    assert completion.choices[0].message.parsed.answer


def beta_chat_stream(c: Any) -> None:
    with c.beta.chat.completions.stream(model=CHAT, messages=MESSAGES) as stream:
        assert stream.get_final_completion().choices[0].message.content


def responses_create(c: Any) -> None:
    assert c.responses.create(model=RESPONSES, input="Explain metering").output_text


def responses_create_stream(c: Any) -> None:
    events = list(c.responses.create(model=RESPONSES, input="Explain metering", stream=True))
    assert events[-1].type == "response.completed"


def responses_parse(c: Any) -> None:
    assert c.responses.parse(
        model=RESPONSES, input="Explain metering", text_format=Answer
    ).output_parsed.answer


def responses_stream_helper(c: Any) -> None:
    with c.responses.stream(
        model=RESPONSES, input="Explain metering", tools=[{"type": "web_search"}]
    ) as stream:
        kinds = {event.type for event in stream}
        final = stream.get_final_response()
    assert "response.output_text.delta" in kinds
    assert final.usage is not None and final.output_text


def responses_background(c: Any) -> None:
    response = c.responses.create(model=RESPONSES, input="A long task", background=True)
    while response.status in ("queued", "in_progress"):
        response = c.responses.retrieve(response.id)
    assert response.status == "completed"


def responses_background_resumed(c: Any) -> None:
    queued = c.responses.create(model=RESPONSES, input="A long task", background=True)
    with c.responses.stream(response_id=queued.id) as stream:
        assert stream.get_final_response().status == "completed"


def embeddings_create(c: Any) -> None:
    assert len(c.embeddings.create(model=EMBEDDINGS, input=["first text", "second text here"]).data) == 2


def completions_create(c: Any) -> None:
    assert c.completions.create(model=INSTRUCT, prompt="Say something").choices[0].text


def completions_create_stream(c: Any) -> None:
    _no_empty_choices(list(c.completions.create(model=INSTRUCT, prompt="Say something", stream=True)))


def chat_raw_parse(c: Any) -> None:
    raw = c.chat.completions.with_raw_response.create(model=CHAT, messages=MESSAGES)
    assert raw.parse().choices


def chat_raw_stream_parse(c: Any) -> None:
    raw = c.chat.completions.with_raw_response.create(model=CHAT, messages=MESSAGES, stream=True)
    _no_empty_choices(list(raw.parse()))


def chat_streaming_response_lines(c: Any) -> None:
    with c.chat.completions.with_streaming_response.create(model=CHAT, messages=MESSAGES, stream=True) as r:
        _no_usage_event(list(r.iter_lines()))


def responses_streaming_response_json(c: Any) -> None:
    with c.responses.with_streaming_response.create(model=RESPONSES, input="Explain metering") as r:
        assert r.json()["status"] == "completed"


def embeddings_raw_parse(c: Any) -> None:
    assert c.embeddings.with_raw_response.create(model=EMBEDDINGS, input="one text").parse().data


# -- async --------------------------------------------------------------------


async def achat_create(c: Any) -> None:
    assert (await c.chat.completions.create(model=CHAT, messages=MESSAGES)).choices


async def achat_create_stream(c: Any) -> None:
    stream = await c.chat.completions.create(model=CHAT, messages=MESSAGES, stream=True)
    _no_empty_choices([chunk async for chunk in stream])


async def achat_parse(c: Any) -> None:
    completion = await c.chat.completions.parse(model=CHAT, messages=MESSAGES, response_format=Answer)
    assert completion.choices[0].message.parsed.answer


async def achat_stream_helper(c: Any) -> None:
    async with c.chat.completions.stream(model=CHAT, messages=MESSAGES, response_format=Answer) as stream:
        kinds = {event.type async for event in stream}
        final = await stream.get_final_completion()
    assert "content.done" in kinds
    assert final.choices[0].message.parsed.answer
    assert final.usage is None


async def abeta_chat_parse(c: Any) -> None:
    completion = await c.beta.chat.completions.parse(model=CHAT, messages=MESSAGES, response_format=Answer)
    assert completion.choices[0].message.parsed.answer


async def abeta_chat_stream(c: Any) -> None:
    async with c.beta.chat.completions.stream(model=CHAT, messages=MESSAGES) as stream:
        assert (await stream.get_final_completion()).choices[0].message.content


async def aresponses_create(c: Any) -> None:
    assert (await c.responses.create(model=RESPONSES, input="Explain metering")).output_text


async def aresponses_create_stream(c: Any) -> None:
    stream = await c.responses.create(model=RESPONSES, input="Explain metering", stream=True)
    events = [event async for event in stream]
    assert events[-1].type == "response.completed"


async def aresponses_parse(c: Any) -> None:
    parsed = await c.responses.parse(model=RESPONSES, input="Explain metering", text_format=Answer)
    assert parsed.output_parsed.answer


async def aresponses_stream_helper(c: Any) -> None:
    async with c.responses.stream(
        model=RESPONSES, input="Explain metering", tools=[{"type": "web_search"}]
    ) as stream:
        kinds = {event.type async for event in stream}
        final = await stream.get_final_response()
    assert "response.output_text.delta" in kinds
    assert final.usage is not None and final.output_text


async def aresponses_background(c: Any) -> None:
    response = await c.responses.create(model=RESPONSES, input="A long task", background=True)
    while response.status in ("queued", "in_progress"):
        response = await c.responses.retrieve(response.id)
    assert response.status == "completed"


async def aresponses_background_resumed(c: Any) -> None:
    queued = await c.responses.create(model=RESPONSES, input="A long task", background=True)
    async with c.responses.stream(response_id=queued.id) as stream:
        assert (await stream.get_final_response()).status == "completed"


async def aembeddings_create(c: Any) -> None:
    result = await c.embeddings.create(model=EMBEDDINGS, input=["first text", "second text here"])
    assert len(result.data) == 2


async def acompletions_create(c: Any) -> None:
    assert (await c.completions.create(model=INSTRUCT, prompt="Say something")).choices[0].text


async def acompletions_create_stream(c: Any) -> None:
    stream = await c.completions.create(model=INSTRUCT, prompt="Say something", stream=True)
    _no_empty_choices([chunk async for chunk in stream])


async def achat_raw_parse(c: Any) -> None:
    raw = await c.chat.completions.with_raw_response.create(model=CHAT, messages=MESSAGES)
    assert raw.parse().choices


async def achat_raw_stream_parse(c: Any) -> None:
    raw = await c.chat.completions.with_raw_response.create(model=CHAT, messages=MESSAGES, stream=True)
    _no_empty_choices([chunk async for chunk in raw.parse()])


async def achat_streaming_response_lines(c: Any) -> None:
    async with c.chat.completions.with_streaming_response.create(
        model=CHAT, messages=MESSAGES, stream=True
    ) as r:
        _no_usage_event([line async for line in r.iter_lines()])


async def aresponses_streaming_response_json(c: Any) -> None:
    async with c.responses.with_streaming_response.create(model=RESPONSES, input="Explain metering") as r:
        assert (await r.json())["status"] == "completed"


async def aembeddings_raw_parse(c: Any) -> None:
    raw = await c.embeddings.with_raw_response.create(model=EMBEDDINGS, input="one text")
    assert raw.parse().data


SyncSurface = Callable[[Any], None]

# name -> (sync, async, operation, attribute path that must exist on the client)
SURFACES: dict[str, tuple[SyncSurface, Callable[[Any], Any], str, str]] = {
    "chat.completions.create": (chat_create, achat_create, "chat", "chat.completions.create"),
    "chat.completions.create(stream)": (
        chat_create_stream,
        achat_create_stream,
        "chat",
        "chat.completions.create",
    ),
    "chat.completions.parse": (chat_parse, achat_parse, "chat", "chat.completions.parse"),
    "chat.completions.stream": (chat_stream_helper, achat_stream_helper, "chat", "chat.completions.stream"),
    "beta.chat.completions.parse": (beta_chat_parse, abeta_chat_parse, "chat", "beta.chat.completions.parse"),
    "beta.chat.completions.stream": (
        beta_chat_stream,
        abeta_chat_stream,
        "chat",
        "beta.chat.completions.stream",
    ),
    "responses.create": (responses_create, aresponses_create, "responses", "responses.create"),
    "responses.create(stream)": (
        responses_create_stream,
        aresponses_create_stream,
        "responses",
        "responses.create",
    ),
    "responses.parse": (responses_parse, aresponses_parse, "responses", "responses.parse"),
    "responses.stream": (responses_stream_helper, aresponses_stream_helper, "responses", "responses.stream"),
    "responses(background)+retrieve": (
        responses_background,
        aresponses_background,
        "responses",
        "responses.retrieve",
    ),
    "responses(background)+stream(response_id)": (
        responses_background_resumed,
        aresponses_background_resumed,
        "responses",
        "responses.stream",
    ),
    "embeddings.create": (embeddings_create, aembeddings_create, "embeddings", "embeddings.create"),
    "completions.create": (completions_create, acompletions_create, "completions", "completions.create"),
    "completions.create(stream)": (
        completions_create_stream,
        acompletions_create_stream,
        "completions",
        "completions.create",
    ),
    "with_raw_response+parse": (
        chat_raw_parse,
        achat_raw_parse,
        "chat",
        "chat.completions.with_raw_response",
    ),
    "with_raw_response(stream)+parse": (
        chat_raw_stream_parse,
        achat_raw_stream_parse,
        "chat",
        "chat.completions.with_raw_response",
    ),
    "with_streaming_response(stream)+iter_lines": (
        chat_streaming_response_lines,
        achat_streaming_response_lines,
        "chat",
        "chat.completions.with_streaming_response",
    ),
    "responses.with_streaming_response+json": (
        responses_streaming_response_json,
        aresponses_streaming_response_json,
        "responses",
        "responses.with_streaming_response",
    ),
    "embeddings.with_raw_response+parse": (
        embeddings_raw_parse,
        aembeddings_raw_parse,
        "embeddings",
        "embeddings.with_raw_response",
    ),
}


def has_surface(client: Any, path: str) -> bool:
    """Whether the installed SDK has the attribute path (``beta.chat.completions.parse``)."""
    obj = client
    for name in path.split("."):
        obj = getattr(obj, name, None)
        if obj is None:
            return False
    return True
