from __future__ import annotations

from collections.abc import Iterator

import anthropic
import openai
import pytest

import usagetap
from usagetap.testing import ProviderServer

HAS_RESPONSES = hasattr(openai.OpenAI, "responses")
needs_responses = pytest.mark.skipif(
    not HAS_RESPONSES, reason="the Responses API is not in this openai version"
)


@pytest.fixture
def client(server: ProviderServer) -> openai.OpenAI:
    return usagetap.wrap(openai.OpenAI(base_url=server.openai_url, api_key="sk-test", max_retries=0))


@pytest.fixture
def aclient(server: ProviderServer) -> openai.AsyncOpenAI:
    return usagetap.wrap(openai.AsyncOpenAI(base_url=server.openai_url, api_key="sk-test", max_retries=0))


@pytest.fixture
def instrumented() -> Iterator[None]:
    from usagetap.instrument import instrument, uninstrument

    instrument()
    yield
    uninstrument()


def delivered(sink: usagetap.sinks.Memory) -> list[usagetap.UsageRecord]:
    assert usagetap.flush(timeout=5.0).pending == 0
    return list(sink.records)


# -- Anthropic --------------------------------------------------------------------


@pytest.fixture
def claude_server() -> Iterator[ProviderServer]:
    """A loopback server that records its clients' calls as provider ``anthropic``."""
    with ProviderServer(impersonate="anthropic") as provider:
        yield provider


@pytest.fixture
def claude(claude_server: ProviderServer) -> anthropic.Anthropic:
    return usagetap.wrap(
        anthropic.Anthropic(base_url=claude_server.anthropic_url, api_key="sk-ant-test", max_retries=0)
    )


@pytest.fixture
def aclaude(claude_server: ProviderServer) -> anthropic.AsyncAnthropic:
    return usagetap.wrap(
        anthropic.AsyncAnthropic(base_url=claude_server.anthropic_url, api_key="sk-ant-test", max_retries=0)
    )
