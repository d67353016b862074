"""Converse and ConverseStream through a real boto3 client, against the loopback Bedrock Runtime."""

from __future__ import annotations

import gc
from decimal import Decimal
from typing import Any

import pytest
from botocore.exceptions import ClientError, EventStreamError
from genai_prices import Usage, calc_price

import usagetap
from usagetap.testing import ProviderServer

from .conftest import REGION, ask, delivered, make_client, needs_cache_ttl

CLAUDE = "us.anthropic.claude-3-7-sonnet-20250219-v1:0"
NOVA = "amazon.nova-lite-v1:0"


def _price(record: usagetap.UsageRecord) -> Decimal:
    usage = Usage(
        input_tokens=record.input_tokens,
        output_tokens=record.output_tokens,
        cache_read_tokens=record.cache_read_tokens or None,
        cache_write_tokens=record.cache_write_tokens or None,
    )
    return Decimal(calc_price(usage, record.model, provider_id="aws").total_price)


def test_converse_is_one_exact_record_billed_to_the_client_customer(
    bedrock: Any, server: ProviderServer, sink: usagetap.sinks.Memory
) -> None:
    response = bedrock.converse(modelId=NOVA, messages=ask("how many tokens is this"))
    [record] = delivered(sink)
    issued = server.issued[response["ResponseMetadata"]["RequestId"]]
    assert (record.provider, record.operation, record.model, record.customer) == (
        "bedrock",
        "converse",
        NOVA,
        "org_1",
    )
    assert (record.input_tokens, record.output_tokens) == (issued.input_tokens, issued.output_tokens)
    assert record.response_id == response["ResponseMetadata"]["RequestId"]
    assert record.status == "ok" and record.cost == _price(record) > 0


def test_wrap_keeps_the_botocore_client_itself(server: ProviderServer) -> None:
    client = make_client(server)
    kind = type(client)
    assert usagetap.wrap(client) is client and type(client) is kind


def test_converse_response_reaches_the_caller_unchanged(
    bedrock: Any, new_client: Any, sink: usagetap.sinks.Memory
) -> None:
    metered = bedrock.converse(modelId=NOVA, messages=ask("same answer"))
    bare = new_client().converse(modelId=NOVA, messages=ask("same answer"))
    assert metered.keys() == bare.keys()
    assert (metered["output"], metered["usage"], metered["stopReason"]) == (
        bare["output"],
        bare["usage"],
        bare["stopReason"],
    )


def test_converse_input_includes_cache_writes_then_reads(
    bedrock: Any, server: ProviderServer, sink: usagetap.sinks.Memory
) -> None:
    messages = ask("a long shared prefix worth caching across calls", cache=True)
    first = bedrock.converse(modelId=CLAUDE, messages=messages)["usage"]
    second = bedrock.converse(modelId=CLAUDE, messages=messages)["usage"]
    written, read = delivered(sink)
    assert first["cacheWriteInputTokens"] > 0 and second["cacheReadInputTokens"] > 0
    assert (written.cache_write_tokens, written.cache_read_tokens) == (first["cacheWriteInputTokens"], 0)
    assert written.input_tokens == first["inputTokens"] + first["cacheWriteInputTokens"]
    assert (read.cache_read_tokens, read.cache_write_tokens) == (second["cacheReadInputTokens"], 0)
    assert read.input_tokens == second["inputTokens"] + second["cacheReadInputTokens"]
    assert read.cost == _price(read) and written.cost == _price(written)


def test_converse_stream_legacy_cache_count_fields_are_not_counted_twice(
    bedrock: Any, server: ProviderServer, sink: usagetap.sinks.Memory
) -> None:
    """The raw ``metadata`` event carries ``cacheWriteInputTokens`` and ``cacheWriteInputTokenCount``."""
    response = bedrock.converse_stream(modelId=CLAUDE, messages=ask("counted once please", cache=True))
    list(response["stream"])
    [record] = delivered(sink)
    issued = server.issued[response["ResponseMetadata"]["RequestId"]]
    assert record.cache_write_tokens == issued.cache_write_tokens > 0
    assert record.input_tokens == issued.input_tokens


@needs_cache_ttl
def test_converse_cache_details_split_writes_by_ttl(bedrock: Any, sink: usagetap.sinks.Memory) -> None:
    usage = bedrock.converse(modelId=CLAUDE, messages=ask("kept for an hour", cache=True, ttl="1h"))["usage"]
    [record] = delivered(sink)
    assert record.dimensions["cache_write_1h_tokens"] == usage["cacheWriteInputTokens"] > 0
    assert record.dimensions["cache_write_5m_tokens"] == 0


def test_converse_records_the_region_and_the_cross_region_profile(
    bedrock: Any, sink: usagetap.sinks.Memory
) -> None:
    bedrock.converse(modelId=CLAUDE, messages=ask("where am I"))
    bedrock.converse(modelId=NOVA, messages=ask("and now"))
    profiled, plain = delivered(sink)
    assert profiled.dimensions["aws_region"] == plain.dimensions["aws_region"] == REGION
    assert profiled.dimensions["inference_profile"] == "us"
    assert "inference_profile" not in plain.dimensions


def test_converse_error_reaches_the_caller_unchanged_and_bills_nothing(
    bedrock: Any, sink: usagetap.sinks.Memory
) -> None:
    with pytest.raises(ClientError) as raised:
        bedrock.converse(modelId=NOVA, messages=[])
    assert raised.value.response["Error"]["Code"] == "ValidationException"
    assert delivered(sink) == []


def test_other_operations_pass_through_unmetered(bedrock: Any, sink: usagetap.sinks.Memory) -> None:
    with pytest.raises(ClientError):
        bedrock.apply_guardrail(
            guardrailIdentifier="g", guardrailVersion="1", source="INPUT", content=[{"text": {"text": "x"}}]
        )
    assert delivered(sink) == []


# -- ConverseStream ----------------------------------------------------------------


def _stream(client: Any, model: str = CLAUDE, text: str = "stream me a reply") -> Any:
    return client.converse_stream(modelId=model, messages=ask(text))


def test_converse_stream_read_to_the_end_is_one_exact_record(
    bedrock: Any, server: ProviderServer, sink: usagetap.sinks.Memory
) -> None:
    response = _stream(bedrock)
    events = list(response["stream"])
    [record] = delivered(sink)
    issued = server.issued[response["ResponseMetadata"]["RequestId"]]
    assert events[-1]["metadata"]["usage"]["outputTokens"] == record.output_tokens == issued.output_tokens
    assert record.input_tokens == issued.input_tokens
    assert (record.status, record.operation, record.customer) == ("ok", "converse", "org_1")
    assert record.dimensions["inference_profile"] == "us" and record.cost is not None


def test_converse_stream_shows_the_caller_the_events_a_bare_client_shows(
    bedrock: Any, new_client: Any, sink: usagetap.sinks.Memory
) -> None:
    metered = list(_stream(bedrock)["stream"])
    bare = list(_stream(new_client())["stream"])
    assert metered == bare


@needs_cache_ttl
def test_converse_stream_cache_details_split_writes_by_ttl(bedrock: Any, sink: usagetap.sinks.Memory) -> None:
    """Read from the raw ``metadata`` event: whatever botocore's version parses."""
    messages = ask("kept for an hour in a stream", cache=True, ttl="1h")
    list(bedrock.converse_stream(modelId=CLAUDE, messages=messages)["stream"])
    [record] = delivered(sink)
    assert record.dimensions["cache_write_1h_tokens"] == record.cache_write_tokens > 0


def test_converse_stream_cached_usage_counts_reads_once(bedrock: Any, sink: usagetap.sinks.Memory) -> None:
    messages = ask("a cached stream prefix of several words", cache=True)
    list(bedrock.converse_stream(modelId=CLAUDE, messages=messages)["stream"])
    events = list(bedrock.converse_stream(modelId=CLAUDE, messages=messages)["stream"])
    usage = events[-1]["metadata"]["usage"]
    _, read = delivered(sink)
    assert read.cache_read_tokens == usage["cacheReadInputTokens"] > 0
    assert read.input_tokens == usage["inputTokens"] + usage["cacheReadInputTokens"]


def test_converse_stream_broken_off_by_an_error_event_is_partial(
    bedrock: Any, server: ProviderServer, sink: usagetap.sinks.Memory
) -> None:
    server.stream_error_after = 3
    seen = []
    stream = _stream(bedrock)["stream"]
    with pytest.raises(EventStreamError):
        for event in stream:
            seen.append(event)
    del stream  # the caller lets the failed stream go: its record is emitted then (or at exit)
    gc.collect()
    [record] = delivered(sink)
    assert len(seen) == 3 and record.status == "partial"
    assert record.model == CLAUDE and record.customer == "org_1"


def test_converse_stream_ended_before_metadata_is_partial(
    bedrock: Any, server: ProviderServer, sink: usagetap.sinks.Memory
) -> None:
    server.report_usage = False
    events = list(_stream(bedrock)["stream"])
    [record] = delivered(sink)
    assert "messageStop" in events[-1]
    assert (record.status, record.input_tokens, record.output_tokens) == ("partial", 0, 0)


def test_converse_stream_closed_unread_is_partial(bedrock: Any, sink: usagetap.sinks.Memory) -> None:
    _stream(bedrock)["stream"].close()
    [record] = delivered(sink)
    assert record.status == "partial" and record.operation == "converse"


def test_converse_stream_dropped_unread_is_partial(bedrock: Any, sink: usagetap.sinks.Memory) -> None:
    response = _stream(bedrock)
    del response
    gc.collect()
    [record] = delivered(sink)
    assert record.status == "partial"


def test_converse_stream_closed_at_message_stop_still_reads_its_usage(
    bedrock: Any, server: ProviderServer, sink: usagetap.sinks.Memory
) -> None:
    response = _stream(bedrock)
    stream = response["stream"]
    for event in stream:
        if "messageStop" in event:
            break
    stream.close()
    [record] = delivered(sink)
    issued = server.issued[response["ResponseMetadata"]["RequestId"]]
    assert record.status == "ok" and record.output_tokens == issued.output_tokens


def test_converse_stream_broken_off_mid_text_is_partial(bedrock: Any, sink: usagetap.sinks.Memory) -> None:
    stream = _stream(bedrock)["stream"]
    for event in stream:
        if "contentBlockDelta" in event:
            break
    stream.close()
    [record] = delivered(sink)
    assert record.status == "partial"


# -- instrument() --------------------------------------------------------------------


def test_instrument_meters_bedrock_clients_created_later(
    instrumented: None, new_client: Any, server: ProviderServer, sink: usagetap.sinks.Memory
) -> None:
    client = new_client()
    with usagetap.customer("org_later"):
        response = client.converse(modelId=NOVA, messages=ask("made after instrument"))
        list(client.converse_stream(modelId=NOVA, messages=ask("streamed too"))["stream"])
    plain, streamed = delivered(sink)
    assert plain.response_id == response["ResponseMetadata"]["RequestId"]
    assert {plain.customer, streamed.customer} == {"org_later"} and streamed.status == "ok"


def test_instrument_meters_bedrock_runtime_but_leaves_other_aws_services_alone(
    instrumented: None, new_client: Any, server: ProviderServer, sink: usagetap.sinks.Memory
) -> None:
    import boto3

    s3 = boto3.client(
        "s3", endpoint_url=server.url, region_name=REGION, aws_access_key_id="a", aws_secret_access_key="b"
    )
    with pytest.raises(ClientError) as raised:
        s3.list_buckets()
    new_client().converse(modelId=NOVA, messages=ask("metered"))
    assert raised.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404
    assert [r.operation for r in delivered(sink)] == ["converse"]


def test_a_client_both_wrapped_and_instrumented_is_metered_once(
    instrumented: None, bedrock: Any, sink: usagetap.sinks.Memory
) -> None:
    bedrock.converse(modelId=NOVA, messages=ask("only once"))
    [record] = delivered(sink)
    assert record.customer == "org_1"


def test_uninstrument_stops_metering_unwrapped_clients(new_client: Any, sink: usagetap.sinks.Memory) -> None:
    usagetap.instrument()
    usagetap.uninstrument()
    new_client().converse(modelId=NOVA, messages=ask("not metered"))
    assert delivered(sink) == []


# -- wrap() ---------------------------------------------------------------------------


def test_wrap_refuses_a_client_of_another_aws_service() -> None:
    import boto3

    s3 = boto3.client("s3", region_name=REGION, aws_access_key_id="a", aws_secret_access_key="b")
    with pytest.raises(TypeError, match="bedrock-runtime"):
        usagetap.wrap(s3)


def test_wrapping_again_with_another_customer_bills_each_its_own(
    bedrock: Any, sink: usagetap.sinks.Memory
) -> None:
    other = usagetap.wrap(bedrock, customer="org_2")
    other.converse(modelId=NOVA, messages=ask("for org 2"))
    bedrock.converse(modelId=NOVA, messages=ask("for org 1"))
    assert other is not bedrock and type(other) is type(bedrock)
    assert [r.customer for r in delivered(sink)] == ["org_2", "org_1"]


def test_a_customer_scope_wins_over_the_client_customer(bedrock: Any, sink: usagetap.sinks.Memory) -> None:
    with usagetap.customer("org_scope", feature="chat"):
        bedrock.converse(modelId=NOVA, messages=ask("scoped"))
    [record] = delivered(sink)
    assert (record.customer, record.dimensions["feature"]) == ("org_scope", "chat")


@pytest.mark.internal_error("result")
def test_a_billed_response_usagetap_cannot_read_is_still_recorded_partial(
    bedrock: Any, sink: usagetap.sinks.Memory
) -> None:
    """A user's botocore hook takes the stream out of the response: the call is billed all the same."""
    bedrock.meta.events.register(
        "after-call.bedrock-runtime.ConverseStream", lambda parsed, **_: parsed.pop("stream")
    )
    response = _stream(bedrock)
    [record] = delivered(sink)
    assert "stream" not in response and record.status == "partial"
    assert "could not read" in str(record.dimensions["usage_issue"])
