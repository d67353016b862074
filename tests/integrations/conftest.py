from __future__ import annotations

import openai
import pytest

import usagetap
from usagetap.testing import ProviderServer


@pytest.fixture
def client(server: ProviderServer) -> openai.OpenAI:
    return usagetap.wrap(openai.OpenAI(base_url=server.openai_url, api_key="sk-test", max_retries=0))


@pytest.fixture
def aclient(server: ProviderServer) -> openai.AsyncOpenAI:
    return usagetap.wrap(openai.AsyncOpenAI(base_url=server.openai_url, api_key="sk-test", max_retries=0))


def delivered(sink: usagetap.sinks.Memory) -> list[usagetap.UsageRecord]:
    assert usagetap.flush(timeout=5.0).pending == 0
    return list(sink.records)


def customers_by_response(sink: usagetap.sinks.Memory) -> dict[str, object]:
    return {r.response_id: r.customer for r in delivered(sink)}


HELLO = [{"role": "user", "content": "hello there"}]
