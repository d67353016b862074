"""Mistral's usage extraction, pure: fixtures in the shapes of Mistral's API and of mistralai's models.

Shapes from Mistral's API reference (chat completion, streamed chunks, embeddings) and captured
traffic in ../shared/payloads/more_providers (mistral_complete_cached, mistral_stream_magistral,
mistral_embeddings): own ids, numbers and texts.
"""

from __future__ import annotations

import json
from types import SimpleNamespace

from usagetap.providers.mistral import usage


def _sse(*events: object) -> bytes:
    return b"".join(
        b"data: " + (e if isinstance(e, bytes) else json.dumps(e).encode()) + b"\n\n" for e in events
    )


def test_prompt_tokens_include_the_cached_ones_reported_in_a_plain_dict() -> None:
    body = {
        "id": "c0ffee01",
        "model": "mistral-large-latest",
        "usage": {
            "prompt_tokens": 300,
            "completion_tokens": 7,
            "total_tokens": 307,
            "prompt_tokens_details": {"cached_tokens": 256},
        },
    }
    got = usage.response_usage(body)
    assert (got.input_tokens, got.output_tokens, got.cache_read_tokens) == (300, 7, 256)
    assert (got.model, got.response_id, got.issue) == ("mistral-large-latest", "c0ffee01", None)


def test_cached_tokens_among_an_older_sdk_models_extra_fields_are_read() -> None:
    details = {"prompt_tokens_details": {"cached_tokens": 128}}
    model_usage = SimpleNamespace(
        prompt_tokens=200, completion_tokens=9, total_tokens=209, additional_properties=details
    )
    got = usage.response_usage(SimpleNamespace(id="r1", model="mistral-small-latest", usage=model_usage))
    assert (got.input_tokens, got.output_tokens, got.cache_read_tokens) == (200, 9, 128)


def test_output_only_the_total_shows_is_billed_as_output() -> None:
    body = {
        "id": "r2",
        "model": "magistral-medium-latest",
        "usage": {"prompt_tokens": 12, "completion_tokens": 40, "total_tokens": 90},
    }
    assert usage.response_usage(body).output_tokens == 78


def test_reasoning_tokens_are_read_when_reported() -> None:
    details = {"reasoning_tokens": 30}
    body = {
        "usage": {
            "prompt_tokens": 5,
            "completion_tokens": 50,
            "total_tokens": 55,
            "completion_tokens_details": details,
        }
    }
    got = usage.response_usage(body)
    assert (got.output_tokens, got.reasoning_tokens) == (50, 30)


def test_embeddings_usage_with_null_details_is_exact() -> None:
    body = {
        "id": "e1",
        "object": "list",
        "model": "mistral-embed",
        "usage": {
            "prompt_tokens": 14,
            "total_tokens": 14,
            "completion_tokens": 0,
            "prompt_token_details": None,
        },
    }
    got = usage.response_usage(body)
    assert (got.input_tokens, got.output_tokens, got.cache_read_tokens, got.reported) == (14, 0, 0, True)


def test_a_stream_reports_usage_in_its_last_chunk() -> None:
    first = {
        "id": "s1",
        "model": "mistral-tiny",
        "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}}],
    }
    last = {
        "id": "s1",
        "model": "mistral-tiny",
        "choices": [{"index": 0, "delta": {"content": ""}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 8, "completion_tokens": 21, "total_tokens": 29},
    }
    got = usage.body_usage(_sse(first, last, b"[DONE]"), sse=True)
    assert (got.response_id, got.model, got.input_tokens, got.output_tokens, got.reported) == (
        "s1",
        "mistral-tiny",
        8,
        21,
        True,
    )


def test_a_stream_cut_before_its_usage_is_unreported() -> None:
    first = {"id": "s2", "model": "mistral-tiny", "choices": [{"index": 0, "delta": {"content": "Hi"}}]}
    got = usage.body_usage(_sse(first), sse=True)
    assert (got.response_id, got.model, got.reported) == ("s2", "mistral-tiny", False)


def test_a_body_never_read_is_unreported() -> None:
    assert usage.body_usage(None, sse=True).reported is False


def test_a_json_body_is_read_as_a_response() -> None:
    body = json.dumps(
        {
            "id": "j1",
            "model": "codestral-latest",
            "usage": {"prompt_tokens": 3, "completion_tokens": 4, "total_tokens": 7},
        }
    )
    got = usage.body_usage(body.encode(), sse=False)
    assert (got.response_id, got.input_tokens, got.output_tokens) == ("j1", 3, 4)


def test_operations_are_found_by_the_end_of_the_path() -> None:
    assert usage.operation_for("/mistral/v1/chat/completions") == "chat"
    assert usage.operation_for("/v1/agents/completions") == "agents"
    assert usage.operation_for("/v1/fim/completions") == "fim"
    assert usage.operation_for("/v1/embeddings") == "embeddings"
    assert usage.operation_for("/v1/models") is None
