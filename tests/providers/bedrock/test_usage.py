"""Pure extraction of Bedrock Runtime usage, on fixtures of the shapes real responses have.

Shapes from /work/shared/payloads/more_providers/ (boto3 cassettes of pydantic-ai and openllmetry):
Converse with cache reads/writes and ``cacheDetails``, Nova's legacy ``...TokenCount`` duplicates,
InvokeModel count headers (Anthropic cache reads, Cohere/Mistral bodies without counts), Titan,
Llama and Nova bodies, and invoke streams' ``amazon-bedrock-invocationMetrics``. Numbers and ids
here are our own.
"""

from __future__ import annotations

import base64
import json
from types import SimpleNamespace
from typing import Any

import pytest

from usagetap.providers.bedrock import usage as bedrock


def test_converse_input_adds_the_cache_reads_and_writes_it_excludes() -> None:
    found = bedrock.converse_usage(
        {
            "usage": {
                "inputTokens": 5,
                "outputTokens": 90,
                "totalTokens": 1495,
                "cacheReadInputTokens": 1200,
                "cacheWriteInputTokens": 200,
                "cacheReadInputTokenCount": 1200,
                "cacheWriteInputTokenCount": 200,
                "cacheDetails": [{"inputTokens": 200, "ttl": "5m"}],
            },
            "ResponseMetadata": {"RequestId": "req-1"},
        }
    )
    assert (found.input_tokens, found.output_tokens) == (1405, 90)
    assert (found.cache_read_tokens, found.cache_write_tokens) == (1200, 200)
    assert found.response_id == "req-1" and found.issue is None
    assert found.dimensions == {"cache_write_5m_tokens": 200, "cache_write_1h_tokens": 0}


def test_converse_legacy_cache_names_alone_are_read() -> None:
    found = bedrock.converse_usage(
        {"usage": {"inputTokens": 10, "outputTokens": 3, "cacheWriteInputTokenCount": 40}}
    )
    assert (found.input_tokens, found.cache_write_tokens) == (50, 40)


def test_converse_cache_writes_split_by_ttl() -> None:
    usage = {
        "inputTokens": 1,
        "outputTokens": 1,
        "cacheWriteInputTokens": 30,
        "cacheDetails": [{"inputTokens": 10, "ttl": "5m"}, {"inputTokens": 20, "ttl": "1h"}],
    }
    found = bedrock.converse_usage({"usage": usage})
    assert found.dimensions == {"cache_write_5m_tokens": 10, "cache_write_1h_tokens": 20}


def test_converse_total_beyond_its_parts_is_cache_a_too_old_botocore_dropped() -> None:
    found = bedrock.converse_usage({"usage": {"inputTokens": 4, "outputTokens": 6, "totalTokens": 510}})
    assert (found.input_tokens, found.output_tokens) == (504, 6)
    assert found.issue is not None and "not itemised" in found.issue


def test_converse_without_output_tokens_is_flagged_not_billed_as_zero() -> None:
    found = bedrock.converse_usage({"usage": {"inputTokens": 4}})
    assert found.issue == "outputTokens not reported"


def test_converse_without_usage_is_unreported() -> None:
    assert bedrock.converse_usage({"output": {}}).reported is False


def test_count_headers_add_cache_reads_to_the_input() -> None:
    headers = {
        "x-amzn-bedrock-input-token-count": "7",
        "x-amzn-bedrock-output-token-count": "44",
        "x-amzn-bedrock-cache-read-input-token-count": "9000",
        "x-amzn-bedrock-cache-write-input-token-count": "0",
    }
    found = bedrock.headers_usage(headers, "req-2")
    assert found is not None
    assert (found.input_tokens, found.output_tokens, found.cache_read_tokens) == (9007, 44, 9000)


def test_count_headers_without_output_are_not_usage() -> None:
    assert bedrock.headers_usage({"x-amzn-bedrock-input-token-count": "7"}) is None


def test_invocation_metrics_add_cache_to_the_input() -> None:
    metrics = {
        "inputTokenCount": 20,
        "outputTokenCount": 33,
        "cacheReadInputTokenCount": 100,
        "cacheWriteInputTokenCount": 0,
    }
    found = bedrock.metrics_usage(metrics)
    assert (found.input_tokens, found.output_tokens, found.cache_read_tokens) == (120, 33, 100)


@pytest.mark.parametrize(
    ("model", "body", "expected"),
    [
        (
            "anthropic.claude-3-5-haiku-20241022-v1:0",
            {
                "id": "msg_bdrk_x",
                "type": "message",
                "model": "claude-3-5-haiku-20241022",
                "usage": {
                    "input_tokens": 6,
                    "cache_creation_input_tokens": 0,
                    "cache_read_input_tokens": 500,
                    "output_tokens": 25,
                },
            },
            (506, 25, 500),
        ),
        (
            "amazon.nova-lite-v1:0",
            {"output": {}, "usage": {"inputTokens": 12, "outputTokens": 30, "cacheReadInputTokenCount": 0}},
            (12, 30, 0),
        ),
        (
            "amazon.titan-text-express-v1",
            {"inputTextTokenCount": 14, "results": [{"tokenCount": 11}, {"tokenCount": 2}]},
            (14, 13, 0),
        ),
        ("amazon.titan-embed-text-v2:0", {"embedding": [0.1], "inputTextTokenCount": 8}, (8, 0, 0)),
        (
            "us.meta.llama3-3-70b-instruct-v1:0",
            {"generation": "x", "prompt_token_count": 9, "generation_token_count": 21},
            (9, 21, 0),
        ),
        (
            "mistral.mistral-large-2407-v1:0",
            {"choices": [], "usage": {"prompt_tokens": 17, "completion_tokens": 5}},
            (17, 5, 0),
        ),
    ],
)
def test_invoke_body_counts_per_family(model: str, body: Any, expected: tuple[int, int, int]) -> None:
    found = bedrock.invoke_body_usage(model, body, "req-3")
    assert (found.input_tokens, found.output_tokens, found.cache_read_tokens) == expected
    assert found.reported and found.model is None and found.response_id == "req-3"


@pytest.mark.parametrize(
    ("model", "body"),
    [
        ("mistral.mistral-7b-instruct-v0:2", {"outputs": [{"text": "x", "stop_reason": "stop"}]}),
        ("cohere.command-text-v14", {"id": "c", "generations": [{"text": "x"}]}),
    ],
)
def test_invoke_bodies_without_counts_are_unreported(model: str, body: Any) -> None:
    found = bedrock.invoke_body_usage(model, body)
    assert found.reported is False and found.issue is not None


@pytest.mark.parametrize(
    ("model", "region", "expected"),
    [
        (
            "us.anthropic.claude-3-7-sonnet-20250219-v1:0",
            "us-east-1",
            {"aws_region": "us-east-1", "inference_profile": "us"},
        ),
        ("global.anthropic.claude-sonnet-4-5-20250929-v1:0", None, {"inference_profile": "global"}),
        ("apac.amazon.nova-pro-v1:0", None, {"inference_profile": "apac"}),
        ("us-gov.meta.llama3-8b-instruct-v1:0", None, {"inference_profile": "us-gov"}),
        (
            "arn:aws:bedrock:eu-west-1:123456789012:inference-profile/eu.anthropic.claude-3-haiku-20240307-v1:0",
            "eu-west-1",
            {"aws_region": "eu-west-1", "inference_profile": "eu"},
        ),
        ("amazon.nova-lite-v1:0", None, {}),
        ("arn:aws:bedrock:us-east-1:123456789012:provisioned-model/abc123", None, {}),
    ],
)
def test_model_dimensions_name_the_region_and_cross_region_profile(
    model: str, region: Any, expected: dict[str, str]
) -> None:
    assert bedrock.model_dimensions(model, region) == expected


def _message(event: str, payload: Any, kind: str = "event") -> Any:
    return SimpleNamespace(
        headers={":message-type": kind, ":event-type": event}, payload=json.dumps(payload).encode()
    )


def test_converse_stream_observer_reads_usage_from_metadata() -> None:
    observer = bedrock.ConverseStreamObserver("req-4", {"aws_region": "us-west-2"})
    observer.observe(_message("messageStart", {"role": "assistant"}))
    observer.observe(_message("messageStop", {"stopReason": "end_turn"}))
    assert observer.wants_more() and not observer.usage_final
    observer.observe(
        _message("metadata", {"usage": {"inputTokens": 3, "outputTokens": 8, "cacheReadInputTokens": 2}})
    )
    found = observer.result()
    assert observer.usage_final and observer.done and not observer.wants_more()
    assert (found.input_tokens, found.output_tokens, found.response_id) == (5, 8, "req-4")
    assert found.dimensions == {"aws_region": "us-west-2"}


def test_converse_stream_observer_cut_before_metadata_is_unreported() -> None:
    observer = bedrock.ConverseStreamObserver("req-5")
    observer.observe(_message("contentBlockDelta", {"delta": {"text": "x"}}))
    assert not observer.usage_final and observer.result().reported is False


def test_converse_stream_observer_stops_at_an_exception_event() -> None:
    observer = bedrock.ConverseStreamObserver()
    observer.observe(_message("", {"message": "boom"}, kind="exception"))
    assert observer.done and not observer.usage_final


def _chunk(data: Any) -> Any:
    return _message("chunk", {"bytes": base64.b64encode(json.dumps(data).encode()).decode()})


def test_invoke_stream_observer_reads_the_last_chunks_metrics() -> None:
    observer = bedrock.InvokeStreamObserver("req-6")
    observer.observe(_chunk({"outputText": "a", "inputTextTokenCount": 28}))
    observer.observe(
        _chunk(
            {
                "outputText": "b",
                "amazon-bedrock-invocationMetrics": {"inputTokenCount": 28, "outputTokenCount": 90},
            }
        )
    )
    found = observer.result()
    assert observer.usage_final and (found.input_tokens, found.output_tokens) == (28, 90)


def test_invoke_stream_observer_cut_before_the_metrics_is_unreported() -> None:
    observer = bedrock.InvokeStreamObserver()
    observer.observe(_chunk({"type": "message_start", "message": {"usage": {"input_tokens": 4}}}))
    assert not observer.usage_final and observer.result().reported is False
