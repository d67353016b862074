"""LangChain chat models (``langchain-openai``, ``langchain-anthropic``), metered through the SDK clients
underneath (``usagetap.instrument()``): the customer scope follows LangChain into its executors."""

from __future__ import annotations

import anthropic
import openai
import pytest

pytest.importorskip("langchain_openai")
pytest.importorskip("langchain_anthropic")

from langchain_anthropic import ChatAnthropic
from langchain_core.messages import AIMessage, HumanMessage, ToolMessage
from langchain_core.tools import BaseTool, tool
from langchain_openai import ChatOpenAI

import usagetap
from tests.integrations.conftest import delivered
from tests.integrations.tool_calls import calling_tools
from usagetap.sinks import Memory
from usagetap.testing import ProviderServer


def _chat_openai(server: ProviderServer) -> ChatOpenAI:
    return ChatOpenAI(model="gpt-4.1", base_url=server.openai_url, api_key="sk-test", max_retries=0)


def _chat_anthropic(server: ProviderServer) -> ChatAnthropic:
    return ChatAnthropic(
        model="claude-sonnet-4-5", base_url=server.anthropic_url, api_key="sk-ant-test", max_tokens=24
    )


def _asking_tool(server: ProviderServer) -> BaseTool:
    llm = _chat_openai(server)

    @tool
    def ask(question: str) -> str:
        """Ask a model (a sync tool: ``ainvoke``/``batch`` run it in LangChain's executor threads)."""
        return str(llm.invoke(question).content)

    return ask


def test_batch_calls_bill_the_callers_customer(server: ProviderServer, sink: Memory) -> None:
    usagetap.instrument()
    with usagetap.customer("org_batch", feature="lc"):
        _chat_openai(server).batch(["one", "two", "three"], config={"max_concurrency": 3})
    records = delivered(sink)
    assert len(records) == len(server.issued) == 3
    assert {(r.customer, r.dimensions["feature"]) for r in records} == {("org_batch", "lc")}


async def test_abatch_calls_bill_the_callers_customer(server: ProviderServer, sink: Memory) -> None:
    usagetap.instrument()
    with usagetap.customer("org_abatch"):
        await _chat_anthropic(server).abatch(["one", "two"])
    records = delivered(sink)
    assert len(records) == len(server.issued) == 2
    assert {(r.customer, r.provider) for r in records} == {("org_abatch", "anthropic")}


async def test_sync_tool_run_in_an_executor_thread_bills_the_callers_customer(
    server: ProviderServer, sink: Memory
) -> None:
    usagetap.instrument()
    ask = _asking_tool(server)
    with usagetap.customer("org_tool"):
        await ask.ainvoke({"question": "from a thread"})
        ask.batch([{"question": "a"}, {"question": "b"}])
    records = delivered(sink)
    assert len(records) == len(server.issued) == 3
    assert {r.customer for r in records} == {"org_tool"}


@pytest.mark.parametrize("make", [_chat_openai, _chat_anthropic], ids=["openai", "anthropic"])
def test_invoke_and_stream_are_one_exact_record_each(
    server: ProviderServer, sink: Memory, make: object
) -> None:
    usagetap.instrument()
    llm = make(server)  # type: ignore[operator]
    llm.invoke("hello there")
    for _ in llm.stream("hello stream"):
        pass
    records = delivered(sink)
    assert len(records) == len(server.issued) == 2
    for record in records:
        issued = server.issued[record.response_id]
        assert (record.input_tokens, record.output_tokens, record.status) == (
            issued.input_tokens,
            issued.output_tokens,
            "ok",
        )


def test_wrapped_clients_under_instrument_are_one_record_per_model_call(
    server: ProviderServer, sink: Memory
) -> None:
    usagetap.instrument()
    root = usagetap.wrap(openai.OpenAI(base_url=server.openai_url, api_key="sk-test"), customer="org_w")
    llm = ChatOpenAI(model="gpt-4.1", root_client=root, client=root.chat.completions, api_key="sk-test")
    claude = usagetap.wrap(
        anthropic.Anthropic(base_url=server.anthropic_url, api_key="sk-ant"), customer="org_w"
    )
    chat_claude = _chat_anthropic(server)
    chat_claude._client = claude  # type: ignore[attr-defined]  # LangChain's cached SDK client
    with usagetap.track() as run:
        llm.invoke("hello")
        chat_claude.invoke("hello")
    records = delivered(sink)
    assert len(records) == run.calls == len(server.issued) == 2
    assert {r.customer for r in records} == {"org_w"}


def test_track_run_with_a_tool_loop_totals_the_sum_of_its_records(
    server: ProviderServer, sink: Memory
) -> None:
    usagetap.instrument()
    ask = _asking_tool(calling_tools(server))
    llm = _chat_anthropic(server).bind_tools([ask])
    with usagetap.track(customer="org_loop") as run:
        messages: list = [HumanMessage("what is billing?")]
        first = llm.invoke(messages)
        assert isinstance(first, AIMessage) and first.tool_calls
        call = first.tool_calls[0]
        messages += [first, ToolMessage(ask.invoke(call["args"]), tool_call_id=call["id"])]
        llm.invoke(messages)
    records = delivered(sink)
    assert len(records) == run.calls == len(server.issued) == 3
    assert run.input_tokens == sum(r.input_tokens for r in records) == server.totals()["input_tokens"]
    assert run.output_tokens == sum(r.output_tokens for r in records) == server.totals()["output_tokens"]
    assert {r.run_id for r in records} == {run.id}
