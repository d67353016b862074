"""OpenAI-compatible hosts by name: the real openai SDK at each host's own base URL, its traffic served by
the loopback provider, gives the provider name of DESIGN.md (genai-prices' id), exact tokens and the
host's genai-prices cost; a self-hosted server (Ollama, LM Studio, vLLM) has no price unless one is set."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from typing import Any, Optional

import openai
import pytest
from genai_prices import Usage, calc_price

import usagetap
from tests.helpers import http_module
from tests.instrument.conftest import delivered
from usagetap.sinks import Memory
from usagetap.testing import ProviderServer

MESSAGES = [{"role": "user", "content": "which host am I talking to?"}]

# base URL -> (model, provider name, genai-prices provider id or None for no price)
HOSTS: dict[str, tuple[str, str, Optional[str]]] = {
    "https://api.groq.com/openai/v1": ("llama-3.1-8b-instant", "groq", "groq"),
    "https://api.deepseek.com": ("deepseek-chat", "deepseek", "deepseek"),
    "https://api.x.ai/v1": ("grok-3", "x-ai", "x-ai"),
    "https://api.together.xyz/v1": ("meta-llama/Llama-3.3-70B-Instruct-Turbo", "together", "together"),
    "https://api.fireworks.ai/inference/v1": (
        "accounts/fireworks/models/deepseek-v3-0324",
        "fireworks",
        "fireworks",
    ),
    "https://openrouter.ai/api/v1": ("anthropic/claude-3.5-sonnet", "openrouter", "openrouter"),
    "https://api.mistral.ai/v1": ("mistral-large-latest", "mistral", "mistral"),
    "https://api.cerebras.ai/v1": ("llama-3.3-70b", "cerebras", "cerebras"),
    "https://models.inference.ai.azure.com": ("gpt-4o", "azure", "azure"),
    "https://acme-llama.eastus2.models.ai.azure.com/v1": ("gpt-4o", "azure", "azure"),
    "http://localhost:11434/v1": ("qwen3:0.6b", "ollama", None),
    "http://127.0.0.1:1234/v1": ("gpt-4o-mini", "lmstudio", None),
}


@pytest.fixture
def loopback() -> Iterator[ProviderServer]:
    """The loopback provider as an unknown host: the client's base URL alone names the provider."""
    with ProviderServer(impersonate=None) as server:
        yield server


def _at(base_url: str, server: ProviderServer, **wrap: Any) -> openai.OpenAI:
    """An OpenAI client at ``base_url`` whose requests reach ``server`` (``/v1`` + the path past the base)."""
    hx = http_module(openai)
    prefix = hx.URL(base_url).path.rstrip("/")

    class ToLoopback(hx.HTTPTransport):  # type: ignore[misc, name-defined]
        def handle_request(self, request: Any) -> Any:
            rest = request.url.path[len(prefix) :]
            request.url = hx.URL(f"{server.url}/v1{rest}")
            return super().handle_request(request)

    http = hx.Client(transport=ToLoopback())
    client = openai.OpenAI(base_url=base_url, api_key="sk-host", max_retries=0, http_client=http)
    return usagetap.wrap(client, **wrap)


def _genai_cost(record: usagetap.UsageRecord, provider_id: str) -> Decimal:
    usage = Usage(
        input_tokens=record.input_tokens,
        output_tokens=record.output_tokens,
        cache_read_tokens=record.cache_read_tokens,
    )
    at = record.timestamp  # genai-prices' price at the time of the call (DeepSeek's off-peak hours)
    return Decimal(
        calc_price(usage, record.model, provider_id=provider_id, genai_request_timestamp=at).total_price
    )


@pytest.mark.parametrize(
    "base_url", list(HOSTS), ids=[HOSTS[url][1] + ":" + url.split("/")[2] for url in HOSTS]
)
def test_a_compatible_host_is_named_and_priced_as_its_provider(
    base_url: str, loopback: ProviderServer, sink: Memory
) -> None:
    model, provider, provider_id = HOSTS[base_url]
    completion = _at(base_url, loopback).chat.completions.create(model=model, messages=MESSAGES)  # type: ignore[arg-type]
    [record] = delivered(sink)
    issued = loopback.issued[completion.id]
    assert (record.provider, record.model, record.status) == (provider, model, "ok")
    assert (record.input_tokens, record.output_tokens) == (issued.input_tokens, issued.output_tokens)
    assert record.cost == (None if provider_id is None else _genai_cost(record, provider_id))


def test_a_stream_from_a_compatible_host_is_named_priced_and_exact(
    loopback: ProviderServer, sink: Memory
) -> None:
    client = _at("https://api.groq.com/openai/v1", loopback)
    stream = client.chat.completions.create(model="llama-3.1-8b-instant", messages=MESSAGES, stream=True)  # type: ignore[arg-type]
    ids = {chunk.id for chunk in stream}
    [record] = delivered(sink)
    [issued] = [loopback.issued[i] for i in ids]
    assert (record.provider, record.status, record.input_tokens, record.output_tokens) == (
        "groq",
        "ok",
        issued.input_tokens,
        issued.output_tokens,
    )
    assert record.cost == _genai_cost(record, "groq")


def test_a_self_hosted_server_named_with_wrap_serving_an_openai_model_name_has_no_price(
    loopback: ProviderServer, sink: Memory
) -> None:
    client = _at("http://gpu-box.internal:8000/v1", loopback, provider="vllm")
    completion = client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)  # type: ignore[arg-type]
    [record] = delivered(sink)
    assert (record.provider, record.input_tokens) == ("vllm", loopback.issued[completion.id].input_tokens)
    assert record.cost is None


def test_a_self_hosted_model_is_priced_at_the_price_the_user_set(
    loopback: ProviderServer, sink: Memory
) -> None:
    usagetap.prices.set("qwen3:0.6b", "ollama", input_per_mtok=1, output_per_mtok=2)
    try:
        client = _at("http://localhost:11434/v1", loopback)
        client.chat.completions.create(model="qwen3:0.6b", messages=MESSAGES)  # type: ignore[arg-type]
        [record] = delivered(sink)
    finally:
        usagetap.prices.clear()
    assert record.provider == "ollama"
    assert record.cost == Decimal(record.input_tokens + 2 * record.output_tokens) / 1_000_000
