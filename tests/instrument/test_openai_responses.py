"""The Responses API through the real SDK: streams, background responses, retrievals, dimensions."""

from __future__ import annotations

import gc

import openai
import pytest

import usagetap
from tests.instrument.conftest import delivered, needs_responses
from usagetap import _stats
from usagetap.sinks import Memory
from usagetap.testing import ProviderServer

pytestmark = needs_responses

MODEL = "gpt-4.1"


def assert_issued(record: usagetap.UsageRecord, server: ProviderServer) -> None:
    issued = server.issued[record.response_id]  # type: ignore[index]
    assert (record.input_tokens, record.output_tokens) == (issued.input_tokens, issued.output_tokens)
    assert (record.cache_read_tokens, record.cache_write_tokens) == (
        issued.cache_read_tokens,
        issued.cache_write_tokens,
    )
    assert record.reasoning_tokens == issued.reasoning_tokens


def test_stream_events_reach_the_caller_and_the_completed_event_is_metered(
    client: openai.OpenAI, server: ProviderServer, sink: Memory
) -> None:
    with usagetap.customer("org_s"):
        stream = client.responses.create(
            model="o4-mini", input="Stream to me", stream=True, max_output_tokens=20
        )
    assert type(stream) is openai.Stream
    events = list(stream)
    assert events[0].type == "response.created" and events[-1].type == "response.completed"
    assert sum(e.type == "response.output_text.delta" for e in events) == 15
    [record] = delivered(sink)
    assert (record.customer, record.operation, record.status) == ("org_s", "responses", "ok")
    assert record.response_id == events[-1].response.id
    assert record.reasoning_tokens == 5
    assert_issued(record, server)


def test_stream_broken_before_completion_yields_one_partial_record(
    client: openai.OpenAI, sink: Memory
) -> None:
    with client.responses.create(
        model=MODEL, input="Stream to me", stream=True, max_output_tokens=40
    ) as stream:
        for i, _ in enumerate(stream):
            if i == 4:
                break
    gc.collect()
    [record] = delivered(sink)
    assert record.status == "partial"
    assert record.response_id is not None and record.response_id.startswith("resp_")


def test_prompt_cache_writes_then_reads(client: openai.OpenAI, server: ProviderServer, sink: Memory) -> None:
    long_input = "word " * 200
    client.responses.create(model=MODEL, input=long_input)
    client.responses.create(model=MODEL, input=long_input)
    first, second = delivered(sink)
    assert (first.cache_write_tokens, first.cache_read_tokens) == (192, 0)
    assert (second.cache_write_tokens, second.cache_read_tokens) == (0, 192)
    for record in (first, second):
        assert_issued(record, server)


def test_web_search_calls_are_a_dimension(client: openai.OpenAI, sink: Memory) -> None:
    client.responses.create(model=MODEL, input="What happened today?", tools=[{"type": "web_search"}])
    client.responses.create(model=MODEL, input="No tools")
    with_search, without = delivered(sink)
    assert with_search.dimensions["web_search_calls"] == 1
    assert "web_search_calls" not in without.dimensions


def test_background_response_is_billed_once_to_the_customer_who_created_it(
    client: openai.OpenAI, server: ProviderServer, sink: Memory
) -> None:
    with usagetap.customer("org_bg", feature="research"):
        queued = client.responses.create(model="o3", input="A long task", background=True)
    assert queued.status == "queued" and queued.usage is None
    assert delivered(sink) == [], "a queued response has no usage to bill yet"
    in_progress = client.responses.retrieve(queued.id)
    assert in_progress.status == "in_progress"
    assert delivered(sink) == []
    with usagetap.customer("poller"):
        done = client.responses.retrieve(queued.id)
        again = client.responses.retrieve(queued.id)
    assert done.status == again.status == "completed"
    [record] = delivered(sink)
    assert (record.customer, record.dimensions["feature"]) == ("org_bg", "research")
    assert (record.request_model, record.model, record.response_id) == ("o3", "o3", queued.id)
    assert record.status == "ok"
    assert_issued(record, server)


def test_retrieving_a_response_already_metered_does_not_bill_it_again(
    client: openai.OpenAI, server: ProviderServer, sink: Memory
) -> None:
    response = client.responses.create(model=MODEL, input="Once")
    client.responses.retrieve(response.id)
    raw = client.responses.with_raw_response.retrieve(response.id)
    assert raw.parse().id == response.id
    [record] = delivered(sink)
    assert record.response_id == response.id
    assert _stats.snapshot()["captured"] == 3, "the retrievals were captured, and found already metered"


def test_a_response_created_elsewhere_is_billed_to_the_scope_of_its_retrieval(
    client: openai.OpenAI, server: ProviderServer, sink: Memory
) -> None:
    elsewhere = openai.OpenAI(base_url=server.openai_url, api_key="sk-other")
    queued = elsewhere.responses.create(model="o3", input="Another process made this", background=True)
    with usagetap.customer("org_poll"):
        while client.responses.retrieve(queued.id).status != "completed":
            pass
    [record] = delivered(sink)
    assert (record.customer, record.request_model, record.model) == ("org_poll", None, "o3")
    assert_issued(record, server)


def test_a_cancelled_background_response_makes_no_record(
    client: openai.OpenAI, server: ProviderServer, sink: Memory
) -> None:
    queued = client.responses.create(model="o3", input="Never mind", background=True)
    cancelled = client.responses.cancel(queued.id)
    assert cancelled.status == "cancelled"
    assert client.responses.retrieve(queued.id).status == "cancelled"
    assert server.issued == {}
    assert delivered(sink) == []


@pytest.mark.parametrize("closed", [True, False], ids=["broken-off", "still-open"])
def test_a_background_stream_is_billed_to_its_creator_when_retrieved(
    client: openai.OpenAI, server: ProviderServer, sink: Memory, closed: bool
) -> None:
    """Broken off and closed, or still open: the creator is remembered as soon as the first event passes."""
    with usagetap.customer("org_stream"):
        stream = client.responses.create(model=MODEL, input="Long", background=True, stream=True)
        first = next(iter(stream))
        if closed:
            stream.close()
    assert first.type == "response.created"
    assert delivered(sink) == [], "the response goes on in the background: no partial record"
    done = client.responses.retrieve(first.response.id)
    assert done.status == "completed"
    [record] = delivered(sink)
    assert (record.customer, record.request_model) == ("org_stream", MODEL)
    assert_issued(record, server)
    stream.close()


def test_stream_of_a_stored_response_from_a_sequence_number(
    client: openai.OpenAI, server: ProviderServer, sink: Memory
) -> None:
    queued = client.responses.create(model=MODEL, input="Resume me", background=True)
    with client.responses.stream(response_id=queued.id, starting_after=5) as stream:
        numbers = [event.sequence_number for event in stream]
    assert numbers[0] == 6
    [record] = delivered(sink)
    assert record.response_id == queued.id
    assert_issued(record, server)


def test_a_server_without_usage_yields_a_partial_record(
    client: openai.OpenAI, server: ProviderServer, sink: Memory
) -> None:
    server.report_usage = False
    client.responses.create(model=MODEL, input="No usage")
    list(client.responses.create(model=MODEL, input="No usage", stream=True))
    assert [r.status for r in delivered(sink)] == ["partial", "partial"]


# -- async --------------------------------------------------------------------


async def test_async_background_response_is_billed_once_to_its_creator(
    aclient: openai.AsyncOpenAI, server: ProviderServer, sink: Memory
) -> None:
    with usagetap.customer("org_async_bg"):
        queued = await aclient.responses.create(model="o3", input="A long task", background=True)
    statuses = []
    for _ in range(4):
        statuses.append((await aclient.responses.retrieve(queued.id)).status)
    assert statuses == ["in_progress", "completed", "completed", "completed"]
    [record] = delivered(sink)
    assert record.customer == "org_async_bg"
    assert_issued(record, server)


async def test_async_stream_broken_before_completion_is_partial(
    aclient: openai.AsyncOpenAI, sink: Memory
) -> None:
    stream = await aclient.responses.create(model=MODEL, input="Stream", stream=True, max_output_tokens=30)
    async with stream:
        async for event in stream:
            if event.type == "response.output_text.delta":
                break
    [record] = delivered(sink)
    assert record.status == "partial"


async def test_async_helper_final_response_matches_the_record(
    aclient: openai.AsyncOpenAI, server: ProviderServer, sink: Memory
) -> None:
    async with aclient.responses.stream(model="o4-mini", input="Helper") as stream:
        final = await stream.get_final_response()
    assert final.status == "completed"
    [record] = delivered(sink)
    assert record.response_id == final.id
    assert record.input_tokens == final.usage.input_tokens  # type: ignore[union-attr]
    assert_issued(record, server)


def test_error_mid_stream_reaches_the_caller_and_yields_one_partial_record(
    client: openai.OpenAI, server: ProviderServer, sink: Memory
) -> None:
    server.stream_error_after = 3
    stream = client.responses.create(model=MODEL, input="Fail half way", stream=True)
    seen = []
    with pytest.raises(openai.APIError, match="injected mid-stream failure"):
        for event in stream:
            seen.append(event.type)
    assert seen == ["response.created", "response.in_progress", "response.output_item.added"]
    [record] = delivered(sink)
    assert record.status == "partial"
    assert record.response_id is not None and record.response_id.startswith("resp_")


def test_the_stream_observer_is_handed_the_first_and_the_final_events_when_the_stream_ends(
    client: openai.OpenAI, server: ProviderServer, sink: Memory, monkeypatch: pytest.MonkeyPatch
) -> None:
    from usagetap.instrument._streams import _closes_its_response
    from usagetap.providers.openai import usage as extract

    received: list[object] = []
    observed: list[tuple[str, int]] = []
    observe = extract.ResponsesStreamObserver.observe

    def noting(
        self: extract.ResponsesStreamObserver, event: openai.types.responses.ResponseStreamEvent
    ) -> None:
        observed.append((event.type, len(received)))
        observe(self, event)

    monkeypatch.setattr(extract.ResponsesStreamObserver, "observe", noting)
    with usagetap.customer("org_s"):
        stream = client.responses.create(model=MODEL, input="Stream to me", stream=True, max_output_tokens=20)
        for event in stream:
            received.append(event)
    n = len(received)
    assert n > 20
    if _closes_its_response(stream):
        assert observed == [("response.created", n), ("response.completed", n)], "at the end, not per event"
    else:  # an SDK that leaves the response open on failure: event by event, the kinds it names
        assert observed[0] == ("response.created", 0) and observed[-1] == ("response.completed", n - 1)
        assert {kind for kind, _ in observed} <= extract.ResponsesStreamObserver.kinds
    [record] = delivered(sink)
    assert (record.customer, record.status) == ("org_s", "ok")
    assert_issued(record, server)
