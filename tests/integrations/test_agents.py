"""The OpenAI Agents SDK, metered through the OpenAI client underneath (``usagetap.instrument()``),
against the loopback provider calling the agent's tool once. Tracing export is off (offline)."""

from __future__ import annotations

from collections.abc import Iterator

import openai
import pytest

pytest.importorskip("agents")

from agents import (
    Agent,
    Model,
    OpenAIChatCompletionsModel,
    OpenAIResponsesModel,
    Runner,
    function_tool,
    set_tracing_disabled,
)

import usagetap
from tests.integrations.conftest import delivered
from tests.integrations.tool_calls import calling_tools
from usagetap.sinks import Memory
from usagetap.testing import ProviderServer


@pytest.fixture(autouse=True)
def _no_trace_export() -> Iterator[None]:
    set_tracing_disabled(True)
    yield
    set_tracing_disabled(False)


def _model(kind: str, client: openai.AsyncOpenAI) -> Model:
    if kind == "responses":
        return OpenAIResponsesModel("gpt-4.1", client)
    return OpenAIChatCompletionsModel("gpt-4.1", client)


def _agent(server: ProviderServer, kind: str, wrapped: bool = False) -> Agent:
    client = openai.AsyncOpenAI(base_url=server.openai_url, api_key="sk-test", max_retries=0)
    side = openai.OpenAI(base_url=server.openai_url, api_key="sk-test", max_retries=0)

    @function_tool
    def lookup(topic: str) -> str:
        """Look a topic up with a smaller model (a sync tool: the Agents SDK runs it in a worker thread)."""
        side.chat.completions.create(model="gpt-4.1-mini", messages=[{"role": "user", "content": topic}])
        return f"{topic}: metered per token"

    model = _model(kind, usagetap.wrap(client) if wrapped else client)
    return Agent(name="billing", instructions="answer briefly", tools=[lookup], model=model)


KINDS = ["responses", "chat"]


@pytest.mark.parametrize("kind", KINDS)
def test_agent_run_totals_cover_every_model_call_and_the_tool(
    server: ProviderServer, sink: Memory, kind: str
) -> None:
    usagetap.instrument()
    agent = _agent(calling_tools(server), kind)
    with usagetap.track(customer="org_agent") as run:
        result = Runner.run_sync(agent, "what is billing?")
    records = delivered(sink)
    assert len(records) == run.calls == len(server.issued) == 3  # tool call, tool's own call, answer
    assert run.input_tokens == sum(r.input_tokens for r in records) == server.totals()["input_tokens"]
    assert run.output_tokens == sum(r.output_tokens for r in records) == server.totals()["output_tokens"]
    assert {(r.customer, r.run_id) for r in records} == {("org_agent", run.id)}
    usage = result.context_wrapper.usage
    agent_records = [r for r in records if r.model != "gpt-4.1-mini"]
    assert (usage.requests, usage.input_tokens) == (2, sum(r.input_tokens for r in agent_records))


@pytest.mark.parametrize("kind", KINDS)
async def test_async_agent_run_totals_equal_the_sum_of_its_records(
    server: ProviderServer, sink: Memory, kind: str
) -> None:
    usagetap.instrument()
    agent = _agent(calling_tools(server), kind)
    with usagetap.track(customer="org_async_agent") as run:
        await Runner.run(agent, "what is billing?")
    records = delivered(sink)
    assert len(records) == run.calls == 3
    assert run.output_tokens == sum(r.output_tokens for r in records) == server.totals()["output_tokens"]
    assert run.cost == sum(r.cost for r in records if r.cost is not None)


@pytest.mark.parametrize("kind", KINDS)
async def test_wrapped_client_under_instrument_is_one_record_per_model_call(
    server: ProviderServer, sink: Memory, kind: str
) -> None:
    usagetap.instrument()
    agent = _agent(server, kind, wrapped=True)
    with usagetap.track() as run:
        await Runner.run(agent, "first question")
        await Runner.run(agent, "second question")
    records = delivered(sink)
    assert len(records) == run.calls == len(server.issued) == 2
    assert {r.response_id for r in records} == set(server.issued)


@pytest.mark.parametrize("kind", KINDS)
async def test_streamed_run_is_one_exact_record_billed_to_the_scope(
    server: ProviderServer, sink: Memory, kind: str
) -> None:
    usagetap.instrument()
    agent = _agent(server, kind)
    with usagetap.customer("org_stream"):
        result = Runner.run_streamed(agent, "stream an answer")
        async for _ in result.stream_events():
            pass
    (record,) = delivered(sink)
    (issued,) = server.issued.values()
    assert (record.customer, record.status) == ("org_stream", "ok")
    assert (record.input_tokens, record.output_tokens) == (issued.input_tokens, issued.output_tokens)
