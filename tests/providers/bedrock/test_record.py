"""``usagetap.record(response, provider="bedrock")``: boto3's response dicts, and Claude's Messages JSON."""

from __future__ import annotations

import json
from typing import Any

import pytest

import usagetap

from .conftest import ask, delivered, make_client


def test_record_meters_a_converse_response_obtained_elsewhere(
    server: Any, sink: usagetap.sinks.Memory
) -> None:
    response = make_client(server).converse(modelId="amazon.nova-lite-v1:0", messages=ask("from elsewhere"))
    usagetap.record(response, provider="bedrock", request_model="amazon.nova-lite-v1:0", customer="org_9")
    [record] = delivered(sink)
    assert (record.provider, record.operation, record.model, record.customer) == (
        "bedrock",
        "converse",
        "amazon.nova-lite-v1:0",
        "org_9",
    )
    assert record.input_tokens == response["usage"]["inputTokens"] and record.cost is not None


def test_record_meters_an_invoke_model_response_from_its_count_headers(
    server: Any, sink: usagetap.sinks.Memory
) -> None:
    body = json.dumps({"prompt": "tell me", "max_tokens": 9})
    response = make_client(server).invoke_model(modelId="mistral.mistral-large-2402-v1:0", body=body)
    usagetap.record(response, provider="bedrock", request_model="mistral.mistral-large-2402-v1:0")
    [record] = delivered(sink)
    headers = response["ResponseMetadata"]["HTTPHeaders"]
    assert (record.input_tokens, record.output_tokens) == (
        int(headers["x-amzn-bedrock-input-token-count"]),
        int(headers["x-amzn-bedrock-output-token-count"]),
    )
    assert record.operation == "invoke_model"


def test_record_as_bedrock_takes_claude_json_and_converse_dicts_alike(sink: usagetap.sinks.Memory) -> None:
    """``AnthropicBedrock`` returns Messages JSON, boto3 a Converse dict: both are Bedrock's to record."""
    message = {
        "id": "msg_bdrk_01",
        "type": "message",
        "model": "claude-3-5-haiku-20241022",
        "usage": {"input_tokens": 4, "cache_read_input_tokens": 60, "output_tokens": 11},
    }
    converse = {"usage": {"inputTokens": 4, "outputTokens": 11, "cacheReadInputTokens": 60}}
    usagetap.record(message, provider="bedrock")
    usagetap.record(converse, provider="bedrock", request_model="anthropic.claude-3-5-haiku-20241022-v1:0")
    claude, boto = delivered(sink)
    assert [(r.provider, r.operation) for r in (claude, boto)] == [
        ("bedrock", "messages"),
        ("bedrock", "converse"),
    ]
    for record in (claude, boto):
        assert (record.input_tokens, record.cache_read_tokens, record.output_tokens) == (64, 60, 11)


def test_record_refuses_a_bedrock_dict_without_usage() -> None:
    with pytest.raises(TypeError, match="bedrock"):
        usagetap.record({"output": {}}, provider="bedrock")
