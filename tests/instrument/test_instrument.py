"""instrument() / uninstrument(): global patching for code that builds its own clients."""

from __future__ import annotations

import openai
import pytest

import usagetap
from tests.instrument.conftest import delivered, needs_responses
from usagetap.instrument import instrument, instrumented, uninstrument
from usagetap.instrument._stainless import request_owner
from usagetap.sinks import Memory
from usagetap.testing import ProviderServer

MESSAGES = [{"role": "user", "content": "instrumented"}]


@pytest.mark.usefixtures("instrumented")
def test_clients_built_after_instrument_are_metered(server: ProviderServer, sink: Memory) -> None:
    assert instrumented()
    client = openai.OpenAI(base_url=server.openai_url, api_key="sk-test")
    with usagetap.customer("org_glob"):
        response = client.chat.completions.create(model="gpt-4.1", messages=MESSAGES)
        for _ in client.chat.completions.create(model="gpt-4.1", messages=MESSAGES, stream=True):
            pass
    records = delivered(sink)
    assert [r.customer for r in records] == ["org_glob", "org_glob"]
    assert records[0].response_id == response.id
    assert records[1].status == "ok" and records[1].provider == "openai"


@pytest.mark.usefixtures("instrumented")
def test_a_client_both_wrapped_and_instrumented_yields_one_record(
    client: openai.OpenAI, sink: Memory
) -> None:
    client.chat.completions.create(model="gpt-4.1", messages=MESSAGES)
    for _ in client.chat.completions.create(model="gpt-4.1", messages=MESSAGES, stream=True):
        pass
    assert len(delivered(sink)) == 2


def test_wrapping_after_instrument_still_yields_one_record(
    server: ProviderServer, sink: Memory, instrumented: None
) -> None:
    aclient = usagetap.wrap(openai.AsyncOpenAI(base_url=server.openai_url, api_key="sk-test"))
    import asyncio

    asyncio.run(aclient.chat.completions.create(model="gpt-4.1", messages=MESSAGES))
    assert len(delivered(sink)) == 1


async def test_async_clients_are_instrumented(
    server: ProviderServer, sink: Memory, instrumented: None
) -> None:
    client = openai.AsyncOpenAI(base_url=server.openai_url, api_key="sk-test")
    stream = await client.chat.completions.create(model="gpt-4.1", messages=MESSAGES, stream=True)
    chunks = [c async for c in stream]
    assert all(c.choices for c in chunks)
    [record] = delivered(sink)
    assert record.status == "ok"


def test_instrument_is_idempotent_and_uninstrument_restores(server: ProviderServer, sink: Memory) -> None:
    owner = request_owner(openai.OpenAI)
    original = vars(owner)["request"]
    assert instrument() == instrument()
    assert vars(owner)["request"] is not original
    uninstrument()
    assert not instrumented()
    assert vars(owner)["request"] is original
    bare = openai.OpenAI(base_url=server.openai_url, api_key="sk-test")
    bare.chat.completions.create(model="gpt-4.1", messages=MESSAGES)
    wrapped = usagetap.wrap(openai.OpenAI(base_url=server.openai_url, api_key="sk-test"))
    wrapped.chat.completions.create(model="gpt-4.1", messages=MESSAGES)
    assert len(delivered(sink)) == 1


@needs_responses
@pytest.mark.usefixtures("instrumented")
def test_instrument_meters_every_surface_of_azure_clients_too(server: ProviderServer, sink: Memory) -> None:
    client = openai.AzureOpenAI(azure_endpoint=server.url, api_key="az", api_version="2024-10-21")
    with usagetap.customer("org_az"):
        client.responses.create(model="gpt-4o", input="instrumented responses")
        client.embeddings.create(model="text-embedding-3-large", input="instrumented embeddings")
        for _ in client.completions.create(model="gpt-35-turbo-instruct", prompt="legacy", stream=True):
            pass
    records = delivered(sink)
    assert [(r.operation, r.provider, r.customer, r.status) for r in records] == [
        ("responses", "azure", "org_az", "ok"),
        ("embeddings", "azure", "org_az", "ok"),
        ("completions", "azure", "org_az", "ok"),
    ]
    assert sum(r.input_tokens for r in records) == server.totals()["input_tokens"]
