"""chat.complete / chat.stream and their async forms, through the real SDK and the loopback server."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from genai_prices import Usage, calc_price

import usagetap
from tests.instrument.conftest import delivered
from usagetap.sinks import Memory
from usagetap.testing import ProviderServer

from .conftest import MESSAGES, bare

LONG = [{"role": "user", "content": " ".join(["cache"] * 140)}]


def _price(model: str, input_tokens: int, output_tokens: int, cached: int = 0) -> Decimal:
    usage = Usage(input_tokens=input_tokens, output_tokens=output_tokens, cache_read_tokens=cached)
    return Decimal(str(calc_price(usage, model, provider_id="mistral").total_price))


def _shown(events: list[Any]) -> list[tuple[Any, ...]]:
    """What a caller reads of a stream, without the per-response id and time."""
    return [
        (e.data.model, [(c.delta.content, c.finish_reason) for c in e.data.choices], e.data.usage)
        for e in events
    ]


def test_complete_is_one_record_with_the_tokens_the_server_issued(
    server: ProviderServer, mistral: Any, sink: Memory
) -> None:
    with usagetap.customer("org_m"):
        response = mistral.chat.complete(model="mistral-small-latest", messages=MESSAGES)
    [record] = delivered(sink)
    issued = server.issued[response.id]
    assert (record.provider, record.operation, record.model, record.customer) == (
        "mistral",
        "chat",
        "mistral-small-latest",
        "org_m",
    )
    assert (record.input_tokens, record.output_tokens) == (issued.input_tokens, issued.output_tokens)
    assert (record.response_id, record.request_model, record.status) == (
        response.id,
        "mistral-small-latest",
        "ok",
    )


def test_complete_is_priced_by_genai_prices_as_mistral(mistral: Any, sink: Memory) -> None:
    mistral.chat.complete(model="mistral-large-latest", messages=MESSAGES)
    [record] = delivered(sink)
    assert record.cost == _price("mistral-large-latest", record.input_tokens, record.output_tokens)
    assert record.cost is not None and record.cost > 0


def test_cached_prompt_tokens_are_cache_reads_within_the_input(
    server: ProviderServer, mistral: Any, sink: Memory
) -> None:
    mistral.chat.complete(model="mistral-large-latest", messages=LONG)
    second = mistral.chat.complete(model="mistral-large-latest", messages=LONG)
    first_record, second_record = delivered(sink)
    issued = server.issued[second.id]
    assert first_record.cache_read_tokens == 0
    assert issued.cache_read_tokens == 128
    assert (second_record.input_tokens, second_record.cache_read_tokens) == (issued.input_tokens, 128)
    assert second_record.cost == _price(
        "mistral-large-latest", issued.input_tokens, issued.output_tokens, 128
    )


async def test_complete_async_is_one_record(server: ProviderServer, mistral: Any, sink: Memory) -> None:
    with usagetap.customer("org_async"):
        response = await mistral.chat.complete_async(model="mistral-small-latest", messages=MESSAGES)
    [record] = delivered(sink)
    issued = server.issued[response.id]
    assert (record.customer, record.response_id, record.status) == ("org_async", response.id, "ok")
    assert (record.input_tokens, record.output_tokens) == (issued.input_tokens, issued.output_tokens)


def test_a_stream_read_to_the_end_shows_the_caller_what_a_bare_client_shows(
    server: ProviderServer, mistral: Any, sink: Memory
) -> None:
    wrapped = list(mistral.chat.stream(model="mistral-small-latest", messages=MESSAGES, max_tokens=6))
    plain = list(bare(server).chat.stream(model="mistral-small-latest", messages=MESSAGES, max_tokens=6))
    assert _shown(wrapped) == _shown(plain)
    assert type(wrapped[0]) is type(plain[0])


def test_a_stream_read_to_the_end_is_metered_from_its_final_chunk(
    server: ProviderServer, mistral: Any, sink: Memory
) -> None:
    with usagetap.customer("org_stream"):
        events = list(mistral.chat.stream(model="mistral-large-latest", messages=MESSAGES, max_tokens=6))
    [record] = delivered(sink)
    issued = server.issued[events[0].data.id]
    assert events[-1].data.usage is not None
    assert (record.input_tokens, record.output_tokens, record.status) == (
        issued.input_tokens,
        issued.output_tokens,
        "ok",
    )
    assert (record.customer, record.response_id, record.model) == (
        "org_stream",
        events[0].data.id,
        "mistral-large-latest",
    )


async def test_an_async_stream_read_to_the_end_is_one_record_and_shows_every_chunk(
    server: ProviderServer, mistral: Any, sink: Memory
) -> None:
    stream = await mistral.chat.stream_async(model="mistral-small-latest", messages=MESSAGES, max_tokens=4)
    events = [event async for event in stream]
    [record] = delivered(sink)
    issued = server.issued[events[0].data.id]
    assert [c.delta.content for e in events for c in e.data.choices] == [
        "",
        "usage",
        " is",
        " metered",
        " per",
        "",
    ]
    assert (record.input_tokens, record.output_tokens, record.status) == (
        issued.input_tokens,
        issued.output_tokens,
        "ok",
    )


def test_an_error_response_reaches_the_caller_unchanged_and_bills_nothing(
    server: ProviderServer, mistral: Any, sink: Memory
) -> None:
    server.fail_next(422, body={"object": "error", "message": "bad request", "type": "invalid_request_error"})
    try:
        mistral.chat.complete(model="mistral-small-latest", messages=MESSAGES)
    except Exception as exc:
        wrapped_error: Exception = exc
    server.fail_next(422, body={"object": "error", "message": "bad request", "type": "invalid_request_error"})
    try:
        bare(server).chat.complete(model="mistral-small-latest", messages=MESSAGES)
    except Exception as exc:
        plain_error: Exception = exc
    assert type(wrapped_error) is type(plain_error)
    assert str(wrapped_error) == str(plain_error)
    assert delivered(sink) == []
