"""The kill switch: ``USAGETAP_DISABLED=1`` / ``configure(enabled=False)`` pass calls straight through."""

from __future__ import annotations

import asyncio
from pathlib import Path

import openai
import pytest

import usagetap
from tests.helpers import run_script
from usagetap.instrument import instrument, instrumented, uninstrument
from usagetap.sinks import Memory
from usagetap.testing import ProviderServer

MESSAGES = [{"role": "user", "content": "switch"}]


def test_wrap_returns_the_client_untouched_while_disabled(server: ProviderServer) -> None:
    usagetap.configure(enabled=False)
    client = openai.OpenAI(base_url=server.openai_url, api_key="sk-test")
    before = dict(vars(client))
    assert usagetap.wrap(client, customer="org_1") is client
    assert vars(client) == before


def test_a_client_wrapped_before_disabling_sends_requests_unchanged(
    server: ProviderServer, sink: Memory
) -> None:
    client = usagetap.wrap(openai.OpenAI(base_url=server.openai_url, api_key="sk-test"))
    usagetap.configure(enabled=False)
    chunks = list(client.chat.completions.create(model="gpt-4.1", messages=MESSAGES, stream=True))
    assert "stream_options" not in server.requests[-1]["body"]
    assert chunks and all(chunk.usage is None for chunk in chunks)
    assert usagetap.flush(5.0).pending == 0
    assert sink.records == []


def test_a_wrapped_client_is_metered_again_once_enabled(server: ProviderServer, sink: Memory) -> None:
    client = usagetap.wrap(openai.OpenAI(base_url=server.openai_url, api_key="sk-test"))
    usagetap.configure(enabled=False)
    usagetap.configure(enabled=True)
    with usagetap.customer("org_back"):
        client.chat.completions.create(model="gpt-4.1", messages=MESSAGES)
    assert usagetap.flush(5.0).pending == 0
    assert [r.customer for r in sink.records] == ["org_back"]


def test_an_async_wrapped_client_passes_calls_through_while_disabled(
    server: ProviderServer, sink: Memory
) -> None:
    client = usagetap.wrap(openai.AsyncOpenAI(base_url=server.openai_url, api_key="sk-test"))
    usagetap.configure(enabled=False)

    async def call() -> None:
        async for _ in await client.chat.completions.create(model="gpt-4.1", messages=MESSAGES, stream=True):
            pass

    asyncio.run(call())
    assert "stream_options" not in server.requests[-1]["body"]
    assert usagetap.flush(5.0).pending == 0
    assert sink.records == []


def test_instrument_patches_nothing_while_disabled() -> None:
    usagetap.configure(enabled=False)
    try:
        assert instrument() == []
        assert not instrumented()
    finally:
        uninstrument()


def test_an_instrumented_client_passes_calls_through_while_disabled(
    server: ProviderServer, sink: Memory
) -> None:
    instrument()
    try:
        client = openai.OpenAI(base_url=server.openai_url, api_key="sk-test")
        usagetap.configure(enabled=False)
        for _ in client.chat.completions.create(model="gpt-4.1", messages=MESSAGES, stream=True):
            pass
        assert "stream_options" not in server.requests[-1]["body"]
        assert usagetap.flush(5.0).pending == 0
        assert sink.records == []
    finally:
        uninstrument()


def test_enabled_must_be_a_bool() -> None:
    with pytest.raises(usagetap.ConfigurationError, match="enabled"):
        usagetap.configure(enabled="no")  # type: ignore[arg-type]


def test_usagetap_disabled_in_the_environment_turns_metering_off(tmp_path: Path) -> None:
    code = """
        import openai, usagetap
        from usagetap.testing import ProviderServer
        with ProviderServer() as server:
            client = openai.OpenAI(base_url=server.openai_url, api_key="k")
            assert usagetap.wrap(client) is client and "request" not in vars(client)
            messages = [{"role": "user", "content": "hi"}]
            for _ in client.chat.completions.create(model="gpt-4.1", messages=messages, stream=True):
                pass
            print("stream_options" in server.requests[-1]["body"], usagetap.stats().get("captured", 0))
    """
    result = run_script(code, tmp_path, {"USAGETAP_DISABLED": "1"})
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["False", "0"]
    assert not (tmp_path / ".usagetap").exists()
