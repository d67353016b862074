"""InvokeModel and InvokeModelWithResponseStream through a real boto3 client, per model family."""

from __future__ import annotations

import gc
import json
from typing import Any

import pytest
from botocore.exceptions import EventStreamError

import usagetap
from usagetap.testing import ProviderServer

from .conftest import delivered

# one request body per family, in the family's own InvokeModel format
BODIES: dict[str, tuple[str, dict[str, Any]]] = {
    "anthropic": (
        "us.anthropic.claude-3-5-haiku-20241022-v1:0",
        {
            "anthropic_version": "bedrock-2023-05-31",
            "max_tokens": 12,
            "messages": [{"role": "user", "content": "name three rivers"}],
        },
    ),
    "nova": (
        "amazon.nova-lite-v1:0",
        {
            "schemaVersion": "messages-v1",
            "messages": [{"role": "user", "content": [{"text": "name three rivers"}]}],
            "inferenceConfig": {"maxTokens": 12},
        },
    ),
    "titan": (
        "amazon.titan-text-express-v1",
        {"inputText": "name three rivers", "textGenerationConfig": {"maxTokenCount": 12}},
    ),
    "llama": ("meta.llama3-70b-instruct-v1:0", {"prompt": "name three rivers", "max_gen_len": 12}),
    "mistral": (
        "mistral.mistral-large-2402-v1:0",
        {"prompt": "<s>[INST] name three rivers [/INST]", "max_tokens": 12},
    ),
    "cohere": ("cohere.command-r-v1:0", {"message": "name three rivers", "max_tokens": 12}),
}
PRICED = {"anthropic", "nova", "titan", "llama", "mistral"}  # genai-prices has no Cohere on Bedrock


def _invoke(client: Any, family: str) -> Any:
    model, body = BODIES[family]
    return client.invoke_model(modelId=model, body=json.dumps(body))


def _invoke_stream(client: Any, family: str) -> Any:
    model, body = BODIES[family]
    return client.invoke_model_with_response_stream(modelId=model, body=json.dumps(body))


@pytest.mark.parametrize("family", list(BODIES))
def test_invoke_model_of_each_family_is_one_exact_record(
    family: str, bedrock: Any, server: ProviderServer, sink: usagetap.sinks.Memory
) -> None:
    response = _invoke(bedrock, family)
    reply = json.loads(response["body"].read())
    [record] = delivered(sink)
    issued = server.issued[response["ResponseMetadata"]["RequestId"]]
    assert (record.input_tokens, record.output_tokens) == (issued.input_tokens, issued.output_tokens)
    assert (record.provider, record.operation, record.model) == ("bedrock", "invoke_model", BODIES[family][0])
    assert record.status == "ok" and record.customer == "org_1" and reply
    assert (record.cost is not None) == (family in PRICED)


@pytest.mark.parametrize("family", ["mistral", "cohere"])
def test_invoke_model_bills_from_the_count_headers_when_the_body_has_no_counts(
    family: str, bedrock: Any, server: ProviderServer, sink: usagetap.sinks.Memory
) -> None:
    response = _invoke(bedrock, family)
    headers = response["ResponseMetadata"]["HTTPHeaders"]
    assert "usage" not in json.loads(response["body"].read())
    [record] = delivered(sink)
    assert record.input_tokens == int(headers["x-amzn-bedrock-input-token-count"]) > 0
    assert record.output_tokens == int(headers["x-amzn-bedrock-output-token-count"]) > 0


def test_invoke_model_is_metered_even_when_the_body_is_never_read(
    bedrock: Any, server: ProviderServer, sink: usagetap.sinks.Memory
) -> None:
    _invoke(bedrock, "llama")
    [record] = delivered(sink)
    assert record.status == "ok" and record.output_tokens == 12


def test_invoke_model_body_reaches_the_caller_unchanged(
    bedrock: Any, new_client: Any, sink: usagetap.sinks.Memory
) -> None:
    metered = json.loads(_invoke(bedrock, "titan")["body"].read())
    bare = json.loads(_invoke(new_client(), "titan")["body"].read())
    assert metered == bare


def test_invoke_model_claude_cache_headers_count_in_the_input(
    bedrock: Any, server: ProviderServer, sink: usagetap.sinks.Memory
) -> None:
    model, body = BODIES["anthropic"]
    cached = {
        **body,
        "system": [
            {"type": "text", "text": "a long system prompt " * 30, "cache_control": {"type": "ephemeral"}}
        ],
    }
    bedrock.invoke_model(modelId=model, body=json.dumps(cached))
    response = bedrock.invoke_model(modelId=model, body=json.dumps(cached))
    headers = response["ResponseMetadata"]["HTTPHeaders"]
    _, read = delivered(sink)
    assert read.cache_read_tokens == int(headers["x-amzn-bedrock-cache-read-input-token-count"]) > 0
    assert read.input_tokens == int(headers["x-amzn-bedrock-input-token-count"]) + read.cache_read_tokens


# -- without the count headers: the body per family ---------------------------------------


@pytest.fixture
def no_count_headers(server: ProviderServer) -> None:
    server.state["bedrock_count_headers"] = False


@pytest.mark.parametrize("family", ["anthropic", "nova", "titan", "llama"])
def test_without_count_headers_the_body_counts_are_billed(
    family: str, no_count_headers: None, bedrock: Any, server: ProviderServer, sink: usagetap.sinks.Memory
) -> None:
    response = _invoke(bedrock, family)
    assert "x-amzn-bedrock-input-token-count" not in response["ResponseMetadata"]["HTTPHeaders"]
    json.loads(response["body"].read())
    [record] = delivered(sink)
    issued = server.issued[response["ResponseMetadata"]["RequestId"]]
    assert (record.input_tokens, record.output_tokens, record.status) == (
        issued.input_tokens,
        issued.output_tokens,
        "ok",
    )


def test_without_count_headers_a_body_read_in_chunks_is_billed(
    no_count_headers: None, bedrock: Any, server: ProviderServer, sink: usagetap.sinks.Memory
) -> None:
    response = _invoke(bedrock, "llama")
    data = b"".join(response["body"].iter_chunks(chunk_size=7))
    [record] = delivered(sink)
    assert record.output_tokens == json.loads(data)["generation_token_count"] and record.status == "ok"


@pytest.mark.parametrize("family", ["mistral", "cohere"])
def test_without_count_headers_a_body_without_counts_is_partial(
    family: str, no_count_headers: None, bedrock: Any, sink: usagetap.sinks.Memory
) -> None:
    json.loads(_invoke(bedrock, family)["body"].read())
    [record] = delivered(sink)
    assert record.status == "partial" and "no token counts" in str(record.dimensions["usage_issue"])


def test_without_count_headers_a_body_closed_unread_is_partial(
    no_count_headers: None, bedrock: Any, sink: usagetap.sinks.Memory
) -> None:
    _invoke(bedrock, "llama")["body"].close()
    [record] = delivered(sink)
    assert record.status == "partial" and record.model == BODIES["llama"][0]


def test_without_count_headers_a_body_dropped_unread_is_partial(
    no_count_headers: None, bedrock: Any, sink: usagetap.sinks.Memory
) -> None:
    response = _invoke(bedrock, "llama")
    del response
    gc.collect()
    [record] = delivered(sink)
    assert record.status == "partial"


# -- InvokeModelWithResponseStream --------------------------------------------------------


def _chunks(response: Any) -> list[Any]:
    return [json.loads(event["chunk"]["bytes"]) for event in response["body"]]


@pytest.mark.parametrize("family", list(BODIES))
def test_invoke_stream_of_each_family_read_to_the_end_is_exact(
    family: str, bedrock: Any, server: ProviderServer, sink: usagetap.sinks.Memory
) -> None:
    response = _invoke_stream(bedrock, family)
    chunks = _chunks(response)
    [record] = delivered(sink)
    issued = server.issued[response["ResponseMetadata"]["RequestId"]]
    metrics = chunks[-1]["amazon-bedrock-invocationMetrics"]
    assert (record.input_tokens, record.output_tokens) == (issued.input_tokens, issued.output_tokens)
    assert record.output_tokens == metrics["outputTokenCount"]
    assert (record.status, record.operation) == ("ok", "invoke_model")


def test_invoke_stream_shows_the_caller_the_chunks_a_bare_client_shows(
    bedrock: Any, new_client: Any, sink: usagetap.sinks.Memory
) -> None:
    metered = [json.loads(e["chunk"]["bytes"]) for e in _invoke_stream(bedrock, "llama")["body"]]
    bare = [json.loads(e["chunk"]["bytes"]) for e in _invoke_stream(new_client(), "llama")["body"]]
    assert metered == bare


def test_invoke_stream_broken_off_by_an_error_event_is_partial(
    bedrock: Any, server: ProviderServer, sink: usagetap.sinks.Memory
) -> None:
    server.stream_error_after = 2
    response = _invoke_stream(bedrock, "nova")
    with pytest.raises(EventStreamError):
        _chunks(response)
    del response  # the caller lets the failed stream go: its record is emitted then (or at exit)
    gc.collect()
    [record] = delivered(sink)
    assert record.status == "partial" and record.model == BODIES["nova"][0]


def test_invoke_stream_ended_before_its_metrics_is_partial(
    bedrock: Any, server: ProviderServer, sink: usagetap.sinks.Memory
) -> None:
    server.report_usage = False
    chunks = _chunks(_invoke_stream(bedrock, "mistral"))
    [record] = delivered(sink)
    assert chunks and record.status == "partial"


def test_invoke_stream_closed_unread_is_partial(bedrock: Any, sink: usagetap.sinks.Memory) -> None:
    _invoke_stream(bedrock, "titan")["body"].close()
    [record] = delivered(sink)
    assert record.status == "partial"
