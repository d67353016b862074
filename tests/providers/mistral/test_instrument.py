"""wrap() per client, instrument() for every client, and usagetap.record() of a Mistral response."""

from __future__ import annotations

import pytest

import usagetap
from tests.instrument.conftest import delivered
from usagetap.instrument import instrument, uninstrument
from usagetap.providers.mistral.intercept import base_classes
from usagetap.sinks import Memory
from usagetap.testing import ProviderServer

from .conftest import MESSAGES, bare


def test_wrap_returns_the_same_client_metered_in_place(server: ProviderServer) -> None:
    client = bare(server)
    assert usagetap.wrap(client) is client
    assert type(client).__name__ == "Mistral"


def test_wrap_refuses_a_resource_that_is_not_a_client(server: ProviderServer) -> None:
    with pytest.raises(TypeError, match="needs a Mistral client, got Chat"):
        usagetap.wrap(bare(server).chat)


def test_wrap_with_other_defaults_gives_a_copy_and_each_bills_its_customer(
    server: ProviderServer, sink: Memory
) -> None:
    shared = bare(server)
    org_a = usagetap.wrap(shared, customer="org_a")
    org_b = usagetap.wrap(shared, customer="org_b")
    org_b.chat.complete(model="mistral-small-latest", messages=MESSAGES)
    org_a.chat.complete(model="mistral-small-latest", messages=MESSAGES)
    assert org_b is not org_a and type(org_b) is type(org_a)
    assert [r.customer for r in delivered(sink)] == ["org_b", "org_a"]


def test_an_unwrapped_client_is_not_metered(server: ProviderServer, sink: Memory) -> None:
    bare(server).chat.complete(model="mistral-small-latest", messages=MESSAGES)
    usagetap.wrap(bare(server)).chat.complete(model="mistral-small-latest", messages=MESSAGES)
    assert len(delivered(sink)) == 1 and len(server.issued) == 2


def test_instrument_meters_a_client_made_before_it(server: ProviderServer, sink: Memory) -> None:
    client = bare(server)
    assert "mistral" in instrument()
    try:
        with usagetap.customer("org_i"):
            response = client.chat.complete(model="mistral-small-latest", messages=MESSAGES)
    finally:
        uninstrument()
    [record] = delivered(sink)
    assert (record.provider, record.customer, record.response_id) == ("mistral", "org_i", response.id)


async def test_instrument_meters_async_streams(server: ProviderServer, sink: Memory) -> None:
    instrument()
    try:
        stream = await bare(server).chat.stream_async(model="mistral-small-latest", messages=MESSAGES)
        events = [event async for event in stream]
    finally:
        uninstrument()
    [record] = delivered(sink)
    assert (record.response_id, record.status) == (events[0].data.id, "ok")


def test_a_client_wrapped_and_instrumented_is_metered_once(server: ProviderServer, sink: Memory) -> None:
    instrument()
    try:
        client = usagetap.wrap(bare(server), customer="org_once")
        client.chat.complete(model="mistral-small-latest", messages=MESSAGES)
        list(client.chat.stream(model="mistral-small-latest", messages=MESSAGES))
    finally:
        uninstrument()
    assert [(r.customer, r.status) for r in delivered(sink)] == [("org_once", "ok"), ("org_once", "ok")]


def test_uninstrument_restores_the_sdk_methods(server: ProviderServer, sink: Memory) -> None:
    [base] = base_classes()
    before = (vars(base)["do_request"], vars(base)["do_request_async"])
    instrument()
    assert vars(base)["do_request"] is not before[0]
    uninstrument()
    assert (vars(base)["do_request"], vars(base)["do_request_async"]) == before
    bare(server).chat.complete(model="mistral-small-latest", messages=MESSAGES)
    assert delivered(sink) == [] and len(server.issued) == 1


def test_record_meters_a_response_obtained_elsewhere(server: ProviderServer, sink: Memory) -> None:
    response = bare(server).chat.complete(model="mistral-large-latest", messages=MESSAGES)
    event_id = usagetap.record(response, customer="org_elsewhere")
    [record] = delivered(sink)
    issued = server.issued[response.id]
    assert (record.event_id, record.customer, record.provider, record.operation) == (
        event_id,
        "org_elsewhere",
        "mistral",
        "chat",
    )
    assert (record.input_tokens, record.output_tokens) == (issued.input_tokens, issued.output_tokens)


def test_record_meters_an_embeddings_response(server: ProviderServer, sink: Memory) -> None:
    response = bare(server).embeddings.create(model="mistral-embed", inputs=["six words make up this input"])
    usagetap.record(response)
    [record] = delivered(sink)
    assert (record.operation, record.input_tokens) == ("embeddings", 6)


def test_record_meters_the_json_of_a_mistral_response_named_by_provider(sink: Memory) -> None:
    body = {
        "id": "9e1b7c0d2f",
        "object": "chat.completion",
        "model": "mistral-small-latest",
        "choices": [],
        "usage": {
            "prompt_tokens": 90,
            "completion_tokens": 4,
            "total_tokens": 94,
            "prompt_tokens_details": {"cached_tokens": 64},
        },
    }
    usagetap.record(body, provider="mistral", customer="org_json")
    [record] = delivered(sink)
    assert (record.provider, record.operation, record.customer) == ("mistral", "chat", "org_json")
    assert (record.input_tokens, record.output_tokens, record.cache_read_tokens) == (90, 4, 64)


def test_record_refuses_json_that_is_no_mistral_response() -> None:
    with pytest.raises(TypeError, match="cannot meter this mistral object"):
        usagetap.record({"object": "model", "id": "mistral-tiny"}, provider="mistral")


def test_record_meters_a_fim_response_as_fim(server: ProviderServer, sink: Memory) -> None:
    response = bare(server).fim.complete(model="codestral-latest", prompt="def f():")
    usagetap.record(response)
    [record] = delivered(sink)
    assert (record.operation, record.model, record.input_tokens) == ("fim", "codestral-latest", 2)
