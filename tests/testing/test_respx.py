"""usagetap.testing.respx: respx routes answering like OpenAI and Anthropic, for SDKs on httpx or httpx2."""

from __future__ import annotations

from collections.abc import Iterator

import anthropic
import httpx
import openai
import pytest
import respx

import usagetap
from tests.helpers import http_module
from usagetap.sinks import Memory
from usagetap.testing.respx import ProviderRoutes, http_client

CHAT = [{"role": "user", "content": "three little words"}]


@pytest.fixture
def router() -> Iterator[respx.MockRouter]:
    with respx.mock(assert_all_called=False) as mocked:
        yield mocked


@pytest.fixture
def routes(router: respx.MockRouter) -> ProviderRoutes:
    return ProviderRoutes(router)


def test_an_openai_chat_call_is_metered_with_the_usage_the_route_reported(
    router: respx.MockRouter, routes: ProviderRoutes, sink: Memory
) -> None:
    client = usagetap.wrap(openai.OpenAI(api_key="test", http_client=http_client(router, openai)))
    with usagetap.customer("org_1"):
        reply = client.chat.completions.create(model="gpt-4.1", messages=CHAT)
    usagetap.flush()
    [record] = sink.records
    assert (record.provider, record.customer, record.status) == ("openai", "org_1", "ok")
    assert (record.input_tokens, record.output_tokens) == (
        routes.issued[reply.id].input_tokens,
        routes.issued[reply.id].output_tokens,
    )


def test_an_openai_stream_ends_with_its_usage(
    router: respx.MockRouter, routes: ProviderRoutes, sink: Memory
) -> None:
    client = usagetap.wrap(openai.OpenAI(api_key="test", http_client=http_client(router, openai)))
    stream = client.chat.completions.create(
        model="gpt-4.1", messages=CHAT, stream=True, stream_options={"include_usage": True}
    )
    chunks = list(stream)
    usagetap.flush()
    [record] = sink.records
    assert chunks[-1].usage is not None and record.status == "ok"
    assert record.output_tokens == routes.totals()["output_tokens"] > 0


def test_an_anthropic_message_is_metered_as_anthropic_usage(
    router: respx.MockRouter, routes: ProviderRoutes, sink: Memory
) -> None:
    client = usagetap.wrap(anthropic.Anthropic(api_key="test", http_client=http_client(router, anthropic)))
    client.messages.create(model="claude-sonnet-4-5", max_tokens=9, messages=CHAT)
    usagetap.flush()
    [record] = sink.records
    assert (record.provider, record.output_tokens) == ("anthropic", 9)
    assert record.input_tokens == routes.totals()["input_tokens"]


async def test_an_async_anthropic_stream_is_answered_in_server_sent_events(
    router: respx.MockRouter, routes: ProviderRoutes, sink: Memory
) -> None:
    client = usagetap.wrap(
        anthropic.AsyncAnthropic(
            api_key="test", http_client=http_client(router, anthropic, asynchronous=True)
        )
    )
    stream = await client.messages.create(model="claude-sonnet-4-5", max_tokens=7, messages=CHAT, stream=True)
    kinds = [event.type async for event in stream]
    await usagetap.aflush()
    [record] = sink.records
    assert kinds[0] == "message_start" and kinds[-1] == "message_stop"
    assert (record.status, record.output_tokens) == ("ok", 7)
    assert routes.anthropic.call_count == 1


def test_plain_httpx_under_respx_mock_gets_the_openai_answer(routes: ProviderRoutes) -> None:
    answer = httpx.post(
        "https://api.openai.com/v1/chat/completions",
        json={"model": "gpt-4.1", "messages": CHAT},
        headers={"Authorization": "Bearer test"},
    )
    assert answer.json()["usage"]["prompt_tokens"] == routes.totals()["input_tokens"] > 0


def test_an_injected_failure_reaches_the_sdk_as_its_error(
    router: respx.MockRouter, routes: ProviderRoutes
) -> None:
    routes.fail_next(429, headers={"Retry-After": "0"})
    client = openai.OpenAI(api_key="test", max_retries=0, http_client=http_client(router, openai))
    with pytest.raises(openai.RateLimitError):
        client.chat.completions.create(model="gpt-4.1", messages=CHAT)


def test_the_http_client_is_of_the_library_the_sdk_sends_with(router: respx.MockRouter) -> None:
    assert isinstance(http_client(router, openai), http_module(openai).Client)
    assert isinstance(http_client(router, anthropic, asynchronous=True), http_module(anthropic).AsyncClient)
