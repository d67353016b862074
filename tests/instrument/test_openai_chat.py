"""Chat completions through the real ``openai`` SDK against the loopback provider."""

from __future__ import annotations

import copy
import gc
from typing import Any

import openai
import pytest

import usagetap
from tests.instrument.conftest import delivered
from usagetap import _stats
from usagetap.sinks import Memory
from usagetap.testing import ProviderServer

MESSAGES = [{"role": "user", "content": "How many tokens does this prompt use?"}]


def assert_matches_issued(record: usagetap.UsageRecord, server: ProviderServer) -> None:
    issued = server.issued[record.response_id]  # type: ignore[index]
    assert record.input_tokens == issued.input_tokens
    assert record.output_tokens == issued.output_tokens
    assert record.cache_read_tokens == issued.cache_read_tokens
    assert record.reasoning_tokens == issued.reasoning_tokens


def test_wrap_returns_the_same_client_with_its_type_and_attributes(server: ProviderServer) -> None:
    bare = openai.OpenAI(base_url=server.openai_url, api_key="sk-test", max_retries=3)
    chat = bare.chat
    wrapped = usagetap.wrap(bare)
    assert wrapped is bare
    assert type(wrapped) is openai.OpenAI
    assert isinstance(wrapped, openai.OpenAI)
    assert wrapped.max_retries == 3
    assert wrapped.api_key == "sk-test"
    assert str(wrapped.base_url).startswith(server.openai_url)
    assert wrapped.chat is chat


def test_non_streaming_call_yields_one_record_with_the_issued_tokens(
    client: openai.OpenAI, server: ProviderServer, sink: Memory
) -> None:
    with usagetap.customer("org_1", feature="chat"):
        response = client.chat.completions.create(model="gpt-4.1", messages=MESSAGES, max_tokens=30)
    assert type(response) is openai.types.chat.ChatCompletion
    [record] = delivered(sink)
    assert record.response_id == response.id
    assert record.customer == "org_1"
    assert record.dimensions["feature"] == "chat"
    assert (record.provider, record.operation, record.model, record.request_model) == (
        "openai",
        "chat",
        "gpt-4.1",
        "gpt-4.1",
    )
    assert record.status == "ok"
    assert record.output_tokens == 30
    assert_matches_issued(record, server)
    assert record.cost is not None and record.cost > 0


def test_cached_and_reasoning_tokens_are_extracted(
    client: openai.OpenAI, server: ProviderServer, sink: Memory
) -> None:
    long_prompt = [{"role": "user", "content": "word " * 300}]
    client.chat.completions.create(model="o4-mini", messages=long_prompt, max_tokens=40)
    client.chat.completions.create(model="o4-mini", messages=long_prompt, max_tokens=40)
    first, second = delivered(sink)
    assert first.cache_read_tokens == 0
    assert second.cache_read_tokens == 256
    assert second.reasoning_tokens == 10
    for record in (first, second):
        assert_matches_issued(record, server)


def test_nested_customers_attribute_each_call_to_the_innermost(client: openai.OpenAI, sink: Memory) -> None:
    with usagetap.customer("outer", feature="a"):
        client.chat.completions.create(model="gpt-4.1-mini", messages=MESSAGES)
        with usagetap.customer("inner"):
            client.chat.completions.create(model="gpt-4.1-mini", messages=MESSAGES)
        client.chat.completions.create(model="gpt-4.1-mini", messages=MESSAGES)
    client.chat.completions.create(model="gpt-4.1-mini", messages=MESSAGES)
    records = delivered(sink)
    assert [r.customer for r in records] == ["outer", "inner", "outer", None]
    assert [r.dimensions.get("feature") for r in records] == ["a", "a", "a", None]


def test_stream_without_include_usage_hides_the_usage_chunk_and_meters_it(
    client: openai.OpenAI, server: ProviderServer, sink: Memory
) -> None:
    options = {"include_usage": False}
    kept = copy.deepcopy(options)
    stream = client.chat.completions.create(
        model="gpt-4.1", messages=MESSAGES, stream=True, max_tokens=12, stream_options=options
    )
    assert type(stream) is openai.Stream
    chunks = list(stream)
    assert all(chunk.choices for chunk in chunks), "caller saw a chunk with empty choices"
    assert all(chunk.usage is None for chunk in chunks)
    assert "".join(c.choices[0].delta.content or "" for c in chunks).split() != []
    assert options == kept, "the caller's stream_options dict was mutated"
    assert server.requests[-1]["body"]["stream_options"] == {"include_usage": True}
    [record] = delivered(sink)
    assert record.status == "ok"
    assert record.output_tokens == 12
    assert_matches_issued(record, server)


def test_stream_where_the_caller_asked_for_usage_shows_the_usage_chunk(
    client: openai.OpenAI, server: ProviderServer, sink: Memory
) -> None:
    stream = client.chat.completions.create(
        model="gpt-4.1", messages=MESSAGES, stream=True, stream_options={"include_usage": True}
    )
    chunks = list(stream)
    assert chunks[-1].choices == [] and chunks[-1].usage is not None
    [record] = delivered(sink)
    assert record.input_tokens == chunks[-1].usage.prompt_tokens
    assert_matches_issued(record, server)


def test_stream_used_as_context_manager_yields_one_record(
    client: openai.OpenAI, server: ProviderServer, sink: Memory
) -> None:
    with client.chat.completions.create(model="gpt-4.1", messages=MESSAGES, stream=True) as stream:
        assert type(stream) is openai.Stream
        n = sum(1 for _ in stream)
    assert n == 16 + 2
    [record] = delivered(sink)
    assert record.status == "ok"
    assert_matches_issued(record, server)


def test_stream_broken_early_and_closed_yields_one_partial_record(
    client: openai.OpenAI, sink: Memory
) -> None:
    with client.chat.completions.create(model="gpt-4.1", messages=MESSAGES, stream=True, max_tokens=50) as s:
        for i, _ in enumerate(s):
            if i == 3:
                break
    s.close()
    records = delivered(sink)
    assert len(records) == 1
    assert records[0].status == "partial"
    assert records[0].request_model == "gpt-4.1"
    assert records[0].output_tokens == 0


def test_stream_broken_early_without_close_is_metered_when_collected(
    client: openai.OpenAI, sink: Memory
) -> None:
    stream = client.chat.completions.create(model="gpt-4.1", messages=MESSAGES, stream=True, max_tokens=50)
    for i, _ in enumerate(stream):
        if i == 2:
            break
    del stream
    gc.collect()
    [record] = delivered(sink)
    assert record.status == "partial"


def test_unconsumed_stream_is_metered_once_when_collected(client: openai.OpenAI, sink: Memory) -> None:
    stream = client.chat.completions.create(model="gpt-4.1", messages=MESSAGES, stream=True)
    stream.close()
    stream.close()
    del stream
    gc.collect()
    [record] = delivered(sink)
    assert record.status == "partial"
    with client.chat.completions.create(model="gpt-4.1", messages=MESSAGES, stream=True):
        pass
    gc.collect()
    assert len(delivered(sink)) == 2


def test_error_mid_stream_reaches_the_caller_and_yields_one_partial_record(
    client: openai.OpenAI, server: ProviderServer, sink: Memory
) -> None:
    server.stream_error_after = 4
    stream = client.chat.completions.create(model="gpt-4.1", messages=MESSAGES, stream=True)
    seen = 0
    with pytest.raises(openai.APIError, match="injected mid-stream failure"):
        for _ in stream:
            seen += 1
    assert seen == 4
    [record] = delivered(sink)
    assert record.status == "partial"


def test_provider_error_reaches_the_caller_unchanged_and_yields_no_record(
    client: openai.OpenAI, server: ProviderServer, sink: Memory
) -> None:
    server.fail_next(500)
    with pytest.raises(openai.InternalServerError) as info:
        client.chat.completions.create(model="gpt-4.1", messages=MESSAGES)
    assert info.value.status_code == 500
    server.fail_next(500)
    with pytest.raises(openai.InternalServerError):
        client.chat.completions.create(model="gpt-4.1", messages=MESSAGES, stream=True)
    assert delivered(sink) == []


def test_exactly_one_record_per_call(client: openai.OpenAI, server: ProviderServer, sink: Memory) -> None:
    for i in range(10):
        if i % 2:
            for _ in client.chat.completions.create(model="gpt-4.1-mini", messages=MESSAGES, stream=True):
                pass
        else:
            client.chat.completions.create(model="gpt-4.1-mini", messages=MESSAGES)
    records = delivered(sink)
    assert len(records) == 10
    assert sorted(r.response_id for r in records) == sorted(server.issued)  # type: ignore[type-var]
    totals = server.totals()
    assert sum(r.input_tokens for r in records) == totals["input_tokens"]
    assert sum(r.output_tokens for r in records) == totals["output_tokens"]


def test_with_options_and_copy_stay_wrapped_with_the_same_defaults(
    server: ProviderServer, sink: Memory
) -> None:
    client = usagetap.wrap(
        openai.OpenAI(base_url=server.openai_url, api_key="sk-test"),
        customer="bound",
        dimensions={"app": "x"},
    )
    derived = client.with_options(timeout=5.0, max_retries=0)
    copied = client.copy(max_retries=1)
    assert isinstance(derived, openai.OpenAI) and derived is not client
    derived.chat.completions.create(model="gpt-4.1", messages=MESSAGES)
    copied.chat.completions.create(model="gpt-4.1", messages=MESSAGES)
    with usagetap.customer("scoped"):
        derived.chat.completions.create(model="gpt-4.1", messages=MESSAGES)
    records = delivered(sink)
    assert [r.customer for r in records] == ["bound", "bound", "scoped"]
    assert all(r.dimensions["app"] == "x" for r in records)


def test_unwrapped_client_is_not_metered(server: ProviderServer, sink: Memory) -> None:
    bare = openai.OpenAI(base_url=server.openai_url, api_key="sk-test")
    bare.chat.completions.create(model="gpt-4.1", messages=MESSAGES)
    assert delivered(sink) == []


@pytest.mark.internal_error("extract")
def test_failure_inside_usagetap_never_breaks_the_call(
    client: openai.OpenAI, sink: Memory, monkeypatch: pytest.MonkeyPatch, caplog_usagetap: Any
) -> None:
    from usagetap.providers.openai import usage as extract

    def broken(_: Any) -> Any:
        raise RuntimeError("extraction bug")

    monkeypatch.setattr(extract, "chat_usage", broken)
    response = client.chat.completions.create(model="gpt-4.1", messages=MESSAGES)
    assert type(response) is openai.types.chat.ChatCompletion
    response = client.chat.completions.create(model="gpt-4.1", messages=MESSAGES)
    assert response.choices[0].message.content
    kept = [(r.status, r.input_tokens, r.dimensions["usage_issue"]) for r in delivered(sink)]
    assert kept == [("partial", 0, "usage unreadable: RuntimeError")] * 2, "both calls billed, flagged"
    assert _stats.snapshot()["internal_errors"] == 2
    assert sum("internal error in extract" in r.getMessage() for r in caplog_usagetap.records) == 1


@pytest.mark.internal_error("capture")
def test_failure_while_handling_the_result_returns_the_sdk_result(
    client: openai.OpenAI, sink: Memory, monkeypatch: pytest.MonkeyPatch, caplog_usagetap: Any
) -> None:
    from usagetap import _runtime

    def broken(*_: Any) -> Any:
        raise RuntimeError("queue bug")

    monkeypatch.setattr(_runtime.DELIVERY, "on_end", broken)
    response = client.chat.completions.create(model="gpt-4.1", messages=MESSAGES)
    assert type(response) is openai.types.chat.ChatCompletion
    chunks = list(client.chat.completions.create(model="gpt-4.1", messages=MESSAGES, stream=True))
    assert len(chunks) == 18
    assert _stats.snapshot()["internal_errors"] == 2
    assert sum("internal error in capture" in r.getMessage() for r in caplog_usagetap.records) == 1


def test_other_endpoints_pass_through_untouched(
    client: openai.OpenAI, server: ProviderServer, sink: Memory
) -> None:
    with pytest.raises(openai.NotFoundError):
        client.models.list()
    assert delivered(sink) == []


def test_wrap_rejects_objects_that_are_not_sdk_clients() -> None:
    with pytest.raises(TypeError, match="supports clients of the SDKs openai, anthropic"):
        usagetap.wrap(object())


# -- async --------------------------------------------------------------------


async def test_async_non_streaming_call(
    aclient: openai.AsyncOpenAI, server: ProviderServer, sink: Memory
) -> None:
    assert type(aclient) is openai.AsyncOpenAI
    with usagetap.customer("async_org"):
        response = await aclient.chat.completions.create(model="gpt-4.1", messages=MESSAGES)
    [record] = delivered(sink)
    assert record.customer == "async_org"
    assert record.response_id == response.id
    assert_matches_issued(record, server)


async def test_async_stream_hides_usage_chunk_and_meters_once(
    aclient: openai.AsyncOpenAI, server: ProviderServer, sink: Memory
) -> None:
    with usagetap.customer("async_org"):
        stream = await aclient.chat.completions.create(model="gpt-4.1", messages=MESSAGES, stream=True)
    assert type(stream) is openai.AsyncStream
    chunks = [chunk async for chunk in stream]
    assert all(chunk.choices for chunk in chunks)
    [record] = delivered(sink)
    assert record.customer == "async_org"
    assert record.status == "ok"
    assert_matches_issued(record, server)


async def test_async_stream_as_context_manager_broken_early_is_partial(
    aclient: openai.AsyncOpenAI, sink: Memory
) -> None:
    stream = await aclient.chat.completions.create(
        model="gpt-4.1", messages=MESSAGES, stream=True, max_tokens=40
    )
    async with stream:
        async for i, _ in _aenumerate(stream):
            if i == 2:
                break
    [record] = delivered(sink)
    assert record.status == "partial"


async def test_async_provider_error_is_the_sdks_own(
    aclient: openai.AsyncOpenAI, server: ProviderServer, sink: Memory
) -> None:
    server.fail_next(500)
    with pytest.raises(openai.InternalServerError):
        await aclient.chat.completions.create(model="gpt-4.1", messages=MESSAGES)
    assert delivered(sink) == []


async def _aenumerate(items: Any) -> Any:
    i = 0
    async for item in items:
        yield i, item
        i += 1


def test_invalid_usage_from_a_provider_is_a_partial_record_naming_it_never_a_drop(
    client: openai.OpenAI, sink: Memory, monkeypatch: pytest.MonkeyPatch, caplog_usagetap: Any
) -> None:
    from usagetap.providers.base import TokenUsage
    from usagetap.providers.openai import usage as extract

    monkeypatch.setattr(
        extract, "chat_usage", lambda _: TokenUsage(model="gpt-4.1", input_tokens=-5, output_tokens=9)
    )
    response = client.chat.completions.create(model="gpt-4.1", messages=MESSAGES)
    assert response.choices
    [record] = delivered(sink)
    assert (record.status, record.input_tokens, record.output_tokens) == ("partial", 0, 9)
    assert record.dimensions["usage_issue"] == "input_tokens -5 is not a count, not billed"
    assert _stats.snapshot()["dropped.invalid"] == 0
    assert _stats.snapshot()["partial.not_a_count"] == 1
    assert any("does not add up" in r.getMessage() for r in caplog_usagetap.records)


def test_server_rejecting_stream_options_still_streams_and_records_partial(
    server: ProviderServer, sink: Memory, caplog_usagetap: Any
) -> None:
    server.reject_stream_options = True
    client = usagetap.wrap(
        openai.OpenAI(base_url=server.openai_url, api_key="k", max_retries=0), provider="vllm.internal"
    )
    for _ in range(2):
        chunks = list(client.chat.completions.create(model="llama-3", messages=MESSAGES, stream=True))
        assert len(chunks) == 18
    bodies = [r["body"] for r in server.requests]
    assert ["stream_options" in b for b in bodies] == [True, False, False], "the rejection is remembered"
    records = delivered(sink)
    assert [r.status for r in records] == ["partial", "partial"]
    assert all(r.provider == "vllm.internal" and r.request_model == "llama-3" for r in records)
    assert sum("rejects stream_options" in r.getMessage() for r in caplog_usagetap.records) == 1


def test_a_bad_request_for_another_reason_reaches_the_caller(
    client: openai.OpenAI, server: ProviderServer, sink: Memory
) -> None:
    server.fail_next(400, body={"error": {"message": "model not found", "type": "invalid_request_error"}})
    with pytest.raises(openai.BadRequestError, match="model not found"):
        client.chat.completions.create(model="gpt-4.1", messages=MESSAGES, stream=True)
    assert len(server.requests) == 1
    assert delivered(sink) == []


def test_a_call_with_no_customer_is_recorded_and_warned_about_once(
    client: openai.OpenAI, sink: Memory, caplog_usagetap: Any
) -> None:
    client.chat.completions.create(model="gpt-4.1", messages=MESSAGES)
    client.chat.completions.create(model="gpt-4.1", messages=MESSAGES)
    assert [r.customer for r in delivered(sink)] == [None, None]
    assert sum("no customer in scope" in r.getMessage() for r in caplog_usagetap.records) == 1


# -- closing a stream right after finish_reason ---------------------------------


def test_stream_closed_right_after_finish_reason_still_records_the_usage(
    client: openai.OpenAI, server: ProviderServer, sink: Memory
) -> None:
    server.stream_delay = 0.002  # one chunk per write: the usage chunk is still unread at the break
    with client.chat.completions.create(
        model="gpt-4.1", messages=MESSAGES, stream=True, max_tokens=8
    ) as stream:
        for chunk in stream:
            assert chunk.choices
            if chunk.choices[0].finish_reason:
                break
    [record] = delivered(sink)
    assert record.status == "ok"
    assert_matches_issued(record, server)


def test_stream_closed_before_finish_reason_is_not_read_further(
    client: openai.OpenAI, server: ProviderServer, sink: Memory
) -> None:
    server.stream_delay = 0.002
    stream = client.chat.completions.create(model="gpt-4.1", messages=MESSAGES, stream=True, max_tokens=30)
    for i, _ in enumerate(stream):
        if i == 2:
            break
    stream.close()
    [record] = delivered(sink)
    assert record.status == "partial"


@pytest.mark.skipif(
    not hasattr(openai.resources.chat.Completions, "stream"),
    reason="chat.completions.stream() is not in this openai version (beta only)",
)
def test_chat_stream_helper_left_at_content_done_still_records_the_usage(
    client: openai.OpenAI, server: ProviderServer, sink: Memory
) -> None:
    server.stream_delay = 0.002
    with client.chat.completions.stream(model="gpt-4.1", messages=MESSAGES, max_tokens=6) as stream:
        for event in stream:
            if event.type == "content.done":
                break
    [record] = delivered(sink)
    assert record.status == "ok"
    assert_matches_issued(record, server)


async def test_async_stream_closed_right_after_finish_reason_still_records_the_usage(
    aclient: openai.AsyncOpenAI, server: ProviderServer, sink: Memory
) -> None:
    server.stream_delay = 0.002
    stream = await aclient.chat.completions.create(
        model="gpt-4.1", messages=MESSAGES, stream=True, max_tokens=8
    )
    async with stream:
        async for chunk in stream:
            assert chunk.choices
            if chunk.choices[0].finish_reason:
                break
    [record] = delivered(sink)
    assert record.status == "ok"
    assert_matches_issued(record, server)


# -- what is not metered --------------------------------------------------------


def test_unmetered_surfaces_pass_through_with_one_debug_log_naming_them(
    client: openai.OpenAI, server: ProviderServer, sink: Memory, caplog_usagetap: Any
) -> None:
    for _ in range(2):
        with pytest.raises(openai.NotFoundError):
            client.images.generate(model="gpt-image-1", prompt="a meter")
        with pytest.raises(openai.NotFoundError):
            client.moderations.create(model="omni-moderation-latest", input="hello")
    bodies = [r["body"] for r in server.requests]
    assert bodies[0] == {"model": "gpt-image-1", "prompt": "a meter"}, "the request went out untouched"
    messages = [r.getMessage() for r in caplog_usagetap.records if "not metered" in r.getMessage()]
    assert messages == [
        "usagetap: not metered, passed through untouched: images/generations",
        "usagetap: not metered, passed through untouched: moderations",
    ]
    assert delivered(sink) == []


@pytest.mark.skipif(
    not hasattr(openai.resources.beta.Beta, "realtime") and not hasattr(openai.OpenAI, "realtime"),
    reason="realtime is not in this openai version",
)
def test_realtime_is_named_once_as_not_metered_when_a_client_is_wrapped(
    server: ProviderServer, caplog_usagetap: Any
) -> None:
    for _ in range(2):
        usagetap.wrap(openai.OpenAI(base_url=server.openai_url, api_key="k"))
    messages = [r.getMessage() for r in caplog_usagetap.records if "not metered" in r.getMessage()]
    assert messages == ["usagetap: not metered, passed through untouched: realtime (websocket sessions)"]


def test_azure_hosts_are_provider_azure_with_the_plain_client() -> None:
    from usagetap.instrument._wrap import binding_of

    client = usagetap.wrap(openai.OpenAI(base_url="https://contoso.openai.azure.com/openai/v1/", api_key="k"))
    assert binding_of(client).provider == "azure"  # type: ignore[union-attr]
    other = usagetap.wrap(openai.OpenAI(base_url="https://openrouter.ai/api/v1", api_key="k"))
    assert binding_of(other).provider == "openrouter"  # type: ignore[union-attr]


def test_legacy_completions_on_a_server_rejecting_stream_options_still_stream(
    server: ProviderServer, sink: Memory
) -> None:
    server.reject_stream_options = True
    client = usagetap.wrap(
        openai.OpenAI(base_url=server.openai_url, api_key="k", max_retries=0), provider="vllm"
    )
    for _ in range(2):
        chunks = list(client.completions.create(model="llama-3", prompt="go on", stream=True))
        assert all(chunk.choices for chunk in chunks)
    assert ["stream_options" in r["body"] for r in server.requests] == [True, False, False]
    assert [r.status for r in delivered(sink)] == ["partial", "partial"]


def test_a_one_choice_stream_is_observed_at_its_end_from_its_first_and_last_chunks(
    client: openai.OpenAI, server: ProviderServer, sink: Memory, monkeypatch: pytest.MonkeyPatch
) -> None:
    from usagetap.instrument._streams import _closes_its_response
    from usagetap.providers.openai import usage as extract

    received: list[Any] = []
    observed: list[int] = []
    observe = extract.ChatStreamObserver.observe

    def noting(self: Any, chunk: Any) -> None:
        observed.append(len(received))
        observe(self, chunk)

    monkeypatch.setattr(extract.ChatStreamObserver, "observe", noting)
    stream = client.chat.completions.create(model="gpt-4.1", messages=MESSAGES, stream=True, max_tokens=30)
    for chunk in stream:
        received.append(chunk)
    assert len(received) == 32 and all(chunk.choices for chunk in received), "the usage chunk is hidden"
    if _closes_its_response(stream):
        assert observed == [32] * 9, "the first chunk and the last eight (usage included), at the end"
    else:  # an SDK that leaves the response open on failure: chunk by chunk, as before
        assert observed == list(range(33))
    [record] = delivered(sink)
    assert record.status == "ok" and record.output_tokens == 30
    assert_matches_issued(record, server)


def test_only_an_sdk_stream_that_closes_its_response_in_the_end_is_tapped_without_a_generator() -> None:
    from usagetap.instrument._streams import _closes_its_response

    class Response:
        def close(self) -> None:
            pass

    class Closing:
        response = Response()

        def __stream__(self) -> Any:
            try:
                yield 1
            finally:
                self.response.close()

    class LeavingOpen:
        def __stream__(self) -> Any:
            yield 1

    assert _closes_its_response(Closing())
    assert not _closes_its_response(LeavingOpen())
    assert not _closes_its_response(object())


@pytest.mark.internal_error("stream.hide")
def test_a_chunk_the_hide_check_cannot_read_is_shown_and_counted_on_the_edges_path() -> None:
    from usagetap.instrument._calls import Call
    from usagetap.instrument._streams import StreamTap, _edges
    from usagetap.providers.openai.usage import ChatStreamObserver

    class Unreadable:
        @property
        def usage(self) -> Any:
            raise RuntimeError("boom")

    usage_only = {"usage": {"prompt_tokens": 1}, "choices": []}
    chunks = [{"choices": [{"index": 0}]}, Unreadable(), usage_only, {"choices": [{"index": 0}]}]
    observer = ChatStreamObserver()
    tap = StreamTap(Call.__new__(Call), observer, hides=True)
    before = _stats.snapshot().get("internal_errors", 0)
    assert list(_edges(iter(chunks), tap, 2)) == [chunks[0], chunks[1], chunks[3]]
    assert _stats.snapshot().get("internal_errors", 0) == before + 1


def test_on_the_edges_path_hide_runs_once_per_item_and_the_observer_sees_the_kept_ones() -> None:
    from usagetap.instrument._calls import Call
    from usagetap.instrument._streams import StreamTap, _edges
    from usagetap.providers.observer import Observer

    asked: list[int] = []
    seen: list[int] = []

    class Hiding(Observer):
        def observe(self, item: int) -> None:
            seen.append(item)

        def result(self) -> None:
            return None

        def hidden(self, item: int) -> bool:
            asked.append(item)
            return item == 6

    tap = StreamTap(Call.__new__(Call), Hiding(), hides=True)
    assert list(_edges(iter(range(8)), tap, 3)) == [0, 1, 2, 3, 4, 5, 7]
    tap._observe_edges()
    assert asked == list(range(8))
    assert seen == [0, 5, 6, 7]


def _reachable_strings(roots: list[Any], limit: int = 200_000) -> set[str]:
    """The strings reachable from ``roots`` (types, modules and functions not followed)."""
    import types

    skip = (type, types.ModuleType, types.FunctionType, types.BuiltinFunctionType, types.CodeType)
    seen: set[int] = set()
    found: set[str] = set()
    todo = list(roots)
    while todo and len(seen) < limit:
        obj = todo.pop()
        if id(obj) in seen or isinstance(obj, skip):
            continue
        seen.add(id(obj))
        if isinstance(obj, str):
            found.add(obj)
        else:
            todo.extend(gc.get_referents(obj))
    return found


def test_a_queued_capture_does_not_keep_the_prompt_alive(server: ProviderServer) -> None:
    from usagetap import _runtime

    sink = Memory()
    usagetap.configure(sink=sink, commit_interval=3600, flush_interval=3600)
    client = usagetap.wrap(openai.OpenAI(base_url=server.openai_url, api_key="sk-test", max_retries=0))
    marker = "a prompt of the caller's, 7f3a9c"
    prompt = [{"role": "user", "content": marker}]
    with usagetap.customer("org_1"):
        client.chat.completions.create(model="gpt-4.1", messages=prompt)
        for _ in client.chat.completions.create(model="gpt-4.1", messages=prompt, stream=True):
            pass
    queued = [item for item, _ in _runtime.get_pipeline().buffer._items]
    assert len(queued) == 2, "both calls wait for the delivery thread"
    assert not any(marker in text for text in _reachable_strings(queued))
    assert usagetap.flush(timeout=5.0).pending == 0
    assert [(r.customer, r.status) for r in sink.records] == [("org_1", "ok"), ("org_1", "ok")]
    assert all(r.input_tokens > 0 and r.output_tokens > 0 for r in sink.records)
