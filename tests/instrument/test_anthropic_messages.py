"""Messages through the real ``anthropic`` SDK against the loopback provider: create, stream, parse, beta."""

from __future__ import annotations

import gc
import inspect
from collections.abc import Callable
from typing import Any

import anthropic
import pytest
from genai_prices import Usage, calc_price

import usagetap
from tests.instrument.conftest import delivered
from usagetap import _stats
from usagetap._cost import supports_usage_key
from usagetap.instrument._streams import _closes_its_response
from usagetap.providers.observer import Observer
from usagetap.sinks import Memory
from usagetap.testing import ProviderServer

MODEL = "claude-sonnet-4-6"
MESSAGES = [{"role": "user", "content": "How many tokens does this prompt use?"}]
SYSTEM = [
    {
        "type": "text",
        "text": "You answer questions about the billing ledger. " * 40,
        "cache_control": {"type": "ephemeral"},
    }
]
HAS_PARSE = hasattr(anthropic.resources.messages.Messages, "parse")
HAS_COUNT_TOKENS = hasattr(anthropic.resources.messages.Messages, "count_tokens")
HAS_THINKING = "thinking" in inspect.signature(anthropic.resources.messages.Messages.create).parameters
HAS_BETA_STREAM = hasattr(anthropic.resources.beta.messages.Messages, "stream")


def assert_matches_issued(record: usagetap.UsageRecord, server: ProviderServer) -> None:
    issued = server.issued[record.response_id]  # type: ignore[index]
    assert record.input_tokens == issued.input_tokens
    assert record.output_tokens == issued.output_tokens
    assert record.cache_read_tokens == issued.cache_read_tokens
    assert record.cache_write_tokens == issued.cache_write_tokens
    assert record.reasoning_tokens == issued.reasoning_tokens
    for key, value in issued.dimensions.items():
        assert record.dimensions[key] == value, key


def create(client: Any, **extra: Any) -> Any:
    return client.messages.create(model=MODEL, max_tokens=24, messages=MESSAGES, **extra)


def stream_manager(client: Any, **extra: Any) -> Any:
    return client.messages.stream(model=MODEL, max_tokens=24, messages=MESSAGES, **extra)


def test_wrap_returns_the_same_client_with_its_type(claude_server: ProviderServer) -> None:
    bare = anthropic.Anthropic(base_url=claude_server.anthropic_url, api_key="sk-ant-test", max_retries=3)
    messages = bare.messages
    wrapped = usagetap.wrap(bare)
    assert wrapped is bare and type(wrapped) is anthropic.Anthropic
    assert wrapped.messages is messages and wrapped.max_retries == 3


def test_create_yields_one_record_with_the_issued_tokens(
    claude: anthropic.Anthropic, claude_server: ProviderServer, sink: Memory
) -> None:
    with usagetap.customer("org_1", feature="chat"):
        message = create(claude)
    assert type(message) is anthropic.types.Message
    [record] = delivered(sink)
    assert record.response_id == message.id and message.id.startswith("msg_")
    assert (record.provider, record.operation, record.model, record.request_model) == (
        "anthropic",
        "messages",
        MODEL,
        MODEL,
    )
    assert (record.customer, record.dimensions["feature"], record.status) == ("org_1", "chat", "ok")
    assert record.output_tokens == message.usage.output_tokens == 24
    assert_matches_issued(record, claude_server)
    assert record.cost is not None and record.cost > 0


def test_cache_writes_then_reads_and_cost_equals_genai_prices(
    claude: anthropic.Anthropic, claude_server: ProviderServer, sink: Memory
) -> None:
    hour = [{**SYSTEM[0], "cache_control": {"type": "ephemeral", "ttl": "1h"}}]
    first = create(claude, system=hour)
    second = create(claude, system=hour)
    assert first.usage.cache_creation_input_tokens and not first.usage.cache_read_input_tokens
    assert second.usage.cache_read_input_tokens == first.usage.cache_creation_input_tokens
    write, read = delivered(sink)
    assert write.cache_write_tokens == first.usage.cache_creation_input_tokens
    assert write.input_tokens == first.usage.input_tokens + write.cache_write_tokens
    assert write.dimensions["cache_write_1h_tokens"] == write.cache_write_tokens
    assert write.dimensions["cache_write_5m_tokens"] == 0
    assert read.cache_read_tokens == second.usage.cache_read_input_tokens and read.cache_write_tokens == 0
    for record in (write, read):
        assert_matches_issued(record, claude_server)
        split = {  # the 1-hour cache write is priced as such where genai-prices knows the split
            key: record.dimensions[key]
            for key in ("cache_write_5m_tokens", "cache_write_1h_tokens")
            if record.dimensions.get(key) and supports_usage_key(key)
        }
        expected = calc_price(
            Usage(
                input_tokens=record.input_tokens,
                output_tokens=record.output_tokens,
                cache_read_tokens=record.cache_read_tokens or None,
                cache_write_tokens=record.cache_write_tokens or None,
                **split,
            ),
            MODEL,
            provider_id="anthropic",
        ).total_price
        assert record.cost == expected and expected > 0
    assert write.cost is not None and read.cost is not None and read.cost < write.cost


@pytest.mark.skipif(not HAS_THINKING, reason="extended thinking is not in this anthropic version")
def test_thinking_and_server_tools_are_extracted(
    claude: anthropic.Anthropic, claude_server: ProviderServer, sink: Memory
) -> None:
    tools = [
        {"type": "web_search_20250305", "name": "web_search", "max_uses": 3},
        {"type": "web_fetch_20250910", "name": "web_fetch", "max_uses": 1},
    ]
    message = claude.messages.create(
        model=MODEL,
        max_tokens=40,
        messages=MESSAGES,
        tools=tools,  # type: ignore[arg-type]
        thinking={"type": "enabled", "budget_tokens": 1024},
    )
    assert next(b.type for b in message.content) == "thinking"
    [record] = delivered(sink)
    assert record.reasoning_tokens == 10
    assert record.dimensions["web_search_requests"] == record.dimensions["web_fetch_requests"] == 1
    assert record.dimensions["service_tier"] == "standard"
    assert_matches_issued(record, claude_server)


def test_stream_yields_the_sdk_events_unchanged_and_one_record(
    claude: anthropic.Anthropic, claude_server: ProviderServer, sink: Memory
) -> None:
    with usagetap.customer("org_s"):
        stream = create(claude, stream=True)
    assert type(stream) is anthropic.Stream
    kinds = [event.type for event in stream]
    assert kinds[:2] == ["message_start", "content_block_start"]
    assert kinds[-2:] == ["message_delta", "message_stop"]
    assert kinds.count("content_block_delta") == 24
    [record] = delivered(sink)
    assert (record.customer, record.status) == ("org_s", "ok")
    assert_matches_issued(record, claude_server)


def test_stream_used_as_context_manager(
    claude: anthropic.Anthropic, claude_server: ProviderServer, sink: Memory
) -> None:
    with create(claude, stream=True) as stream:
        for _ in stream:
            pass
    [record] = delivered(sink)
    assert record.status == "ok"
    assert_matches_issued(record, claude_server)


def _text_stream(stream: Any) -> None:
    assert "".join(stream.text_stream).split()


def _events(stream: Any) -> None:
    assert [e.type for e in stream][-1] == "message_stop"


def _until_done(stream: Any) -> None:
    stream.until_done()


def _final_message(stream: Any) -> None:
    assert stream.get_final_message().usage.output_tokens == 24


def _final_text(stream: Any) -> None:
    assert len(stream.get_final_text().split()) == 24


CONSUMERS: dict[str, Callable[[Any], None]] = {
    "text_stream": _text_stream,
    "events": _events,
    "until_done": _until_done,
    "get_final_message": _final_message,
    "get_final_text": _final_text,
}


@pytest.mark.parametrize("consume", list(CONSUMERS))
def test_stream_helper_with_with(
    consume: str, claude: anthropic.Anthropic, claude_server: ProviderServer, sink: Memory
) -> None:
    with usagetap.customer("org_helper"), stream_manager(claude) as stream:
        assert type(stream).__name__ == "MessageStream"
        CONSUMERS[consume](stream)
    [record] = delivered(sink)
    assert (record.customer, record.status) == ("org_helper", "ok")
    assert_matches_issued(record, claude_server)


@pytest.mark.parametrize("consume", list(CONSUMERS))
def test_stream_helper_without_with(
    consume: str, claude: anthropic.Anthropic, claude_server: ProviderServer, sink: Memory
) -> None:
    stream = stream_manager(claude).__enter__()
    CONSUMERS[consume](stream)
    [record] = delivered(sink)
    assert record.status == "ok"
    assert_matches_issued(record, claude_server)


def test_stream_helper_never_entered_sends_nothing_and_records_nothing(
    claude: anthropic.Anthropic, claude_server: ProviderServer, sink: Memory
) -> None:
    manager = stream_manager(claude)
    del manager
    gc.collect()
    assert claude_server.requests == []
    assert delivered(sink) == []


def test_stream_helper_left_early_is_one_partial_record_with_the_input(
    claude: anthropic.Anthropic, claude_server: ProviderServer, sink: Memory
) -> None:
    claude_server.stream_delay = 0.002  # one event per write: the usage is not read with the first ones
    with stream_manager(claude) as stream:
        for text in stream.text_stream:
            assert text
            break
    [record] = delivered(sink)
    assert record.status == "partial"
    assert record.input_tokens == claude_server.issued[record.response_id].input_tokens  # type: ignore[index]


def test_stream_broken_early_and_closed_is_one_partial_record(
    claude: anthropic.Anthropic, sink: Memory
) -> None:
    stream = create(claude, stream=True)
    for i, _ in enumerate(stream):
        if i == 3:
            break
    stream.close()
    stream.close()
    [record] = delivered(sink)
    assert (record.status, record.request_model) == ("partial", MODEL)
    assert record.output_tokens == 1, "what message_start reported"


def test_once_the_record_is_out_closing_is_the_sdks_own_again(
    claude: anthropic.Anthropic, sink: Memory
) -> None:
    closes: list[str] = []
    for early in (False, True):
        stream = create(claude, stream=True)
        response = stream.response
        assert "close" in vars(response), "usagetap's hook reads the usage of a stream closed early"
        for i, _ in enumerate(stream):
            if early and i == 3:
                break
        if early:
            stream.close()
        assert "close" not in vars(response)
        assert response.is_closed
        stream.close()
        closes.append(stream.response.close.__qualname__)
    assert [r.status for r in delivered(sink)] == ["ok", "partial"]
    assert all(name.endswith("Response.close") for name in closes)


def test_stream_broken_early_without_close_is_metered_when_collected(
    claude: anthropic.Anthropic, sink: Memory
) -> None:
    stream = create(claude, stream=True)
    for i, _ in enumerate(stream):
        if i == 2:
            break
    del stream
    gc.collect()
    [record] = delivered(sink)
    assert record.status == "partial"


def test_unconsumed_stream_is_metered_once(claude: anthropic.Anthropic, sink: Memory) -> None:
    stream = create(claude, stream=True)
    del stream
    gc.collect()
    [record] = delivered(sink)
    assert record.status == "partial"
    assert record.input_tokens == 0 and record.response_id is None


def test_error_event_mid_stream_reaches_the_caller_and_yields_one_partial_record(
    claude: anthropic.Anthropic, claude_server: ProviderServer, sink: Memory
) -> None:
    claude_server.stream_error_after = 4
    seen = []
    with pytest.raises(anthropic.APIStatusError, match="injected mid-stream failure"):
        for event in create(claude, stream=True):
            seen.append(event.type)
    assert seen == ["message_start", "content_block_start", "content_block_delta"], "ping is not an event"
    [record] = delivered(sink)
    assert record.status == "partial"
    assert record.input_tokens == claude_server.issued[record.response_id].input_tokens  # type: ignore[index]


def test_error_mid_stream_in_the_helper(
    claude: anthropic.Anthropic, claude_server: ProviderServer, sink: Memory
) -> None:
    claude_server.stream_error_after = 5
    with pytest.raises(anthropic.APIStatusError), stream_manager(claude) as stream:
        stream.get_final_text()
    [record] = delivered(sink)
    assert record.status == "partial"


def test_provider_errors_reach_the_caller_unchanged_and_yield_no_record(
    claude: anthropic.Anthropic, claude_server: ProviderServer, sink: Memory
) -> None:
    claude_server.fail_next(
        529, body={"type": "error", "error": {"type": "overloaded_error", "message": "busy"}}
    )
    with pytest.raises(anthropic.APIStatusError) as info:
        create(claude)
    assert info.value.status_code == 529
    claude_server.fail_next(500)
    with pytest.raises(anthropic.InternalServerError):
        create(claude, stream=True)
    with pytest.raises(anthropic.BadRequestError):
        claude.messages.create(model=MODEL, max_tokens=0, messages=MESSAGES)
    assert delivered(sink) == []


@pytest.mark.skipif(not HAS_COUNT_TOKENS, reason="messages.count_tokens() is not in this anthropic version")
def test_count_tokens_is_not_billable(claude: anthropic.Anthropic, sink: Memory) -> None:
    counted = claude.messages.count_tokens(model=MODEL, messages=MESSAGES)  # type: ignore[arg-type]
    assert counted.input_tokens > 0
    assert delivered(sink) == []


@pytest.mark.skipif(not HAS_PARSE, reason="messages.parse() is not in this anthropic version")
def test_parse_is_metered_and_returns_the_parsed_message(
    claude: anthropic.Anthropic, claude_server: ProviderServer, sink: Memory
) -> None:
    from pydantic import BaseModel

    class Answer(BaseModel):
        tokens: int
        unit: str

    parsed = claude.messages.parse(model=MODEL, max_tokens=30, messages=MESSAGES, output_format=Answer)  # type: ignore[arg-type]
    assert parsed.parsed_output == Answer(tokens=1, unit="usage")
    [record] = delivered(sink)
    assert record.response_id == parsed.id
    assert_matches_issued(record, claude_server)


@pytest.mark.skipif(not HAS_BETA_STREAM, reason="beta.messages.stream() is not in this anthropic version")
def test_beta_messages_create_and_stream(
    claude: anthropic.Anthropic, claude_server: ProviderServer, sink: Memory
) -> None:
    with usagetap.customer("org_beta"):
        message = claude.beta.messages.create(model=MODEL, max_tokens=10, messages=MESSAGES)  # type: ignore[arg-type]
        for _ in claude.beta.messages.create(model=MODEL, max_tokens=10, messages=MESSAGES, stream=True):  # type: ignore[arg-type]
            pass
        with claude.beta.messages.stream(model=MODEL, max_tokens=10, messages=MESSAGES) as stream:  # type: ignore[arg-type]
            final = stream.get_final_message()
    assert type(message).__name__ == "BetaMessage"
    records = delivered(sink)
    assert len(records) == 3
    assert records[0].response_id == message.id and records[2].response_id == final.id
    assert all(r.customer == "org_beta" and r.status == "ok" for r in records)
    for record in records:
        assert_matches_issued(record, claude_server)


def test_exactly_one_record_per_call_and_totals_match(
    claude: anthropic.Anthropic, claude_server: ProviderServer, sink: Memory
) -> None:
    for i in range(9):
        with usagetap.customer(f"org_{i % 3}"):
            if i % 3 == 0:
                create(claude)
            elif i % 3 == 1:
                for _ in create(claude, stream=True):
                    pass
            else:
                with stream_manager(claude) as stream:
                    stream.until_done()
    records = delivered(sink)
    assert len(records) == 9
    assert sorted(r.response_id for r in records) == sorted(claude_server.issued)  # type: ignore[type-var]
    for customer in ("org_0", "org_1", "org_2"):
        mine = [r for r in records if r.customer == customer]
        totals = claude_server.totals(r.response_id for r in mine)  # type: ignore[misc]
        assert sum(r.input_tokens for r in mine) == totals["input_tokens"]
        assert sum(r.output_tokens for r in mine) == totals["output_tokens"]


def test_with_options_copy_and_bound_customer(claude_server: ProviderServer, sink: Memory) -> None:
    client = usagetap.wrap(
        anthropic.Anthropic(base_url=claude_server.anthropic_url, api_key="k"),
        customer="bound",
        dimensions={"app": "x"},
    )
    derived = client.with_options(max_retries=0)
    create(derived)
    create(client.copy(timeout=5.0))
    with usagetap.customer("scoped"):
        create(derived)
    records = delivered(sink)
    assert [r.customer for r in records] == ["bound", "bound", "scoped"]
    assert all(r.dimensions["app"] == "x" for r in records)


def test_unwrapped_client_is_not_metered(claude_server: ProviderServer, sink: Memory) -> None:
    create(anthropic.Anthropic(base_url=claude_server.anthropic_url, api_key="k"))
    assert delivered(sink) == []


@pytest.mark.internal_error("extract", "stream.observe")
def test_failure_inside_usagetap_never_breaks_the_call(
    claude: anthropic.Anthropic, sink: Memory, monkeypatch: pytest.MonkeyPatch, caplog_usagetap: Any
) -> None:
    from usagetap.providers.anthropic import usage as extract

    def broken(*_: Any) -> Any:
        raise RuntimeError("extraction bug")

    monkeypatch.setattr(extract, "message_usage", broken)
    monkeypatch.setattr(extract.MessageStreamObserver, "observe", broken)
    assert type(create(claude)) is anthropic.types.Message
    assert len(list(create(claude, stream=True))) == 29
    with stream_manager(claude) as stream:
        assert len(stream.get_final_text().split()) == 24
    records = delivered(sink)
    assert [(r.status, r.input_tokens) for r in records] == [("partial", 0)] * 3, "every billed call"
    assert records[0].dimensions["usage_issue"] == "usage unreadable: RuntimeError"
    assert _stats.snapshot()["internal_errors"] > 2
    logged = [r.getMessage() for r in caplog_usagetap.records if "internal error" in r.getMessage()]
    assert sorted(m.split(";")[0] for m in logged) == [
        "usagetap: internal error in extract",
        "usagetap: internal error in stream.observe",
    ]


def test_instrument_meters_unwrapped_clients_once(claude_server: ProviderServer, sink: Memory) -> None:
    from usagetap.instrument import instrument, uninstrument

    assert "anthropic" in instrument()
    try:
        bare = anthropic.Anthropic(base_url=claude_server.anthropic_url, api_key="k")
        wrapped = usagetap.wrap(anthropic.Anthropic(base_url=claude_server.anthropic_url, api_key="k"))
        with usagetap.customer("org_glob"):
            create(bare)
            create(wrapped)
            with stream_manager(bare) as stream:
                stream.until_done()
    finally:
        uninstrument()
    records = delivered(sink)
    assert [(r.customer, r.provider, r.status) for r in records] == [("org_glob", "anthropic", "ok")] * 3


def test_record_meters_an_anthropic_message_obtained_elsewhere(
    claude_server: ProviderServer, sink: Memory
) -> None:
    message = create(anthropic.Anthropic(base_url=claude_server.anthropic_url, api_key="k"))
    first = usagetap.record(message, customer="org_r")
    again = usagetap.record(message.model_dump(), provider="anthropic", customer="org_r")
    assert first == again
    [record] = delivered(sink)
    assert (record.provider, record.operation, record.customer) == ("anthropic", "messages", "org_r")
    assert_matches_issued(record, claude_server)
    with pytest.raises(TypeError, match="cannot meter"):
        usagetap.record({"type": "message_batch"}, provider="anthropic")


# -- async ------------------------------------------------------------------------


async def test_async_create_and_stream(
    aclaude: anthropic.AsyncAnthropic, claude_server: ProviderServer, sink: Memory
) -> None:
    with usagetap.customer("async_org"):
        message = await create(aclaude)
        stream = await create(aclaude, stream=True)
    assert type(stream) is anthropic.AsyncStream
    kinds = [event.type async for event in stream]
    assert kinds[-1] == "message_stop"
    records = delivered(sink)
    assert [r.customer for r in records] == ["async_org", "async_org"]
    assert records[0].response_id == message.id and records[1].status == "ok"
    for record in records:
        assert_matches_issued(record, claude_server)


async def test_async_stream_helper(
    aclaude: anthropic.AsyncAnthropic, claude_server: ProviderServer, sink: Memory
) -> None:
    async with stream_manager(aclaude) as stream:
        assert [t async for t in stream.text_stream]
    async with stream_manager(aclaude) as stream:
        assert len((await stream.get_final_text()).split()) == 24
    async with stream_manager(aclaude) as stream:
        await stream.until_done()
    async with stream_manager(aclaude) as stream:
        final = await stream.get_final_message()
    async with stream_manager(aclaude) as stream:
        assert [e.type async for e in stream][-1] == "message_stop"
    records = delivered(sink)
    assert len(records) == 5 and all(r.status == "ok" for r in records)
    assert records[3].response_id == final.id
    for record in records:
        assert_matches_issued(record, claude_server)


async def test_async_stream_helper_without_with(
    aclaude: anthropic.AsyncAnthropic, claude_server: ProviderServer, sink: Memory
) -> None:
    stream = await stream_manager(aclaude).__aenter__()
    await stream.until_done()
    [record] = delivered(sink)
    assert_matches_issued(record, claude_server)


async def test_async_stream_broken_early_is_partial(aclaude: anthropic.AsyncAnthropic, sink: Memory) -> None:
    stream = await create(aclaude, stream=True)
    async with stream:
        async for event in stream:
            if event.type == "content_block_delta":
                break
    [record] = delivered(sink)
    assert record.status == "partial"


async def test_async_error_mid_stream_is_partial(
    aclaude: anthropic.AsyncAnthropic, claude_server: ProviderServer, sink: Memory
) -> None:
    claude_server.stream_error_after = 6
    with pytest.raises(anthropic.APIStatusError):
        async with stream_manager(aclaude) as stream:
            await stream.until_done()
    [record] = delivered(sink)
    assert record.status == "partial"


@pytest.mark.skipif(not HAS_BETA_STREAM, reason="beta.messages.stream() is not in this anthropic version")
async def test_async_beta_and_parse(
    aclaude: anthropic.AsyncAnthropic, claude_server: ProviderServer, sink: Memory
) -> None:
    await aclaude.beta.messages.create(model=MODEL, max_tokens=10, messages=MESSAGES)  # type: ignore[arg-type]
    async with aclaude.beta.messages.stream(model=MODEL, max_tokens=10, messages=MESSAGES) as stream:  # type: ignore[arg-type]
        await stream.until_done()
    expected = 2
    if HAS_PARSE:
        await aclaude.messages.parse(model=MODEL, max_tokens=10, messages=MESSAGES)  # type: ignore[arg-type]
        expected += 1
    records = delivered(sink)
    assert len(records) == expected and all(r.status == "ok" for r in records)
    for record in records:
        assert_matches_issued(record, claude_server)


async def test_async_provider_error_is_the_sdks_own(
    aclaude: anthropic.AsyncAnthropic, claude_server: ProviderServer, sink: Memory
) -> None:
    claude_server.fail_next(500)
    with pytest.raises(anthropic.InternalServerError):
        await create(aclaude)
    assert delivered(sink) == []


def test_the_stream_observer_reads_only_the_events_that_carry_usage(
    claude: anthropic.Anthropic, claude_server: ProviderServer, sink: Memory, monkeypatch: pytest.MonkeyPatch
) -> None:
    from usagetap.providers.anthropic import usage as extract

    seen: list[str] = []
    observe = extract.MessageStreamObserver.observe

    def counting(self: Any, event: Any) -> None:
        seen.append(event.type)
        observe(self, event)

    monkeypatch.setattr(extract.MessageStreamObserver, "observe", counting)
    events = list(create(claude, stream=True))
    assert len(events) == 29, "every event still reaches the caller"
    assert seen == ["message_start", "message_delta"]
    [record] = delivered(sink)
    assert record.status == "ok"
    assert_matches_issued(record, claude_server)


def test_an_observer_naming_its_kinds_sees_dict_events_of_those_kinds_only() -> None:
    from usagetap.instrument._calls import Call
    from usagetap.instrument._streams import StreamTap, _iterate

    class Kinds(Observer):
        kinds = frozenset({"wanted"})

        def __init__(self) -> None:
            self.seen: list[Any] = []

        def observe(self, event: Any) -> None:
            self.seen.append(event)

        def result(self) -> None:
            return None

    observer = Kinds()
    tap = StreamTap(Call.__new__(Call), observer)
    items = [{"type": "wanted"}, {"type": "other"}, object(), 42, {"type": "wanted", "n": 2}]
    assert list(_iterate(iter(items), tap)) == items
    assert observer.seen == [{"type": "wanted"}, {"type": "wanted", "n": 2}]


def test_a_tail_observer_is_handed_the_first_and_last_items_only_when_the_stream_ends(
    claude: anthropic.Anthropic, claude_server: ProviderServer, sink: Memory, monkeypatch: pytest.MonkeyPatch
) -> None:
    from usagetap.providers.anthropic import usage as extract

    received: list[Any] = []
    observed: list[tuple[str, int]] = []
    observe = extract.MessageStreamObserver.observe

    def noting(self: Any, event: Any) -> None:
        observed.append((event.type, len(received)))
        observe(self, event)

    monkeypatch.setattr(extract.MessageStreamObserver, "observe", noting)
    stream = create(claude, stream=True)
    for event in stream:
        received.append(event)
    if not _closes_its_response(stream):
        pytest.skip("this SDK's stream leaves its response open: the observer reads each event as it passes")
    assert len(received) == 29
    assert observed == [("message_start", 29), ("message_delta", 29)], "read at the end, not per event"
    [record] = delivered(sink)
    assert record.status == "ok"
    assert_matches_issued(record, claude_server)


def test_edges_pass_every_item_through_and_keep_the_first_and_the_last_ones() -> None:
    from usagetap.instrument._calls import Call
    from usagetap.instrument._streams import StreamTap, _edges

    tap = StreamTap(Call.__new__(Call), _Silent())
    items = [{"n": i} for i in range(50)]
    passed = list(_edges(iter(items), tap, 3))
    assert len(passed) == 50 and all(a is b for a, b in zip(passed, items, strict=False))
    assert tap.edges is not None
    head, tail = tap.edges
    assert [*head, *tail] == [items[0], *items[-3:]]

    short = StreamTap(Call.__new__(Call), _Silent())
    assert list(_edges(iter(items[:2]), short, 3)) == items[:2]
    assert short.edges is not None
    assert [*short.edges[0], *short.edges[1]] == items[:2], "no item is kept twice"


class _Silent(Observer):
    """An observer that reads nothing and bills nothing."""

    def observe(self, item: Any) -> None:
        return None

    def result(self) -> None:
        return None


# -- code execution ------------------------------------------------------------------------

CODE_EXECUTION = [{"type": "code_execution_20250825", "name": "code_execution"}]


def test_a_raw_event_stream_counts_the_code_execution_calls_in_its_middle(
    claude: anthropic.Anthropic, claude_server: ProviderServer, sink: Memory
) -> None:
    with claude.messages.with_streaming_response.create(
        model=MODEL,
        max_tokens=24,
        messages=MESSAGES,
        tools=CODE_EXECUTION,
        stream=True,  # type: ignore[arg-type]
    ) as response:
        lines = list(response.iter_lines())
    assert any('"bash_code_execution"' in line for line in lines)
    [record] = delivered(sink)
    assert record.status == "ok" and record.fees == {"code_execution": 1}
    assert_matches_issued(record, claude_server)


def test_the_code_execution_tool_of_2025_05_22_is_counted_by_its_call_name(
    claude: anthropic.Anthropic, claude_server: ProviderServer, sink: Memory
) -> None:
    tools = [{"type": "code_execution_20250522", "name": "code_execution"}]
    message = create(claude, tools=tools)
    assert [block.type for block in message.content][:2] == ["server_tool_use", "code_execution_tool_result"]
    [record] = delivered(sink)
    assert record.dimensions["code_execution_requests"] == 1
    assert_matches_issued(record, claude_server)


async def test_an_async_stream_counts_its_code_execution_calls(
    aclaude: anthropic.AsyncAnthropic, claude_server: ProviderServer, sink: Memory
) -> None:
    stream = await create(aclaude, stream=True, tools=CODE_EXECUTION)
    kinds = [event.type async for event in stream]
    assert kinds.count("content_block_start") == 3
    [record] = delivered(sink)
    assert record.fees == {"code_execution": 1} and record.status == "ok"
    assert_matches_issued(record, claude_server)
