"""Embeddings, agents and FIM completions, sync and async, streamed where the SDK streams them."""

from __future__ import annotations

from typing import Any

from tests.instrument.conftest import delivered
from usagetap.sinks import Memory
from usagetap.testing import ProviderServer

from .conftest import MESSAGES


def test_embeddings_are_one_record_of_input_tokens(
    server: ProviderServer, mistral: Any, sink: Memory
) -> None:
    response = mistral.embeddings.create(model="mistral-embed", inputs=["one two three", "four five"])
    [record] = delivered(sink)
    assert (record.operation, record.model, record.input_tokens, record.output_tokens) == (
        "embeddings",
        "mistral-embed",
        5,
        0,
    )
    assert server.issued[response.id].input_tokens == 5
    assert record.cost is not None and record.cost > 0


async def test_async_embeddings_are_one_record(mistral: Any, sink: Memory) -> None:
    await mistral.embeddings.create_async(model="mistral-embed", inputs=["a b"])
    [record] = delivered(sink)
    assert (record.operation, record.input_tokens, record.status) == ("embeddings", 2, "ok")


def test_an_agents_completion_is_metered_with_the_model_the_response_reports(
    server: ProviderServer, mistral: Any, sink: Memory
) -> None:
    response = mistral.agents.complete(agent_id="ag_42", messages=MESSAGES)
    [record] = delivered(sink)
    issued = server.issued[response.id]
    assert (record.operation, record.model, record.request_model) == ("agents", "mistral-medium-latest", None)
    assert (record.input_tokens, record.output_tokens) == (issued.input_tokens, issued.output_tokens)


def test_an_agents_stream_is_metered_when_it_ends(server: ProviderServer, mistral: Any, sink: Memory) -> None:
    events = list(mistral.agents.stream(agent_id="ag_42", messages=MESSAGES, max_tokens=2))
    [record] = delivered(sink)
    assert (record.operation, record.output_tokens, record.status) == ("agents", 2, "ok")
    assert record.input_tokens == server.issued[events[0].data.id].input_tokens


async def test_an_async_agents_completion_is_one_record(mistral: Any, sink: Memory) -> None:
    response = await mistral.agents.complete_async(agent_id="ag_7", messages=MESSAGES)
    [record] = delivered(sink)
    assert (record.operation, record.response_id) == ("agents", response.id)


def test_a_fim_completion_is_one_record(server: ProviderServer, mistral: Any, sink: Memory) -> None:
    response = mistral.fim.complete(model="codestral-latest", prompt="def add(a, b):", suffix="return total")
    [record] = delivered(sink)
    issued = server.issued[response.id]
    assert (record.operation, record.model) == ("fim", "codestral-latest")
    assert (
        (record.input_tokens, record.output_tokens) == (issued.input_tokens, issued.output_tokens) == (5, 16)
    )


def test_a_fim_stream_is_one_record(mistral: Any, sink: Memory) -> None:
    list(mistral.fim.stream(model="codestral-latest", prompt="x = ", max_tokens=3))
    [record] = delivered(sink)
    assert (record.operation, record.output_tokens, record.status) == ("fim", 3, "ok")
