"""Pydantic AI agents on OpenAI and Anthropic models, metered through the SDK clients underneath
(``usagetap.instrument()``), against the loopback provider calling the agent's tool once."""

from __future__ import annotations

from collections.abc import Callable

import anthropic
import openai
import pytest

pytest.importorskip("pydantic_ai")

from pydantic_ai import Agent
from pydantic_ai.models import Model
from pydantic_ai.models.anthropic import AnthropicModel
from pydantic_ai.models.openai import OpenAIChatModel
from pydantic_ai.providers.anthropic import AnthropicProvider
from pydantic_ai.providers.openai import OpenAIProvider

import usagetap
from tests.integrations.conftest import delivered
from tests.integrations.tool_calls import calling_tools
from usagetap.sinks import Memory
from usagetap.testing import ProviderServer


def _openai(server: ProviderServer, wrapped: bool = False) -> Model:
    client = openai.AsyncOpenAI(base_url=server.openai_url, api_key="sk-test", max_retries=0)
    client = usagetap.wrap(client) if wrapped else client
    return OpenAIChatModel("gpt-4.1", provider=OpenAIProvider(openai_client=client))


def _anthropic(server: ProviderServer, wrapped: bool = False) -> Model:
    client = anthropic.AsyncAnthropic(base_url=server.anthropic_url, api_key="sk-ant-test", max_retries=0)
    client = usagetap.wrap(client) if wrapped else client
    return AnthropicModel("claude-sonnet-4-5", provider=AnthropicProvider(anthropic_client=client))


MODELS = [pytest.param(_openai, id="openai"), pytest.param(_anthropic, id="anthropic")]


def _agent(model: Model, server: ProviderServer) -> Agent[None, str]:
    agent: Agent[None, str] = Agent(model, instructions="answer briefly")
    side = openai.OpenAI(base_url=server.openai_url, api_key="sk-test", max_retries=0)

    @agent.tool_plain
    def lookup(topic: str) -> str:
        """Look a topic up with a smaller model (a sync tool: Pydantic AI runs it in a worker thread)."""
        side.chat.completions.create(model="gpt-4.1-mini", messages=[{"role": "user", "content": topic}])
        return f"{topic}: metered per token"

    return agent


@pytest.mark.parametrize("make", MODELS)
def test_agent_run_totals_cover_every_model_call_and_the_tool(
    server: ProviderServer, sink: Memory, make: Callable[..., Model]
) -> None:
    usagetap.instrument()
    agent = _agent(make(calling_tools(server)), server)
    with usagetap.track(customer="org_agent") as run:
        result = agent.run_sync("what is billing?")
    records = delivered(sink)
    assert len(records) == run.calls == len(server.issued) == 3  # tool call, tool's own call, answer
    assert run.input_tokens == sum(r.input_tokens for r in records) == server.totals()["input_tokens"]
    assert run.output_tokens == sum(r.output_tokens for r in records) == server.totals()["output_tokens"]
    assert {(r.customer, r.run_id) for r in records} == {("org_agent", run.id)}
    agent_records = [r for r in records if r.model != "gpt-4.1-mini"]
    usage = result.usage if hasattr(result.usage, "input_tokens") else result.usage()  # a method before 2.x
    assert sum(r.input_tokens for r in agent_records) == usage.input_tokens


@pytest.mark.parametrize("make", MODELS)
async def test_async_agent_run_totals_equal_the_sum_of_its_records(
    server: ProviderServer, sink: Memory, make: Callable[..., Model]
) -> None:
    usagetap.instrument()
    agent = _agent(make(calling_tools(server)), server)
    with usagetap.track(customer="org_async_agent") as run:
        await agent.run("what is billing?")
    records = delivered(sink)
    assert len(records) == run.calls == 3
    assert run.output_tokens == sum(r.output_tokens for r in records) == server.totals()["output_tokens"]
    assert run.cost == sum(r.cost for r in records if r.cost is not None)


@pytest.mark.parametrize("make", MODELS)
def test_wrapped_client_under_instrument_is_one_record_per_model_call(
    server: ProviderServer, sink: Memory, make: Callable[..., Model]
) -> None:
    usagetap.instrument()
    agent: Agent[None, str] = Agent(make(server, wrapped=True))
    with usagetap.track() as run:
        agent.run_sync("first question")
        agent.run_sync("second question")
    records = delivered(sink)
    assert len(records) == run.calls == len(server.issued) == 2
    assert {r.response_id for r in records} == set(server.issued)


async def test_streamed_agent_run_is_one_exact_record(server: ProviderServer, sink: Memory) -> None:
    usagetap.instrument()
    agent: Agent[None, str] = Agent(_openai(server))
    with usagetap.customer("org_stream"):
        async with agent.run_stream("stream an answer") as result:
            await result.get_output()
    (record,) = delivered(sink)
    (issued,) = server.issued.values()
    assert (record.customer, record.status) == ("org_stream", "ok")
    assert (record.input_tokens, record.output_tokens) == (issued.input_tokens, issued.output_tokens)
