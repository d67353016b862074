"""The customer policy, checked before the provider is called (real ``openai`` SDK, loopback provider)."""

from __future__ import annotations

import openai
import pytest

import usagetap
from usagetap.sinks import Memory
from usagetap.testing import ProviderServer

MESSAGES = [{"role": "user", "content": "hello"}]


@pytest.fixture
def client(server: ProviderServer) -> openai.OpenAI:
    return usagetap.wrap(openai.OpenAI(base_url=server.openai_url, api_key="sk-test", max_retries=0))


@pytest.fixture
def aclient(server: ProviderServer) -> openai.AsyncOpenAI:
    return usagetap.wrap(openai.AsyncOpenAI(base_url=server.openai_url, api_key="sk-test", max_retries=0))


def no_customer_warnings(caplog: pytest.LogCaptureFixture) -> int:
    return sum("no customer in scope" in r.getMessage() for r in caplog.records)


def test_require_raises_missing_customer_before_the_provider_is_called(
    client: openai.OpenAI, server: ProviderServer, sink: Memory
) -> None:
    usagetap.configure(sink=sink, customer_policy="require")
    with pytest.raises(usagetap.MissingCustomer, match="no customer in scope") as caught:
        client.chat.completions.create(model="gpt-4.1", messages=MESSAGES)
    with pytest.raises(usagetap.MissingCustomer):
        client.chat.completions.create(model="gpt-4.1", messages=MESSAGES, stream=True)
    assert server.requests == []
    assert "gpt-4.1" in str(caught.value) and "sk-test" not in str(caught.value)
    assert isinstance(caught.value, usagetap.UsagetapError)
    assert usagetap.flush().pending == 0 and sink.records == []


async def test_require_raises_for_async_clients_too(
    aclient: openai.AsyncOpenAI, server: ProviderServer, sink: Memory
) -> None:
    usagetap.configure(sink=sink, customer_policy="require")
    with pytest.raises(usagetap.MissingCustomer):
        await aclient.chat.completions.create(model="gpt-4.1", messages=MESSAGES)
    assert server.requests == []


def test_require_lets_calls_with_a_scope_or_a_bound_customer_through(
    client: openai.OpenAI, server: ProviderServer, sink: Memory
) -> None:
    usagetap.configure(sink=sink, customer_policy="require")
    bound = usagetap.wrap(openai.OpenAI(base_url=server.openai_url, api_key="sk-test"), customer="bound")
    with usagetap.customer("scoped"):
        client.chat.completions.create(model="gpt-4.1", messages=MESSAGES)
    bound.chat.completions.create(model="gpt-4.1", messages=MESSAGES)
    bound.with_options(timeout=3.0).chat.completions.create(model="gpt-4.1", messages=MESSAGES)
    with usagetap.track(customer="tracked"):
        client.chat.completions.create(model="gpt-4.1", messages=MESSAGES)
    assert len(server.requests) == 4
    assert usagetap.flush().pending == 0
    assert [r.customer for r in sink.records] == ["scoped", "bound", "bound", "tracked"]


def test_allow_records_with_no_customer_and_warns_once(
    client: openai.OpenAI, sink: Memory, caplog_usagetap: pytest.LogCaptureFixture
) -> None:
    for _ in range(3):
        client.chat.completions.create(model="gpt-4.1", messages=MESSAGES)
    assert usagetap.flush().pending == 0
    assert [r.customer for r in sink.records] == [None] * 3
    assert no_customer_warnings(caplog_usagetap) == 1


def test_warn_records_with_no_customer_and_warns_every_time(
    client: openai.OpenAI, sink: Memory, caplog_usagetap: pytest.LogCaptureFixture
) -> None:
    usagetap.configure(sink=sink, customer_policy="warn")
    for _ in range(3):
        client.chat.completions.create(model="gpt-4.1", messages=MESSAGES)
    assert usagetap.flush().pending == 0
    assert [r.customer for r in sink.records] == [None] * 3
    assert no_customer_warnings(caplog_usagetap) == 3


def test_configure_keeps_the_policy_unless_given_and_rejects_unknown_ones(sink: Memory) -> None:
    from usagetap._customer_policy import customer_policy

    usagetap.configure(sink=sink, customer_policy="require")
    usagetap.configure(sink=sink)
    assert customer_policy() == "require"
    with pytest.raises(usagetap.ConfigurationError, match="customer_policy"):
        usagetap.configure(sink=sink, customer_policy="strict")
    assert customer_policy() == "require"
