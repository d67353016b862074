"""OpenAI-compatible servers' usage, in their recorded shapes, through the real openai SDK."""

from __future__ import annotations

from typing import Any

import openai
import pytest

import usagetap
from tests.helpers import answering
from tests.providers.conftest import FIXTURES
from usagetap import _stats
from usagetap.sinks import Memory

# fixture -> (base URL, (input, output, cache read, cache write, reasoning) in usagetap's convention)
SHAPES: dict[str, tuple[str, tuple[int, int, int, int, int]]] = {
    "chat_completion_gemini_hidden_thoughts.json": (
        "https://generativelanguage.googleapis.com/v1beta/openai",
        (21, 166, 0, 0, 157),
    ),
    "chat_completion_xai_reasoning.json": ("https://api.x.ai/v1", (28, 319, 16, 0, 313)),
    "chat_completion_together_cached.json": ("https://api.together.xyz/v1", (612, 3, 512, 0, 0)),
    "chat_completion_groq_timing.json": ("https://api.groq.com/openai/v1", (402, 77, 384, 0, 70)),
    "chat_completion_deepseek_reasoner.json": ("https://api.deepseek.com", (900, 140, 832, 0, 131)),
    "chat_completion_openrouter_reasoning_cost.json": (
        "https://openrouter.ai/api/v1",
        (1310, 205, 1024, 0, 192),
    ),
    "chat_completion_fireworks_cached.json": ("https://api.fireworks.ai/inference/v1", (2210, 3, 2048, 0, 0)),
    "chat_completion_mistral_cached.json": ("https://api.mistral.ai/v1", (845, 4, 768, 0, 0)),
    "chat_completion_vllm_details_null.json": ("http://127.0.0.1:8000/v1", (31, 3, 0, 0, 0)),
}


def _tokens(record: usagetap.UsageRecord) -> tuple[str, tuple[int, int, int, int, int]]:
    return record.status, (
        record.input_tokens,
        record.output_tokens,
        record.cache_read_tokens,
        record.cache_write_tokens,
        record.reasoning_tokens,
    )


def _client(base_url: str, body: bytes, content_type: str = "application/json") -> openai.OpenAI:
    http = answering(openai, body, content_type)
    return usagetap.wrap(openai.OpenAI(base_url=base_url, api_key="sk-test", max_retries=0, http_client=http))


def test_every_major_compatible_providers_usage_shape_is_metered_exactly(sink: Memory) -> None:
    metered: dict[str, Any] = {}
    for name, (base_url, _) in SHAPES.items():
        with usagetap.customer(name):
            _client(base_url, (FIXTURES / "openai" / name).read_bytes()).chat.completions.create(
                model="m", messages=[{"role": "user", "content": "hi"}]
            )
    assert usagetap.flush(timeout=5.0).pending == 0
    for record in sink.records:
        metered[str(record.customer)] = _tokens(record)
    assert metered == {name: ("ok", tokens) for name, (_, tokens) in SHAPES.items()}
    assert {k: v for k, v in _stats.snapshot().items() if k.startswith(("dropped", "internal")) and v} == {}


def test_groq_legacy_stream_with_usage_only_under_x_groq_is_metered_exactly(sink: Memory) -> None:
    body = (FIXTURES / "openai" / "chat_stream_groq_x_groq_usage.sse").read_bytes()
    client = _client("https://api.groq.com/openai/v1", body, "text/event-stream")
    stream = client.chat.completions.create(
        model="m", messages=[{"role": "user", "content": "hi"}], stream=True
    )
    assert "".join(c.choices[0].delta.content or "" for c in stream) == "Blue light scatters most."
    assert usagetap.flush(timeout=5.0).pending == 0
    assert [_tokens(r) for r in sink.records] == [("ok", (24, 6, 0, 0, 0))]


def test_what_openrouter_charged_reaches_the_record_as_provider_cost(sink: Memory) -> None:
    name = "chat_completion_openrouter_reasoning_cost.json"
    client = _client("https://openrouter.ai/api/v1", (FIXTURES / "openai" / name).read_bytes())
    client.chat.completions.create(model="m", messages=[{"role": "user", "content": "hi"}])
    assert usagetap.flush(timeout=5.0).pending == 0
    assert [r.dimensions.get("provider_cost") for r in sink.records] == [0.0036875]


@pytest.mark.internal_error("usage")
@pytest.mark.parametrize("usage", [b'"n/a"', b"[12, 3]", b"15"], ids=["str", "list", "int"])
def test_usage_that_is_not_an_object_gives_a_partial_record_and_an_internal_error(
    sink: Memory, usage: bytes
) -> None:
    body = (
        b'{"id": "chatcmpl-9", "object": "chat.completion", "model": "m", "choices": [], "usage": '
        + usage
        + b"}"
    )
    _client("https://api.example.com/v1", body).chat.completions.create(
        model="m", messages=[{"role": "user", "content": "hi"}]
    )
    assert usagetap.flush(timeout=5.0).pending == 0
    [record] = sink.records
    assert record.status == "partial"
    assert str(record.dimensions["usage_issue"]).startswith("usage is a ")
    assert _stats.snapshot()["internal_errors"] == 1
