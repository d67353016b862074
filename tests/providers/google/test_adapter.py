"""google-genai metered through the real SDK against the loopback server (Gemini REST and SSE)."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Callable
from decimal import Decimal
from typing import Any, Optional

import pytest
from genai_prices import Usage, calc_price
from google.genai import errors, types

import usagetap
from tests.instrument.conftest import delivered
from usagetap.instrument import instrument, uninstrument
from usagetap.sinks import Memory
from usagetap.testing import ProviderServer

MODEL = "gemini-2.5-flash"
THINKING = types.GenerateContentConfig(
    thinking_config=types.ThinkingConfig(include_thoughts=True),
    tools=[types.Tool(google_search=types.GoogleSearch())],
)


def _issued_of(server: ProviderServer, response_id: Any) -> tuple[int, int, int, int]:
    issued = server.issued[response_id]
    return (issued.input_tokens, issued.output_tokens, issued.cache_read_tokens, issued.reasoning_tokens)


def _tokens(record: usagetap.UsageRecord) -> tuple[int, int, int, int]:
    return (record.input_tokens, record.output_tokens, record.cache_read_tokens, record.reasoning_tokens)


def _last_id(server: ProviderServer) -> str:
    return list(server.issued)[-1]


def _issued(server: ProviderServer) -> tuple[int, int, int, int]:
    """What the server reported for its last response (older SDKs leave ``response_id`` out of theirs)."""
    issued = server.issued[_last_id(server)]
    return (issued.input_tokens, issued.output_tokens, issued.cache_read_tokens, issued.reasoning_tokens)


def test_generate_content_is_one_record_with_the_servers_tokens_and_genai_prices_cost(
    gemini: Callable[..., Any], gemini_server: ProviderServer, sink: Memory
) -> None:
    client = usagetap.wrap(gemini())
    with usagetap.customer("org_g"):
        client.models.generate_content(model=MODEL, contents="three words here")
    [record] = delivered(sink)
    assert (record.provider, record.operation, record.model, record.customer, record.status) == (
        "google",
        "generate_content",
        MODEL,
        "org_g",
        "ok",
    )
    assert _tokens(record) == _issued(gemini_server) == (3, 12, 0, 0)
    expected = calc_price(Usage(input_tokens=3, output_tokens=12), MODEL, provider_id="google").total_price
    assert record.cost == Decimal(expected)
    assert record.response_id == _last_id(gemini_server)


def test_thoughts_and_tool_use_are_billed_on_top_of_prompt_and_candidates(
    gemini: Callable[..., Any], gemini_server: ProviderServer, sink: Memory
) -> None:
    client = usagetap.wrap(gemini())
    response = client.models.generate_content(model=MODEL, contents="two words", config=THINKING)
    [record] = delivered(sink)
    assert _tokens(record) == _issued(gemini_server) == (2 + 5, 12 + 16, 0, 16)
    assert record.input_tokens + record.output_tokens == response.usage_metadata.total_token_count


def test_cached_content_tokens_are_the_cache_read_within_input(
    gemini: Callable[..., Any], gemini_server: ProviderServer, sink: Memory
) -> None:
    client = usagetap.wrap(gemini())
    config = types.GenerateContentConfig(cached_content="cachedContents/fixture-1")
    client.models.generate_content(model=MODEL, contents="one", config=config)
    [record] = delivered(sink)
    assert _tokens(record) == _issued(gemini_server) == (33, 12, 32, 0)


async def test_async_generate_content_is_metered(
    gemini: Callable[..., Any], gemini_server: ProviderServer, sink: Memory
) -> None:
    client = usagetap.wrap(gemini())
    await client.aio.models.generate_content(model="gemini-2.5-pro", contents="a b c d")
    [record] = delivered(sink)
    assert (record.model, record.status) == ("gemini-2.5-pro", "ok")
    assert _tokens(record) == _issued(gemini_server)


def test_a_stream_read_to_the_end_is_one_exact_record_and_the_caller_sees_every_chunk(
    gemini: Callable[..., Any], gemini_server: ProviderServer, sink: Memory
) -> None:
    plain = gemini()
    bare = [
        c.model_dump()
        for c in plain.models.generate_content_stream(model=MODEL, contents="x", config=THINKING)
    ]
    client = usagetap.wrap(gemini())
    chunks = list(client.models.generate_content_stream(model=MODEL, contents="x", config=THINKING))
    [record] = delivered(sink)
    seen = [c.model_dump() for c in chunks]
    assert [c["usage_metadata"] for c in seen] == [c["usage_metadata"] for c in bare]
    assert len(chunks) == 3
    assert (record.status, record.response_id) == ("ok", _last_id(gemini_server))
    assert _tokens(record) == _issued(gemini_server) == (1 + 5, 12 + 16, 0, 16)


def test_a_stream_broken_off_is_a_partial_record_of_the_totals_so_far(
    gemini: Callable[..., Any], gemini_server: ProviderServer, sink: Memory
) -> None:
    client = usagetap.wrap(gemini())
    stream = client.models.generate_content_stream(model=MODEL, contents="x", config=THINKING)
    next(stream)
    del stream  # broken off after its first chunk
    [record] = delivered(sink)
    assert record.status == "partial"
    assert (record.response_id, record.input_tokens, record.reasoning_tokens) == (
        _last_id(gemini_server),
        1,
        16,
    )


def _read(stream: Any) -> tuple[int, Optional[type]]:
    """How many chunks a caller reads from ``stream``, and the exception it ends with."""
    seen = 0
    try:
        for _ in stream:
            seen += 1
    except errors.APIError as exc:
        return seen, type(exc)
    return seen, None


def test_a_stream_ending_in_an_error_event_is_partial_and_the_caller_sees_what_a_bare_client_sees(
    gemini: Callable[..., Any], gemini_server: ProviderServer, sink: Memory
) -> None:
    gemini_server.stream_error_after = 1
    plain = gemini()
    bare = _read(plain.models.generate_content_stream(model=MODEL, contents="x"))
    client = usagetap.wrap(gemini())
    assert _read(client.models.generate_content_stream(model=MODEL, contents="x")) == bare
    [record] = delivered(sink)
    assert bare[0] >= 1 and record.status == "partial"


async def test_an_async_stream_read_to_the_end_is_one_exact_record(
    gemini: Callable[..., Any], gemini_server: ProviderServer, sink: Memory
) -> None:
    client = usagetap.wrap(gemini())
    stream = await client.aio.models.generate_content_stream(model=MODEL, contents="p q", config=THINKING)
    chunks = [chunk async for chunk in stream]
    [record] = delivered(sink)
    assert len(chunks) == 3 and record.status == "ok"
    assert _tokens(record) == _issued(gemini_server)


async def test_an_async_stream_broken_off_is_partial(gemini: Callable[..., Any], sink: Memory) -> None:
    client = usagetap.wrap(gemini())
    stream = await client.aio.models.generate_content_stream(model=MODEL, contents="p q")
    async for _ in stream:
        break
    await stream.aclose()
    del stream
    for _ in range(10):  # the SDK's inner generators are closed by the event loop, one turn each
        gc.collect()
        await asyncio.sleep(0)
    [record] = delivered(sink)
    assert (record.status, record.input_tokens) == ("partial", 2)


async def test_an_async_stream_whose_response_is_in_but_dropped_unread_is_billed_as_partial(
    gemini: Callable[..., Any], sink: Memory
) -> None:
    client = usagetap.wrap(gemini())
    api = client.aio._api_client  # where the response is in once awaited (so the call is billed), read or not
    body = {"contents": [{"role": "user", "parts": [{"text": "p q"}]}]}
    stream = await api.async_request_streamed("post", f"models/{MODEL}:streamGenerateContent?alt=sse", body)
    del stream
    gc.collect()
    [record] = delivered(sink)
    assert (record.status, record.operation, record.model) == ("partial", "generate_content", MODEL)


def test_each_chat_turn_is_one_record(gemini: Callable[..., Any], sink: Memory) -> None:
    client = usagetap.wrap(gemini())
    chat = client.chats.create(model=MODEL)
    with usagetap.customer("org_chat"):
        chat.send_message("hello")
        list(chat.send_message_stream("and again"))
    records = delivered(sink)
    assert [(r.customer, r.status) for r in records] == [("org_chat", "ok"), ("org_chat", "ok")]
    assert records[1].input_tokens > records[0].input_tokens  # the history is sent again


async def test_an_async_chat_turn_is_one_record(gemini: Callable[..., Any], sink: Memory) -> None:
    client = usagetap.wrap(gemini())
    chat = client.aio.chats.create(model=MODEL)
    await chat.send_message("hello there")
    [record] = delivered(sink)
    assert (record.operation, record.input_tokens, record.status) == ("generate_content", 2, "ok")


def test_gemini_api_embeddings_are_one_partial_record_as_it_reports_no_usage(
    gemini: Callable[..., Any], sink: Memory
) -> None:
    client = usagetap.wrap(gemini())
    result = client.models.embed_content(model="gemini-embedding-001", contents=["a b", "c d e"])
    [record] = delivered(sink)
    assert len(result.embeddings) == 2
    assert (record.operation, record.model, record.status, record.input_tokens) == (
        "embeddings",
        "gemini-embedding-001",
        "partial",
        0,
    )
    assert record.dimensions["usage_issue"] == "the embeddings response reports no token counts"


def test_a_vertex_client_records_say_vertex(
    vertex: Callable[[], Any], gemini_server: ProviderServer, sink: Memory
) -> None:
    client = usagetap.wrap(vertex())
    client.models.generate_content(model=MODEL, contents="from vertex")
    [record] = delivered(sink)
    assert (record.provider, record.status) == ("vertex", "ok")
    assert _tokens(record) == _issued(gemini_server)
    assert record.dimensions["traffic_type"] == "ON_DEMAND" and record.cost is not None


def test_vertex_predict_embeddings_are_exact(vertex: Callable[[], Any], sink: Memory) -> None:
    client = usagetap.wrap(vertex())
    client.models.embed_content(model="text-embedding-005", contents=["one two", "three"])
    [record] = delivered(sink)
    assert (record.provider, record.operation, record.input_tokens, record.status) == (
        "vertex",
        "embeddings",
        3,
        "ok",
    )


def test_provisioned_throughput_is_recorded_as_prepaid_without_a_per_token_cost(
    vertex: Callable[[], Any], gemini_server: ProviderServer, sink: Memory
) -> None:
    gemini_server.state["google.traffic_type"] = "PROVISIONED_THROUGHPUT"
    client = usagetap.wrap(vertex())
    client.models.generate_content(model=MODEL, contents="reserved")
    [record] = delivered(sink)
    assert record.dimensions["prepaid"] is True and record.cost is None
    assert record.input_tokens == 1 and record.status == "ok"


@pytest.mark.skipif(
    "service_tier" not in types.GenerateContentConfig.model_fields,
    reason="this google-genai cannot ask for a service tier (GenerateContentConfig.service_tier)",
)
def test_a_gemini_api_flex_call_is_priced_at_half_the_standard_rates(
    gemini: Callable[..., Any], sink: Memory
) -> None:
    client = usagetap.wrap(gemini())
    client.models.generate_content(
        model=MODEL, contents="flex please", config=types.GenerateContentConfig(service_tier="flex")
    )
    [record] = delivered(sink)
    assert record.dimensions["service_tier"] == "flex" and record.reasoning_tokens == 0
    # Gemini 2.5 Flash $0.30 in / $2.50 out; the Flex tier 50 %: $0.15 / $1.25
    expected = (record.input_tokens * Decimal("0.15") + record.output_tokens * Decimal("1.25")) / 1_000_000
    assert record.cost == expected and record.cost > 0
    assert record.price_source is not None and record.price_source.endswith(" + overlay:google-flex-50pct")


def test_a_vertex_flex_paygo_response_is_priced_at_half_the_standard_rates(
    vertex: Callable[[], Any], gemini_server: ProviderServer, sink: Memory
) -> None:
    gemini_server.state["google.traffic_type"] = "ON_DEMAND_FLEX"
    client = usagetap.wrap(vertex())
    client.models.generate_content(model=MODEL, contents="flex please")
    [record] = delivered(sink)
    assert record.dimensions["service_tier"] == "flex" and record.reasoning_tokens == 0
    # Gemini 2.5 Flash $0.30 in / $2.50 out; Vertex Flex PayGo 50 %: $0.15 / $1.25
    expected = (record.input_tokens * Decimal("0.15") + record.output_tokens * Decimal("1.25")) / 1_000_000
    assert record.cost == expected and record.cost > 0
    assert record.price_source is not None and record.price_source.endswith(" + overlay:google-flex-50pct")


def test_wrapping_a_client_meters_its_aio_client_too(gemini: Callable[..., Any], sink: Memory) -> None:
    client = gemini()
    usagetap.wrap(client, customer="org_both")
    asyncio.run(client.aio.models.generate_content(model=MODEL, contents="async"))
    [record] = delivered(sink)
    assert record.customer == "org_both"


def test_wrapping_a_wrapped_client_with_another_customer_bills_a_copy(
    gemini: Callable[..., Any], sink: Memory
) -> None:
    shared = gemini()
    org_a = usagetap.wrap(shared, customer="org_a")
    org_b = usagetap.wrap(shared, customer="org_b")
    assert org_a is shared and org_b is not shared
    org_b.models.generate_content(model=MODEL, contents="b")
    org_a.models.generate_content(model=MODEL, contents="a")
    assert [r.customer for r in delivered(sink)] == ["org_b", "org_a"]


def test_wrap_refuses_what_is_not_a_client(gemini: Callable[..., Any]) -> None:
    client = gemini()
    with pytest.raises(TypeError, match=r"needs a google\.genai Client or AsyncClient, got Models"):
        usagetap.wrap(client.models)


def test_an_api_error_reaches_the_caller_unchanged(
    gemini: Callable[..., Any], gemini_server: ProviderServer, sink: Memory
) -> None:
    gemini_server.fail_next(
        400, body={"error": {"code": 400, "message": "bad", "status": "INVALID_ARGUMENT"}}
    )
    client = usagetap.wrap(gemini())
    with pytest.raises(errors.ClientError) as raised:
        client.models.generate_content(model=MODEL, contents="x")
    assert raised.value.code == 400
    client.models.generate_content(model=MODEL, contents="x")
    assert len(delivered(sink)) == 1


def test_instrument_meters_clients_created_later_and_uninstrument_stops(
    gemini: Callable[..., Any], sink: Memory
) -> None:
    assert "google" in instrument()
    try:
        later = gemini()
        later.models.generate_content(model=MODEL, contents="instrumented")
        wrapped = usagetap.wrap(gemini(), customer="org_w")
        wrapped.models.generate_content(model=MODEL, contents="once")
    finally:
        uninstrument()
    later.models.generate_content(model=MODEL, contents="not metered")
    assert [r.customer for r in delivered(sink)] == [None, "org_w"]


async def test_instrument_meters_async_streams(
    gemini: Callable[..., Any], gemini_server: ProviderServer, sink: Memory
) -> None:
    instrument()
    try:
        client = gemini()
        stream = await client.aio.models.generate_content_stream(model=MODEL, contents="s t")
        chunks = [chunk async for chunk in stream]
    finally:
        uninstrument()
    [record] = delivered(sink)
    assert len(chunks) == 3
    assert (record.status, record.response_id) == ("ok", _last_id(gemini_server))


def test_record_meters_a_response_obtained_elsewhere(
    gemini: Callable[..., Any], gemini_server: ProviderServer, sink: Memory
) -> None:
    client = gemini()
    response = client.models.generate_content(model=MODEL, contents="elsewhere", config=THINKING)
    event_id = usagetap.record(response, customer="org_else")
    [record] = delivered(sink)
    assert (record.event_id, record.provider, record.operation) == (event_id, "google", "generate_content")
    assert _tokens(record) == _issued(gemini_server)


def test_record_with_provider_vertex_meters_gemini_json_not_as_anthropic(sink: Memory) -> None:
    body = {
        "candidates": [{"finishReason": "STOP"}],
        "responseId": "vertex-json-1",
        "modelVersion": MODEL,
        "usageMetadata": {"promptTokenCount": 4, "candidatesTokenCount": 6, "totalTokenCount": 10},
    }
    usagetap.record(body, provider="vertex")
    [record] = delivered(sink)
    assert (record.provider, record.operation, record.input_tokens, record.output_tokens) == (
        "vertex",
        "generate_content",
        4,
        6,
    )


def test_customer_policy_require_refuses_before_the_provider_is_called(
    gemini: Callable[..., Any], gemini_server: ProviderServer, sink: Memory
) -> None:
    usagetap.configure(sink=sink, customer_policy="require")
    client = usagetap.wrap(gemini())
    with pytest.raises(usagetap.MissingCustomer, match="generate_content call to google"):
        client.models.generate_content(model=MODEL, contents="x")
    with pytest.raises(usagetap.MissingCustomer):
        list(client.models.generate_content_stream(model=MODEL, contents="x"))
    assert gemini_server.requests == []


async def test_wrap_meters_an_async_client_on_its_own(gemini: Callable[..., Any], sink: Memory) -> None:
    client = gemini()
    aio = usagetap.wrap(client.aio, customer="org_aio")
    assert aio is client.aio
    await aio.models.generate_content(model=MODEL, contents="async only")
    [record] = delivered(sink)
    assert (record.customer, record.provider) == ("org_aio", "google")


def test_recording_the_same_gemini_response_twice_gives_one_event_id(sink: Memory) -> None:
    body = {
        "candidates": [{"finishReason": "STOP"}],
        "responseId": "gemini-json-1",
        "modelVersion": MODEL,
        "usageMetadata": {"promptTokenCount": 4, "candidatesTokenCount": 6, "totalTokenCount": 10},
    }
    assert usagetap.record(body, provider="google") == usagetap.record(body, provider="google")


def test_record_of_a_response_without_usage_metadata_is_a_partial_record(sink: Memory) -> None:
    usagetap.record({"candidates": [{"finishReason": "STOP"}], "responseId": "no-usage"}, provider="google")
    [record] = delivered(sink)
    assert (record.status, record.input_tokens, record.response_id) == ("partial", 0, "no-usage")


def test_a_vertex_embedding_of_one_content_is_exact(
    vertex: Callable[[], Any], gemini_server: ProviderServer, sink: Memory
) -> None:
    client = usagetap.wrap(vertex())
    client.models.embed_content(model="gemini-embedding-001", contents="one two three")
    [record] = delivered(sink)
    assert (record.provider, record.operation, record.input_tokens, record.status) == (
        "vertex",
        "embeddings",
        3,
        "ok",
    )
    assert record.cost is not None and record.cost > 0


def test_a_sync_stream_dropped_unread_is_never_sent_so_there_is_nothing_to_bill(
    gemini: Callable[..., Any], gemini_server: ProviderServer, sink: Memory
) -> None:
    client = usagetap.wrap(gemini())
    stream = client.models.generate_content_stream(model=MODEL, contents="never read")
    del stream  # google-genai sends a stream's request when it is first read
    gc.collect()
    assert gemini_server.requests == []
    assert delivered(sink) == []


inlined_batches = pytest.mark.skipif(
    not hasattr(types, "InlinedRequest"),
    reason="this google-genai has no Gemini API batches of inlined requests",
)


def _batch_requests(*prompts: str) -> list[Any]:
    return [{"contents": [{"role": "user", "parts": [{"text": prompt}]}]} for prompt in prompts]


@inlined_batches
def test_a_succeeded_batch_is_one_record_per_response_at_batch_rates_billed_to_its_creator(
    gemini: Callable[..., Any], gemini_server: ProviderServer, sink: Memory
) -> None:
    client = usagetap.wrap(gemini())
    with usagetap.customer("org_batch"):
        job = client.batches.create(model=MODEL, src=_batch_requests("one two", "three"))
    client.batches.get(name=job.name)
    records = delivered(sink)
    assert [(r.customer, r.model, r.dimensions["batch"], r.status) for r in records] == [
        ("org_batch", MODEL, True, "ok")
    ] * 2
    assert [_tokens(r) for r in records] == [_issued_of(gemini_server, r.response_id) for r in records]
    standard = calc_price(Usage(input_tokens=2, output_tokens=12), MODEL, provider_id="google").total_price
    assert records[0].cost == Decimal(standard) / 2


@inlined_batches
def test_reading_a_batch_again_bills_it_no_second_time(gemini: Callable[..., Any], sink: Memory) -> None:
    client = usagetap.wrap(gemini())
    job = client.batches.create(model=MODEL, src=_batch_requests("only one"))
    first = client.batches.get(name=job.name)
    again = client.batches.get(name=job.name)
    assert first.dest.inlined_responses[0].response.text == again.dest.inlined_responses[0].response.text
    assert len(delivered(sink)) == 1
