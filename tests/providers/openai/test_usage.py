"""Pure extraction from recorded OpenAI responses and streams."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from tests.instrument.conftest import needs_responses
from tests.providers.conftest import FIXTURES
from usagetap import _stats
from usagetap.providers.openai import usage as extract


def test_chat_completion_takes_counts_as_reported(load_json: Callable[[str], Any]) -> None:
    usage = extract.chat_usage(load_json("openai/chat_completion.json"))
    assert usage.reported
    assert usage.model == "gpt-4o-2024-08-06"
    assert usage.response_id == "chatcmpl-B9MHDbslfkBeAs8l4bebGdFOJ6PeG"
    assert (usage.input_tokens, usage.output_tokens, usage.cache_read_tokens) == (1117, 46, 1024)
    assert usage.reasoning_tokens == 0
    assert usage.dimensions == {"service_tier": "default"}


def test_reasoning_audio_and_service_tier(load_json: Callable[[str], Any]) -> None:
    usage = extract.chat_usage(load_json("openai/chat_completion_reasoning_audio.json"))
    assert (usage.input_tokens, usage.output_tokens) == (2048, 1500)
    assert usage.cache_read_tokens == 1920
    assert usage.reasoning_tokens == 1408
    assert usage.dimensions == {"service_tier": "flex", "input_audio_tokens": 12, "output_audio_tokens": 7}


def test_missing_usage_is_marked_unreported(load_json: Callable[[str], Any]) -> None:
    usage = extract.chat_usage(load_json("openai/chat_completion_compat_no_usage.json"))
    assert not usage.reported
    assert usage.model == "llama3.1:8b"
    assert usage.input_tokens == usage.output_tokens == 0


def test_sdk_objects_and_json_give_the_same_usage(load_json: Callable[[str], Any]) -> None:
    from openai.types.chat import ChatCompletion
    from pydantic import ValidationError

    data = load_json("openai/chat_completion_reasoning_audio.json")
    try:
        completion = ChatCompletion.model_validate(data)
    except ValidationError:  # an openai version that refuses the label ("flex"): compared without it
        data.pop("service_tier")
        completion = ChatCompletion.model_validate(data)
    assert extract.chat_usage(completion) == extract.chat_usage(data)


def test_stream_usage_comes_from_the_final_chunk(load_sse: Callable[[str], list[Any]]) -> None:
    chunks = load_sse("openai/chat_stream_include_usage.sse")
    observer = extract.ChatStreamObserver()
    hidden = []
    for chunk in chunks:
        observer.observe(chunk)
        hidden.append(observer.hidden(chunk))
    assert hidden == [False, False, False, False, True]
    assert not observer.wants_more()
    usage = observer.result()
    assert usage.reported
    assert usage.response_id == "chatcmpl-BQ5yUJYgOdKgYF7pQ4EhlAb2lJ1xi"
    assert usage.model == "gpt-4.1-2025-04-14"
    assert (usage.input_tokens, usage.output_tokens, usage.cache_read_tokens) == (1306, 3, 1152)


def test_stream_without_usage_is_unreported(load_sse: Callable[[str], list[Any]]) -> None:
    observer = extract.ChatStreamObserver()
    for chunk in load_sse("openai/chat_stream_no_usage.sse"):
        observer.observe(chunk)
        assert not observer.hidden(chunk)
    usage = observer.result()
    assert not usage.reported
    assert usage.model == "gpt-4.1-mini-2025-04-14"


def test_repeated_cumulative_usage_keeps_the_last(load_sse: Callable[[str], list[Any]]) -> None:
    chunks = load_sse("openai/chat_stream_include_usage.sse")
    observer = extract.ChatStreamObserver()
    early = dict(chunks[1], usage={"prompt_tokens": 1306, "completion_tokens": 1, "total_tokens": 1307})
    for chunk in [chunks[0], early, *chunks[2:]]:
        observer.observe(chunk)
    assert observer.result().output_tokens == 3


@pytest.mark.parametrize(
    ("method", "path", "operation"),
    [
        ("post", "/chat/completions", "chat"),
        ("POST", "/responses", "responses"),
        ("post", "/embeddings", "embeddings"),
        ("post", "/completions", "completions"),
        ("post", "/responses/compact", "responses.compact"),
        ("get", "/chat/completions", None),
        ("post", "/audio/speech", None),
        ("post", "/images/generations", None),
        ("post", "/responses/input_tokens", None),
        ("post", "/deployments/my-gpt4o/chat/completions", "chat"),
        ("post", "/deployments/emb/embeddings", "embeddings"),
        ("post", "/openai/v1/responses", "responses"),
    ],
)
def test_operation_for(method: str, path: str, operation: str | None) -> None:
    assert extract.operation_for(method, path) == operation


@pytest.mark.parametrize(
    ("method", "path", "surface"),
    [
        ("get", "/responses/resp_123", extract.Surface("responses", "resp_123")),
        ("post", "/responses/resp_123/cancel", extract.Surface("responses", "resp_123")),
        ("get", "/openai/responses/resp_9", extract.Surface("responses", "resp_9")),
        ("get", "/responses/resp_123/input_items", None),
        ("delete", "/responses/resp_123", None),
        ("post", "/responses/resp_123", None),
        ("get", "/responses/resp_123/cancel", None),
    ],
)
def test_stored_response_surfaces(method: str, path: str, surface: extract.Surface | None) -> None:
    assert extract.surface_for(method, path) == surface


def test_non_integer_counts_are_refused() -> None:
    with pytest.raises(TypeError, match="prompt_tokens"):
        extract.chat_usage({"usage": {"prompt_tokens": "12", "completion_tokens": 1}})


# -- chat-compatible servers --------------------------------------------------------------------


def test_cache_writes_reported_by_a_compatible_server(load_json: Callable[[str], Any]) -> None:
    usage = extract.chat_usage(load_json("openai/chat_completion_openrouter_cache_write.json"))
    assert (usage.input_tokens, usage.cache_read_tokens, usage.cache_write_tokens) == (194, 0, 100)
    assert usage.model == "anthropic/claude-sonnet-4"


def test_deepseek_cache_hits_are_cache_reads(load_json: Callable[[str], Any]) -> None:
    usage = extract.chat_usage(load_json("openai/chat_completion_deepseek.json"))
    assert (usage.input_tokens, usage.cache_read_tokens, usage.output_tokens) == (1216, 1152, 11)


def test_azure_stream_takes_id_and_model_from_the_completion_chunks(
    load_sse: Callable[[str], list[Any]],
) -> None:
    observer = extract.ChatStreamObserver()
    hidden = []
    for chunk in load_sse("openai/chat_stream_azure_content_filter.sse"):
        observer.observe(chunk)
        hidden.append(observer.hidden(chunk))
    assert hidden == [False, False, False, False, True], (
        "only the usage chunk is hidden, not Azure's filter chunk"
    )
    usage = observer.result()
    assert (usage.response_id, usage.model) == ("chatcmpl-BQ8wF7jKpG3sLdT2fuM9a1XcYzE0r", "gpt-4o-2024-11-20")
    assert (usage.input_tokens, usage.output_tokens) == (9, 2)


def test_finished_stream_wants_the_usage_chunk_that_follows(load_sse: Callable[[str], list[Any]]) -> None:
    chunks = load_sse("openai/chat_stream_include_usage.sse")
    observer = extract.ChatStreamObserver()
    wants = []
    for chunk in chunks:
        observer.observe(chunk)
        wants.append(observer.wants_more())
    assert wants == [False, False, False, True, False]


def test_with_two_choices_the_stream_is_finished_when_both_are() -> None:
    observer = extract.ChatStreamObserver(choices=2)
    observer.observe({"id": "c", "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
    assert not observer.wants_more()
    observer.observe({"id": "c", "choices": [{"index": 1, "delta": {}, "finish_reason": "length"}]})
    assert observer.wants_more()


def test_a_whole_float_total_is_read_as_its_integer_like_every_count() -> None:
    usage = extract.chat_usage(
        {"usage": {"prompt_tokens": 21, "completion_tokens": 9, "total_tokens": 187.0}}
    )
    assert (usage.output_tokens, usage.reasoning_tokens) == (166, 157)


def test_thinking_only_total_tokens_shows_is_billed_as_reasoning_output(
    load_json: Callable[[str], Any],
) -> None:
    usage = extract.chat_usage(load_json("openai/chat_completion_gemini_hidden_thoughts.json"))
    assert (usage.input_tokens, usage.output_tokens, usage.reasoning_tokens) == (21, 187 - 21, 187 - 21 - 9)


@pytest.mark.parametrize(
    "total", [30, 29, None, "187", 187.5], ids=["equal", "smaller", "missing", "str", "float"]
)
def test_a_total_that_is_not_a_larger_int_leaves_the_output_as_reported(total: object) -> None:
    usage = extract.chat_usage(
        {"usage": {"prompt_tokens": 21, "completion_tokens": 9, "total_tokens": total}}
    )
    assert (usage.output_tokens, usage.reasoning_tokens, usage.issue) == (9, 0, None)
    assert (
        extract.chat_usage(
            {"usage": {"prompt_tokens": 21, "completion_tokens": 9, "total_tokens": 187}}
        ).output_tokens
        == 166
    )


def test_xai_reasoning_outside_completion_tokens_is_output_once(load_json: Callable[[str], Any]) -> None:
    usage = extract.chat_usage(load_json("openai/chat_completion_xai_reasoning.json"))
    assert (usage.input_tokens, usage.cache_read_tokens) == (28, 16)
    assert (usage.output_tokens, usage.reasoning_tokens) == (6 + 313, 313)


def test_together_top_level_cached_tokens_are_cache_reads(load_json: Callable[[str], Any]) -> None:
    usage = extract.chat_usage(load_json("openai/chat_completion_together_cached.json"))
    assert (usage.input_tokens, usage.cache_read_tokens, usage.output_tokens) == (612, 512, 3)


def test_deepseek_hits_plus_misses_are_the_input_when_prompt_tokens_is_absent() -> None:
    usage = extract.chat_usage({"usage": {"prompt_cache_hit_tokens": 64, "prompt_cache_miss_tokens": 9}})
    assert (usage.input_tokens, usage.cache_read_tokens) == (73, 64)


def test_what_the_provider_charged_is_kept_as_provider_cost(load_json: Callable[[str], Any]) -> None:
    openrouter = extract.chat_usage(load_json("openai/chat_completion_openrouter_reasoning_cost.json"))
    xai = extract.chat_usage(load_json("openai/chat_completion_xai_reasoning.json"))
    assert openrouter.dimensions == {"provider_cost": 0.0036875}
    assert xai.dimensions == {"provider_cost": 1602500 / 1e10}


def test_groq_legacy_stream_usage_under_x_groq_is_read_from_the_last_chunk(
    load_sse: Callable[[str], list[Any]],
) -> None:
    observer = extract.ChatStreamObserver()
    for chunk in load_sse("openai/chat_stream_groq_x_groq_usage.sse"):
        observer.observe(chunk)
    assert not observer.wants_more()
    usage = observer.result()
    assert usage.reported
    assert (usage.input_tokens, usage.output_tokens, usage.model) == (24, 6, "llama-3.1-8b-instant")


@pytest.mark.parametrize("value", ["n/a", [12, 3], 15], ids=["str", "list", "int"])
@pytest.mark.parametrize(
    ("reader", "body"),
    [
        (extract.chat_usage, {"id": "c-1", "model": "m"}),
        (extract.embedding_usage, {"model": "m"}),
        (extract.responses_usage, {"id": "c-1", "model": "m", "status": "completed"}),
    ],
    ids=["chat", "embeddings", "responses"],
)
@pytest.mark.internal_error("usage")
def test_usage_that_is_not_an_object_is_flagged_never_a_silent_zero(
    reader: Callable[[Any], Any], body: dict[str, Any], value: object
) -> None:
    usage = reader({**body, "usage": value})
    assert usage.issue == f"usage is a {type(value).__name__}, not an object"
    assert usage.model == "m"
    assert _stats.snapshot()["internal_errors"] == 1


# -- legacy completions ------------------------------------------------------------------------


def test_legacy_completion(load_json: Callable[[str], Any]) -> None:
    usage = extract.chat_usage(load_json("openai/completion.json"))
    assert (usage.response_id, usage.model) == ("cmpl-uqkvlQyYK7bGYrRHQ0eXlWi7", "gpt-3.5-turbo-instruct")
    assert (usage.input_tokens, usage.output_tokens) == (5, 7)


def test_legacy_completion_stream_usage_chunk(load_sse: Callable[[str], list[Any]]) -> None:
    observer = extract.ChatStreamObserver()
    hidden = []
    for chunk in load_sse("openai/completions_stream_include_usage.sse"):
        observer.observe(chunk)
        hidden.append(observer.hidden(chunk))
    assert hidden == [False, False, False, True]
    usage = observer.result()
    assert (usage.input_tokens, usage.output_tokens, usage.response_id) == (
        5,
        4,
        "cmpl-7iA7iJjj8V2zOkCGvWF2hAkDWBQZe",
    )


# -- embeddings --------------------------------------------------------------------------------


def test_embeddings_bill_input_tokens_and_have_no_response_id(load_json: Callable[[str], Any]) -> None:
    usage = extract.embedding_usage(load_json("openai/embeddings.json"))
    assert usage.reported
    assert (usage.input_tokens, usage.output_tokens, usage.response_id) == (8, 0, None)
    assert usage.model == "text-embedding-3-small"


# -- responses ---------------------------------------------------------------------------------


def test_response_usage_with_cached_and_reasoning_tokens(load_json: Callable[[str], Any]) -> None:
    usage = extract.responses_usage(load_json("openai/responses_completed.json"))
    assert usage.reported
    assert (usage.response_id, usage.model) == (
        "resp_67ccd3a9da748190baa7f1570fe91ac604becb25c45c1d41",
        "o4-mini-2025-04-16",
    )
    assert (usage.input_tokens, usage.cache_read_tokens, usage.cache_write_tokens) == (328, 256, 64)
    assert (usage.output_tokens, usage.reasoning_tokens) == (1052, 960)
    assert usage.dimensions == {"service_tier": "default"}


def test_web_search_calls_are_counted_from_output_items(load_json: Callable[[str], Any]) -> None:
    usage = extract.responses_usage(load_json("openai/responses_web_search.json"))
    assert usage.dimensions == {"service_tier": "priority", "web_search_calls": 2}
    assert (usage.input_tokens, usage.output_tokens) == (9073, 281)


@needs_responses
def test_response_sdk_object_and_json_give_the_same_usage(load_json: Callable[[str], Any]) -> None:
    from openai.types.responses import Response

    for name in ("openai/responses_completed.json", "openai/responses_web_search.json"):
        data = load_json(name)
        assert extract.responses_usage(Response.model_validate(data)) == extract.responses_usage(data)


def test_queued_background_response_has_no_usage_yet(load_json: Callable[[str], Any]) -> None:
    data = load_json("openai/responses_background_queued.json")
    assert not extract.response_is_final(data)
    usage = extract.responses_usage(data)
    assert not usage.reported
    assert usage.response_id == "resp_68c1a4f0b5e08195a2dd7e0b4b43e6c80a7a9c6c1b6f6e3a"


def test_responses_stream_usage_comes_from_response_completed(load_sse: Callable[[str], list[Any]]) -> None:
    observer = extract.ResponsesStreamObserver()
    for event in load_sse("openai/responses_stream.sse"):
        observer.observe(event)
    usage = observer.result()
    assert usage.reported
    assert usage.response_id == "resp_67c9fdcecf488190bdd9a0409de3a1ec07b8b0ad4e5eb654"
    assert (usage.input_tokens, usage.output_tokens, usage.model) == (37, 11, "gpt-4.1-2025-04-14")


def test_responses_stream_incomplete_still_reports_usage(load_sse: Callable[[str], list[Any]]) -> None:
    observer = extract.ResponsesStreamObserver()
    for event in load_sse("openai/responses_stream_incomplete.sse"):
        observer.observe(event)
    assert (observer.result().input_tokens, observer.result().output_tokens) == (12, 2)


def test_responses_stream_cut_before_the_final_event_is_unreported(
    load_sse: Callable[[str], list[Any]],
) -> None:
    observer = extract.ResponsesStreamObserver()
    for event in load_sse("openai/responses_stream.sse")[:-1]:
        observer.observe(event)
    usage = observer.result()
    assert not usage.reported
    assert (usage.response_id, usage.model) == (
        "resp_67c9fdcecf488190bdd9a0409de3a1ec07b8b0ad4e5eb654",
        "gpt-4.1-2025-04-14",
    )


@needs_responses
def test_responses_stream_sdk_events_give_the_same_usage(load_sse: Callable[[str], list[Any]]) -> None:
    from openai._models import construct_type
    from openai.types.responses import ResponseStreamEvent

    raw, typed = extract.ResponsesStreamObserver(), extract.ResponsesStreamObserver()
    for event in load_sse("openai/responses_stream.sse"):
        raw.observe(event)
        typed.observe(construct_type(type_=ResponseStreamEvent, value=event))
    assert raw.result() == typed.result()


# -- raw bodies --------------------------------------------------------------------------------


def test_sse_payloads_of_a_raw_body() -> None:
    body = (FIXTURES / "openai" / "responses_stream.sse").read_bytes()
    payloads = extract.sse_payloads(body)
    assert [p["sequence_number"] for p in payloads] == list(range(10))
    crlf = body.replace(b"\n", b"\r\n")
    assert extract.sse_payloads(crlf) == payloads
    assert extract.sse_payloads(b"data: [DONE]\n\n") == []


def test_usage_only_event_is_recognised_in_raw_bytes() -> None:
    events = (FIXTURES / "openai" / "chat_stream_include_usage.sse").read_bytes().split(b"\n\n")
    hider = extract.UsageEventHider()
    assert [hider(e) for e in events if e.strip()] == [False] * 4 + [True, False]
    assert extract.UsageEventHider()(b'data: {"choices": [ ], "usage": {"prompt_tokens": 1}}\n\n')
    assert not extract.UsageEventHider()(b'data: {"choices": [], "prompt_filter_results": []}\n\n')


def test_usage_from_json_bytes_by_operation(load_json: Callable[[str], Any]) -> None:
    for operation, name in (
        ("chat", "openai/chat_completion.json"),
        ("completions", "openai/completion.json"),
        ("embeddings", "openai/embeddings.json"),
        ("responses", "openai/responses_completed.json"),
    ):
        body = (FIXTURES / name).read_bytes()
        assert extract.usage_from_json(operation, body).input_tokens > 0
    with pytest.raises(ValueError):
        extract.usage_from_json("chat", b'{"id": "chatcmpl-1", "usa')


# -- which chunk usagetap hides, and when usage is final -----------------------------------------


def _chunk(finish: str | None = None, **extra: Any) -> dict[str, Any]:
    return {"id": "chatcmpl-u1", "choices": [{"index": 0, "delta": {}, "finish_reason": finish}], **extra}


def _usage(completion_tokens: int) -> dict[str, int]:
    return {"prompt_tokens": 9, "completion_tokens": completion_tokens, "total_tokens": 9 + completion_tokens}


def test_cumulative_usage_is_final_only_once_the_choice_finishes() -> None:
    observer = extract.ChatStreamObserver()
    final = []
    for chunk in [_chunk(usage=_usage(1)), _chunk(usage=_usage(2)), _chunk("stop", usage=_usage(3))]:
        observer.observe(chunk)
        final.append(observer.usage_final)
    assert final == [False, False, True]


def test_usage_on_a_chunk_after_the_finish_is_final() -> None:
    observer = extract.ChatStreamObserver()
    for chunk in [_chunk(), _chunk("stop"), _chunk(usage=_usage(2))]:
        observer.observe(chunk)
    assert observer.usage_final


def test_with_two_choices_usage_is_final_once_both_have_finished() -> None:
    observer = extract.ChatStreamObserver(choices=2)
    observer.observe({"id": "c", "choices": [{"index": 0, "finish_reason": "stop"}], "usage": _usage(1)})
    assert not observer.usage_final
    observer.observe({"id": "c", "choices": [{"index": 1, "finish_reason": "stop"}], "usage": _usage(2)})
    assert observer.usage_final


def test_usage_seen_before_the_finish_still_wants_the_final_usage() -> None:
    observer = extract.ChatStreamObserver()
    observer.observe(_chunk(usage=_usage(1)))
    observer.observe(_chunk("stop"))
    assert observer.wants_more()


def test_null_usage_chunk_is_hidden_only_once_the_choices_have_begun() -> None:
    observer = extract.ChatStreamObserver()
    chunks = [
        {"id": "", "choices": [], "usage": None, "prompt_filter_results": []},
        _chunk(usage=None),
        _chunk("stop", usage=None),
        {"id": "chatcmpl-u1", "choices": [], "usage": None},
    ]
    assert [observer.hidden(chunk) for chunk in chunks] == [False, False, False, True]


def test_only_the_first_usage_chunk_without_choices_is_hidden() -> None:
    observer = extract.ChatStreamObserver()
    usage_only = {"id": "chatcmpl-u1", "choices": [], "usage": _usage(2)}
    chunks = [_chunk(), _chunk("stop"), usage_only, dict(usage_only)]
    assert [observer.hidden(chunk) for chunk in chunks] == [False, False, True, False]


def test_raw_usage_event_hider_follows_the_chunk_rule() -> None:
    hider = extract.UsageEventHider()
    events = [
        b'data: {"choices":[],"usage":null,"prompt_filter_results":[]}\n\n',
        b'data: {"choices":[{"index":0,"delta":{"content":"a"}}],"usage":null}\n\n',
        b'data: {"choices": [ ], "usage": null}\n\n',
        b'data: {"choices":[],"usage":{"prompt_tokens":9}}\n\n',
        b"data: [DONE]\n\n",
    ]
    assert [hider(event) for event in events] == [False, False, True, False, False]


def test_billed_tool_calls_are_counted_per_kind_from_output_items() -> None:
    response = {
        "id": "resp_tools",
        "object": "response",
        "status": "completed",
        "model": "gpt-4.1",
        "output": [
            {"id": "fs_1", "type": "file_search_call", "status": "completed", "queries": ["q"]},
            {"id": "fs_2", "type": "file_search_call", "status": "completed", "queries": ["r"]},
            {"id": "ci_1", "type": "code_interpreter_call", "status": "completed", "container_id": "cntr_1"},
            {"id": "ig_1", "type": "image_generation_call", "status": "completed"},
            {"id": "msg_1", "type": "message", "role": "assistant", "content": []},
        ],
        "usage": {"input_tokens": 300, "output_tokens": 40, "total_tokens": 340},
    }
    usage = extract.responses_usage(response)
    assert usage.dimensions == {
        "file_search_calls": 2,
        "code_interpreter_calls": 1,
        "image_generation_calls": 1,
    }


def test_image_tokens_of_the_input_and_output_are_dimensions() -> None:
    usage = extract.responses_usage(
        {
            "id": "resp_img_1",
            "model": "gpt-image-1.5",
            "status": "completed",
            "usage": {
                "input_tokens": 900,
                "input_tokens_details": {"text_tokens": 150, "image_tokens": 750},
                "output_tokens": 4160,
                "output_tokens_details": {"text_tokens": 0, "image_tokens": 4160},
            },
        }
    )
    assert usage.dimensions == {"input_image_tokens": 750, "output_image_tokens": 4160}


def test_the_audio_and_image_split_of_cache_reads_is_a_dimension() -> None:
    usage = extract.chat_usage(
        {
            "id": "chatcmpl-rt-1",
            "model": "gpt-realtime",
            "usage": {
                "prompt_tokens": 3000,
                "completion_tokens": 400,
                "prompt_tokens_details": {
                    "audio_tokens": 1800,
                    "image_tokens": 200,
                    "cached_tokens": 1200,
                    "cached_tokens_details": {"text_tokens": 300, "audio_tokens": 800, "image_tokens": 100},
                },
                "completion_tokens_details": {"audio_tokens": 320},
            },
        }
    )
    assert usage.dimensions == {
        "input_audio_tokens": 1800,
        "input_image_tokens": 200,
        "cache_audio_read_tokens": 800,
        "cache_image_read_tokens": 100,
        "output_audio_tokens": 320,
    }
