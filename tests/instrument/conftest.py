from __future__ import annotations

from collections.abc import Iterator

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


@pytest.fixture
def instrumented() -> Iterator[None]:
    from usagetap.instrument import instrument, uninstrument

    instrument()
    yield
    uninstrument()


def delivered(sink: usagetap.sinks.Memory) -> list[usagetap.UsageRecord]:
    assert usagetap.flush(timeout=5.0).pending == 0
    return list(sink.records)
