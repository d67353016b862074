"""Pure extraction from recorded Anthropic messages, streams and batch results."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, Optional

import pytest

from tests.providers.conftest import FIXTURES
from usagetap.providers.anthropic import usage as extract


def _jsonl(name: str) -> list[Any]:
    return [json.loads(line) for line in (FIXTURES / name).read_text().splitlines() if line.strip()]


def test_input_includes_cache_reads_and_writes_with_the_ttl_split(load_json: Callable[[str], Any]) -> None:
    usage = extract.message_usage(load_json("anthropic/message_cache_ttl.json"))
    assert usage.reported
    assert (usage.model, usage.response_id) == ("claude-sonnet-4-5-20250929", "msg_01Hb6CAgJ4DkDuGeuZmcFYUo")
    assert usage.input_tokens == 50 + 1800 + 556
    assert (usage.cache_read_tokens, usage.cache_write_tokens, usage.output_tokens) == (1800, 556, 503)
    assert usage.dimensions == {
        "cache_write_5m_tokens": 456,
        "cache_write_1h_tokens": 100,
        "service_tier": "standard",
    }


def test_a_message_without_cache_fields(load_json: Callable[[str], Any]) -> None:
    usage = extract.message_usage(load_json("anthropic/message_minimal.json"))
    assert (usage.input_tokens, usage.output_tokens, usage.cache_read_tokens, usage.cache_write_tokens) == (
        12,
        6,
        0,
        0,
    )
    assert usage.reasoning_tokens == 0
    assert usage.dimensions == {}


def test_server_tools_thinking_and_labels(load_json: Callable[[str], Any]) -> None:
    usage = extract.message_usage(load_json("anthropic/message_web_search_thinking.json"))
    assert (usage.input_tokens, usage.output_tokens, usage.reasoning_tokens) == (6039, 931, 402)
    assert usage.dimensions == {
        "web_search_requests": 1,
        "web_fetch_requests": 1,
        "service_tier": "priority",
        "inference_geo": "us",
    }


def test_compaction_iterations_are_billed_on_top_of_the_top_level_counts(
    load_json: Callable[[str], Any],
) -> None:
    usage = extract.message_usage(load_json("anthropic/beta_message_compaction.json"))
    assert (usage.input_tokens, usage.output_tokens) == (23000 + 180000, 1000 + 3500)


def test_sdk_objects_and_json_give_the_same_usage(load_json: Callable[[str], Any]) -> None:
    from anthropic.types import Message

    for name in ("message_cache_ttl.json", "message_web_search_thinking.json", "message_minimal.json"):
        data = {**load_json(f"anthropic/{name}"), "content": []}  # content types vary with the SDK version
        assert extract.message_usage(Message.model_validate(data)) == extract.message_usage(data)


def test_a_split_that_does_not_add_up_is_left_out(load_json: Callable[[str], Any]) -> None:
    data = load_json("anthropic/message_cache_ttl.json")
    data["usage"]["cache_creation"]["ephemeral_1h_input_tokens"] = 7
    usage = extract.message_usage(data)
    assert usage.cache_write_tokens == 556
    assert "cache_write_1h_tokens" not in usage.dimensions and "cache_write_5m_tokens" not in usage.dimensions


def test_stream_takes_input_from_message_start_and_output_from_message_delta(
    load_sse: Callable[[str], list[Any]],
) -> None:
    observer = extract.MessageStreamObserver()
    for event in load_sse("anthropic/stream_basic.sse"):
        observer.observe(event)
    usage = observer.result()
    assert usage.reported
    assert usage.response_id == "msg_1nZdL29xx5MUA1yADyHTEsnR8uuvGzszyY"
    assert (usage.input_tokens, usage.output_tokens) == (25, 15)


def test_stream_revised_counts_in_message_delta_win(load_sse: Callable[[str], list[Any]]) -> None:
    observer = extract.MessageStreamObserver()
    for event in load_sse("anthropic/stream_web_search_cached.sse"):
        observer.observe(event)
    usage = observer.result()
    assert usage.input_tokens == 10682 + 4096 + 1200
    assert (usage.cache_read_tokens, usage.cache_write_tokens, usage.output_tokens) == (4096, 1200, 510)
    assert usage.dimensions == {
        "cache_write_5m_tokens": 0,
        "cache_write_1h_tokens": 1200,
        "web_search_requests": 1,
        "service_tier": "standard",
    }


def test_cumulative_message_deltas_are_never_summed(load_sse: Callable[[str], list[Any]]) -> None:
    events = load_sse("anthropic/stream_basic.sse")
    delta = next(e for e in events if e["type"] == "message_delta")
    early = {**delta, "usage": {"output_tokens": 9}}
    observer = extract.MessageStreamObserver()
    for event in [*events[:-2], early, delta, events[-1]]:
        observer.observe(event)
    assert observer.result().output_tokens == 15


def test_stream_ended_before_message_delta_is_unreported_with_what_message_start_said(
    load_sse: Callable[[str], list[Any]],
) -> None:
    observer = extract.MessageStreamObserver()
    for event in load_sse("anthropic/stream_web_search_cached.sse")[:4]:
        observer.observe(event)
    usage = observer.result()
    assert not usage.reported
    assert usage.input_tokens == 2679 + 4096 + 1200
    assert usage.output_tokens == 3
    assert usage.model == "claude-sonnet-4-5-20250929"


def test_stream_with_no_events_is_unreported() -> None:
    usage = extract.MessageStreamObserver().result()
    assert not usage.reported
    assert (usage.input_tokens, usage.output_tokens, usage.response_id) == (0, 0, None)


def test_stream_observer_reads_sdk_event_objects(load_sse: Callable[[str], list[Any]]) -> None:
    from anthropic.types import RawMessageStreamEvent
    from pydantic import TypeAdapter

    adapter: TypeAdapter[Any] = TypeAdapter(RawMessageStreamEvent)
    objects, dicts = extract.MessageStreamObserver(), extract.MessageStreamObserver()
    for event in load_sse("anthropic/stream_web_search_cached.sse"):
        if event["type"] not in extract.MessageStreamObserver.kinds:  # the only ones it reads
            continue
        objects.observe(adapter.validate_python(event))
        dicts.observe(event)
    assert objects.result() == dicts.result()


def test_batch_results_meter_succeeded_lines_keyed_by_batch_and_custom_id() -> None:
    lines = _jsonl("anthropic/batch_results.jsonl")
    assert [extract.is_succeeded(line) for line in lines] == [True, True, False, False]
    usage = extract.batch_item_usage(lines[0], "msgbatch_013Zva2CMHLNnXjNJJKqJ2EF")
    assert usage.response_id == "msgbatch_013Zva2CMHLNnXjNJJKqJ2EF:my-second-request"
    assert (usage.input_tokens, usage.output_tokens) == (11, 36)
    assert usage.dimensions == {"batch": True, "service_tier": "batch"}


@pytest.mark.parametrize(
    ("method", "url", "kind"),
    [
        ("post", "/v1/messages", ("messages", None)),
        ("post", "/v1/messages?beta=true", ("messages", None)),
        ("post", "/v1/messages/count_tokens", None),
        ("post", "/v1/messages/count_tokens?beta=true", None),
        ("post", "/v1/messages/batches", ("batches", None)),
        ("post", "/v1/messages/batches?beta=true", ("batches", None)),
        ("get", "/v1/messages/batches/msgbatch_1", None),
        (
            "get",
            "https://api.anthropic.com/v1/messages/batches/msgbatch_1/results",
            ("batch_results", "msgbatch_1"),
        ),
        ("get", "/v1/messages/batches/msgbatch_1/results?beta=true", ("batch_results", "msgbatch_1")),
        ("post", "/v1/complete", None),
        ("get", "/v1/models", None),
    ],
)
def test_classify(method: str, url: str, kind: Any) -> None:
    assert extract.classify(method, url) == kind


def test_non_integer_counts_are_refused() -> None:
    with pytest.raises(TypeError, match="input_tokens"):
        extract.message_usage({"type": "message", "usage": {"input_tokens": "12", "output_tokens": 1}})


def test_stream_usage_models_are_read_with_their_extra_fields() -> None:
    pydantic = pytest.importorskip("pydantic")

    class Usage(pydantic.BaseModel):
        model_config = pydantic.ConfigDict(extra="allow")
        input_tokens: Optional[int] = None
        output_tokens: Optional[int] = None

    start = Usage(input_tokens=10, output_tokens=1, cache_read_input_tokens=30)
    delta = Usage(output_tokens=7, cache_creation_input_tokens=5, service_tier="priority")
    observer = extract.MessageStreamObserver()
    message = {"id": "msg_1", "model": "claude-x", "usage": start}
    observer.observe({"type": "message_start", "message": message})
    observer.observe({"type": "message_delta", "usage": delta})
    usage = observer.result()
    assert usage.reported
    assert (usage.input_tokens, usage.cache_read_tokens, usage.cache_write_tokens) == (45, 30, 5)
    assert usage.output_tokens == 7
    assert usage.dimensions["service_tier"] == "priority"


def test_advisor_turns_are_left_out_of_the_call_own_counts(load_json: Callable[[str], Any]) -> None:
    usage = extract.message_usage(load_json("anthropic/message_advisor.json"))
    assert (usage.model, usage.input_tokens, usage.output_tokens) == ("claude-sonnet-4-5", 1830 + 400, 97)
    assert (usage.cache_read_tokens, usage.reasoning_tokens) == (400, 12)


def test_each_advisor_turn_is_usage_of_its_own_model(load_json: Callable[[str], Any]) -> None:
    first, second = extract.message_advisors(load_json("anthropic/message_advisor.json"))
    assert (first.model, first.response_id) == ("claude-opus-4-1", "msg_01AdvTestFixture7Qx:advisor:1")
    assert (first.input_tokens, first.output_tokens, first.cache_write_tokens) == (1900 + 64, 31, 64)
    assert first.dimensions == {
        "cache_write_5m_tokens": 64,
        "cache_write_1h_tokens": 0,
        "service_tier": "standard",
    }
    assert second.response_id == "msg_01AdvTestFixture7Qx:advisor:2"
    assert (second.input_tokens, second.output_tokens, second.cache_read_tokens) == (2010 + 64, 9, 64)
    assert second.reasoning_tokens == 0


def test_a_message_without_iterations_has_no_advisor_turns(load_json: Callable[[str], Any]) -> None:
    assert extract.message_advisors(load_json("anthropic/message_cache_ttl.json")) == []


def test_stream_observer_reports_the_advisor_turns_of_the_last_delta(
    load_sse: Callable[[str], list[Any]], load_json: Callable[[str], Any]
) -> None:
    observer = extract.MessageStreamObserver()
    for event in load_sse("anthropic/stream_advisor.sse"):
        observer.observe(event)
    message = load_json("anthropic/message_advisor.json")
    assert observer.result() == extract.message_usage(message)
    assert observer.advisors() == extract.message_advisors(message)


@pytest.mark.parametrize(("name", "sse"), [("message_advisor.json", False), ("stream_advisor.sse", True)])
def test_a_raw_body_gives_the_call_and_its_advisor_turns(
    name: str, sse: bool, load_json: Callable[[str], Any]
) -> None:
    body = (FIXTURES / "anthropic" / name).read_bytes()
    message = load_json("anthropic/message_advisor.json")
    assert extract.body_usage(body, sse) == extract.message_usage(message)
    assert extract.body_advisors(body, sse) == extract.message_advisors(message)


def test_a_raw_body_cut_short_is_unreported() -> None:
    assert not extract.body_usage(b'{"type": "message", "usage": {"input_', False).reported
    assert not extract.body_usage(None, True).reported


# -- code execution ----------------------------------------------------------------------------


def _code_message(usage: dict[str, Any], names: tuple[str, ...]) -> dict[str, Any]:
    blocks: list[dict[str, Any]] = []
    for n, name in enumerate(names):
        blocks.append({"type": "server_tool_use", "id": f"srvtoolu_{n}", "name": name, "input": {}})
        blocks.append({"type": f"{name}_tool_result", "tool_use_id": f"srvtoolu_{n}", "content": {}})
    return {
        "id": "msg_code_1",
        "type": "message",
        "model": "claude-sonnet-4-6",
        "content": [*blocks, {"type": "text", "text": "42"}],
        "container": {"id": "container_7f3a", "expires_at": "2026-12-05T10:00:00Z"},
        "usage": {"input_tokens": 900, "output_tokens": 120, **usage},
    }


def test_each_code_execution_call_block_counts_once_and_other_server_tools_do_not() -> None:
    names = ("bash_code_execution", "text_editor_code_execution", "code_execution", "web_search")
    usage = extract.message_usage(_code_message({"server_tool_use": {"web_search_requests": 1}}, names))
    assert usage.dimensions["code_execution_requests"] == 3 and usage.dimensions["web_search_requests"] == 1
    assert usage.dimensions["container_id"] == "container_7f3a"


def test_a_code_execution_count_the_usage_reports_wins_over_the_blocks() -> None:
    reported = {"server_tool_use": {"web_search_requests": 0, "code_execution_requests": 5}}
    usage = extract.message_usage(_code_message(reported, ("bash_code_execution", "bash_code_execution")))
    assert usage.dimensions["code_execution_requests"] == 5


def test_free_code_execution_is_marked_only_on_calls_that_ran_code() -> None:
    ran = extract.message_usage(_code_message({}, ("bash_code_execution",)), code_execution_free=True)
    idle = extract.message_usage(_code_message({}, ()), code_execution_free=True)
    assert ran.dimensions["code_execution_free"] is True and "code_execution_free" not in idle.dimensions


@pytest.mark.parametrize(
    ("body", "offer"),
    [
        ({"tools": [{"type": "code_execution_20250825", "name": "code_execution"}]}, False),
        ({"tools": [{"type": "web_search_20260209", "name": "web_search"}]}, True),
        ({"tools": [{"type": "web_fetch_20260318", "name": "web_fetch"}]}, True),
        ({"tools": [{"type": "web_search_20250305", "name": "web_search"}]}, None),
        ({"tools": [{"type": "code_execution_20250522"}, {"type": "web_fetch_20250910"}]}, False),
        ({"container": "container_7f3a"}, False),
        ({"tools": [{"name": "get_weather", "input_schema": {}}]}, None),
        ({}, None),
    ],
)
def test_code_execution_offer_of_a_request(body: dict[str, Any], offer: Optional[bool]) -> None:
    assert extract.code_execution_offer({"model": "claude-sonnet-4-6", **body}) is offer


def _code_stream(name: str) -> list[dict[str, Any]]:
    block = {"type": "server_tool_use", "id": "srvtoolu_9", "name": name, "input": {}}
    container = {"id": "container_9b", "expires_at": "2026-12-05T10:00:00Z"}
    return [
        {"type": "message_start", "message": {"id": "msg_s1", "model": "claude-sonnet-4-6",
                                              "usage": {"input_tokens": 50, "output_tokens": 1}}},
        {"type": "content_block_start", "index": 0, "content_block": block},
        {"type": "content_block_stop", "index": 0},
        {"type": "message_delta", "delta": {"stop_reason": "end_turn", "container": container},
         "usage": {"output_tokens": 30, "server_tool_use": {"web_search_requests": 0}}},
    ]  # fmt: skip


def test_the_code_execution_stream_observer_counts_calls_and_takes_the_container_from_message_delta() -> None:
    observer = extract.CodeExecutionStreamObserver(code_execution_free=True)
    for event in _code_stream("bash_code_execution"):
        observer.observe(event)
    usage = observer.result()
    assert (usage.input_tokens, usage.output_tokens) == (50, 30)
    assert (
        usage.dimensions["code_execution_requests"] == 1 and usage.dimensions["code_execution_free"] is True
    )
    assert usage.dimensions["container_id"] == "container_9b"


def test_a_raw_event_counter_counts_code_execution_calls_and_hides_nothing() -> None:
    counter = extract.CodeExecutionCounter()
    events = [
        f"event: {event['type']}\ndata: {json.dumps(event)}\n\n".encode()
        for event in _code_stream("text_editor_code_execution") + _code_stream("web_fetch")
    ]
    assert [counter(event) for event in events] == [False] * len(events)
    assert counter.uses == 1
