"""A provider added outside usagetap: one package (tests/providers/toy/) plus its registry line."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

import usagetap
from tests.instrument.conftest import delivered
from tests.providers.toy import TOY
from tests.providers.toy_sdk import Toy
from usagetap import providers
from usagetap.instrument import instrument, uninstrument
from usagetap.sinks import Memory
from usagetap.testing import ProviderServer


@pytest.fixture
def toy_server() -> Iterator[ProviderServer]:
    providers.register(TOY)
    try:
        with ProviderServer() as server:
            yield server
    finally:
        providers.unregister(TOY.family)


def test_wrap_meters_a_registered_toy_provider_through_the_loopback_server(
    toy_server: ProviderServer, sink: Memory
) -> None:
    client = usagetap.wrap(Toy(base_url=toy_server.url, api_key="toy-key"))
    with usagetap.customer("org_toy"):
        tally = client.tallies.create(model="toy-1", prompt="count these four words")
    [record] = delivered(sink)
    issued = toy_server.issued[tally.id]
    assert (record.provider, record.operation, record.model, record.customer) == (
        "toy",
        "tallies",
        "toy-1",
        "org_toy",
    )
    assert (record.input_tokens, record.output_tokens) == (issued.input_tokens, issued.output_tokens)
    assert (record.input_tokens, record.output_tokens) == (4, 7)
    assert record.response_id == tally.id and record.status == "ok"


def test_a_toy_stream_reaches_the_caller_whole_and_is_metered_when_it_ends(
    toy_server: ProviderServer, sink: Memory
) -> None:
    client = usagetap.wrap(Toy(base_url=toy_server.url, api_key="toy-key"))
    events = list(client.tallies.create(model="toy-1", prompt="two words", stream=True))
    assert [e["type"] for e in events] == ["start", *["word"] * 5, "done"]
    [record] = delivered(sink)
    assert (record.input_tokens, record.output_tokens, record.status) == (2, 5, "ok")
    assert record.response_id == events[0]["id"]


def test_instrument_patches_a_registered_toy_provider(toy_server: ProviderServer, sink: Memory) -> None:
    assert TOY.family in instrument()
    try:
        tally = Toy(base_url=toy_server.url, api_key="toy-key").tallies.create(model="toy-2", prompt="a b c")
    finally:
        uninstrument()
    [record] = delivered(sink)
    assert (record.provider, record.model, record.response_id) == ("toy", "toy-2", tally.id)
    assert record.input_tokens == 3


def test_an_unregistered_toy_client_is_refused_by_wrap(toy_server: ProviderServer) -> None:
    providers.unregister(TOY.family)
    with pytest.raises(TypeError, match=r"supports clients of the SDKs openai, anthropic, .*not Toy"):
        usagetap.wrap(Toy(base_url=toy_server.url, api_key="toy-key"))


def test_record_meters_a_toy_response_obtained_elsewhere(toy_server: ProviderServer, sink: Memory) -> None:
    tally = Toy(base_url=toy_server.url, api_key="toy-key").tallies.create(model="toy-3", prompt="one two")
    event_id = usagetap.record(tally, customer="org_elsewhere")
    [record] = delivered(sink)
    assert (record.event_id, record.customer, record.provider, record.operation) == (
        event_id,
        "org_elsewhere",
        "toy",
        "tallies",
    )
    assert (record.input_tokens, record.output_tokens) == (2, 5)
