"""Claude on Bedrock and Vertex through the SDK's own clients, against the loopback provider.

Bedrock is driven with an API key (Bearer auth, no AWS credentials); its streams
use the AWS event-stream framing, decoded by botocore as in production. Vertex
is driven with an access token (no google-auth); its streams are SSE.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterator
from typing import Any

import anthropic
import pytest
from anthropic import AnthropicBedrock, AnthropicVertex, AsyncAnthropicBedrock, AsyncAnthropicVertex

import usagetap
from tests.instrument.conftest import delivered
from usagetap.sinks import Memory
from usagetap.testing import ProviderServer

BEDROCK_MODEL = "anthropic.claude-sonnet-4-6-v1:0"
VERTEX_MODEL = "claude-sonnet-4-6@20250929"
MESSAGES = [{"role": "user", "content": "Which cloud am I on?"}]
HAS_BEDROCK_API_KEY = "api_key" in inspect.signature(AnthropicBedrock.__init__).parameters


@pytest.fixture
def platform_server() -> Iterator[ProviderServer]:
    with ProviderServer(impersonate=None) as server:
        yield server


def bedrock(server: ProviderServer, cls: Any = AnthropicBedrock) -> Any:
    if HAS_BEDROCK_API_KEY:
        credentials = {"api_key": "bedrock-key"}
    else:  # SigV4-signed by botocore
        pytest.importorskip("boto3", reason="this anthropic version signs Bedrock requests with boto3")
        credentials = {"aws_access_key": "AKIDTESTKEY", "aws_secret_key": "test-secret"}
    return usagetap.wrap(cls(**credentials, aws_region="us-east-1", base_url=server.url, max_retries=0))


def vertex(server: ProviderServer, cls: Any = AnthropicVertex) -> Any:
    return usagetap.wrap(
        cls(
            region="us-east5",
            project_id="billing-prj",
            access_token="ya29.test",
            base_url=server.vertex_url,
            max_retries=0,
        )
    )


CLIENTS = {
    "bedrock": (bedrock, AnthropicBedrock, AsyncAnthropicBedrock, BEDROCK_MODEL),
    "vertex": (vertex, AnthropicVertex, AsyncAnthropicVertex, VERTEX_MODEL),
}


def _needs_botocore(provider: str, stream: bool) -> None:
    if provider == "bedrock" and stream:
        pytest.importorskip("botocore", reason="Bedrock streams are decoded by botocore")


def assert_matches_issued(record: usagetap.UsageRecord, server: ProviderServer) -> None:
    issued = server.issued[record.response_id]  # type: ignore[index]
    assert (record.input_tokens, record.output_tokens) == (issued.input_tokens, issued.output_tokens)
    assert (record.cache_read_tokens, record.cache_write_tokens) == (
        issued.cache_read_tokens,
        issued.cache_write_tokens,
    )


@pytest.mark.parametrize("provider", list(CLIENTS))
def test_create_stream_and_helper(provider: str, platform_server: ProviderServer, sink: Memory) -> None:
    _needs_botocore(provider, stream=True)
    make, cls, _, model = CLIENTS[provider]
    client = make(platform_server, cls)
    assert type(client) is cls
    with usagetap.customer(f"org_{provider}"):
        message = client.messages.create(model=model, max_tokens=20, messages=MESSAGES)
        kinds = [
            e.type for e in client.messages.create(model=model, max_tokens=20, messages=MESSAGES, stream=True)
        ]
        with client.messages.stream(model=model, max_tokens=20, messages=MESSAGES) as stream:
            text = stream.get_final_text()
    assert kinds[0] == "message_start" and kinds[-1] == "message_stop"
    assert len(text.split()) == 20
    records = delivered(sink)
    assert len(records) == 3
    assert records[0].response_id == message.id
    for record in records:
        assert (record.provider, record.customer, record.status) == (provider, f"org_{provider}", "ok")
        assert (record.model, record.request_model, record.operation) == (model, model, "messages")
        assert record.cost is not None and record.cost > 0
        assert_matches_issued(record, platform_server)
    paths = [r["path"] for r in platform_server.requests]
    if provider == "bedrock":
        assert paths[0].endswith("/invoke") and paths[1].endswith("/invoke-with-response-stream")
    else:
        assert paths[0].endswith(":rawPredict") and paths[1].endswith(":streamRawPredict")


@pytest.mark.parametrize("provider", list(CLIENTS))
def test_a_raw_stream_read_without_parse_is_metered(
    provider: str, platform_server: ProviderServer, sink: Memory
) -> None:
    _needs_botocore(provider, stream=True)
    make, cls, _, model = CLIENTS[provider]
    raw = make(platform_server, cls).messages.with_raw_response.create(
        model=model, max_tokens=20, messages=MESSAGES, stream=True
    )
    assert raw.http_response.read()
    [record] = delivered(sink)
    assert (record.provider, record.status, record.output_tokens) == (provider, "ok", 20)
    assert_matches_issued(record, platform_server)


@pytest.mark.parametrize("provider", list(CLIENTS))
def test_prompt_caching(provider: str, platform_server: ProviderServer, sink: Memory) -> None:
    make, cls, _, model = CLIENTS[provider]
    client = make(platform_server, cls)
    system = [{"type": "text", "text": "policy " * 300, "cache_control": {"type": "ephemeral"}}]
    for _ in range(2):
        client.messages.create(model=model, max_tokens=5, messages=MESSAGES, system=system)
    write, read = delivered(sink)
    assert write.cache_write_tokens == read.cache_read_tokens == 300
    for record in (write, read):
        assert_matches_issued(record, platform_server)


@pytest.mark.parametrize("provider", list(CLIENTS))
def test_error_mid_stream_is_partial(provider: str, platform_server: ProviderServer, sink: Memory) -> None:
    _needs_botocore(provider, stream=True)
    make, cls, _, model = CLIENTS[provider]
    client = make(platform_server, cls)
    platform_server.stream_error_after = 3
    # the SDK's own error: APIStatusError, or ValueError from the Bedrock decoder of anthropic 0.x
    with pytest.raises((anthropic.APIStatusError, ValueError), match="injected mid-stream failure"):
        for _ in client.messages.create(model=model, max_tokens=20, messages=MESSAGES, stream=True):
            pass
    [record] = delivered(sink)
    assert (record.provider, record.status) == (provider, "partial")
    assert record.input_tokens == platform_server.issued[record.response_id].input_tokens  # type: ignore[index]


def test_vertex_count_tokens_is_not_billed(platform_server: ProviderServer, sink: Memory) -> None:
    client = vertex(platform_server)
    if not hasattr(client.messages, "count_tokens"):
        pytest.skip("messages.count_tokens() is not in this anthropic version")
    assert client.messages.count_tokens(model=VERTEX_MODEL, messages=MESSAGES).input_tokens > 0
    assert platform_server.requests[-1]["path"].endswith("/count-tokens:rawPredict")
    assert delivered(sink) == []


def test_unsupported_platform_calls_fail_as_the_sdk_says_with_no_record(
    platform_server: ProviderServer, sink: Memory
) -> None:
    client = bedrock(platform_server)
    if not hasattr(client.messages, "batches"):
        pytest.skip("Message Batches are not in this anthropic version's Messages API")
    with pytest.raises(anthropic.AnthropicError, match="not supported"):
        client.messages.batches.create(requests=[])
    assert delivered(sink) == []


@pytest.mark.parametrize("provider", list(CLIENTS))
async def test_async_clients(provider: str, platform_server: ProviderServer, sink: Memory) -> None:
    _needs_botocore(provider, stream=True)
    make, _, acls, model = CLIENTS[provider]
    client = make(platform_server, acls)
    assert type(client) is acls
    with usagetap.customer("org_async"):
        await client.messages.create(model=model, max_tokens=12, messages=MESSAGES)
        stream = await client.messages.create(model=model, max_tokens=12, messages=MESSAGES, stream=True)
        async for _ in stream:
            pass
        async with client.messages.stream(model=model, max_tokens=12, messages=MESSAGES) as helper:
            await helper.until_done()
    records = delivered(sink)
    assert [(r.provider, r.customer, r.status) for r in records] == [(provider, "org_async", "ok")] * 3
    for record in records:
        assert_matches_issued(record, platform_server)


def test_instrument_meters_platform_clients(platform_server: ProviderServer, sink: Memory) -> None:
    from usagetap.instrument import instrument, uninstrument

    instrument()
    try:
        plain = AnthropicVertex(
            region="us-east5", project_id="p", access_token="t", base_url=platform_server.vertex_url
        )
        plain.messages.create(model=VERTEX_MODEL, max_tokens=4, messages=MESSAGES)  # type: ignore[arg-type]
    finally:
        uninstrument()
    [record] = delivered(sink)
    assert record.provider == "vertex"
