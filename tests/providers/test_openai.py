"""Pure extraction from recorded OpenAI responses and streams."""

from __future__ import annotations

from typing import Any, Callable

import pytest

from usagetap.providers import openai as extract


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

    data = load_json("openai/chat_completion_reasoning_audio.json")
    assert extract.chat_usage(ChatCompletion.model_validate(data)) == extract.chat_usage(data)


def test_stream_usage_comes_from_the_final_chunk(load_sse: Callable[[str], list[Any]]) -> None:
    chunks = load_sse("openai/chat_stream_include_usage.sse")
    observer = extract.ChatStreamObserver()
    hidden = []
    for chunk in chunks:
        observer.observe(chunk)
        hidden.append(extract.is_usage_only_chunk(chunk))
    assert hidden == [False, False, False, False, True]
    assert observer.finished
    usage = observer.result()
    assert usage.reported
    assert usage.response_id == "chatcmpl-BQ5yUJYgOdKgYF7pQ4EhlAb2lJ1xi"
    assert usage.model == "gpt-4.1-2025-04-14"
    assert (usage.input_tokens, usage.output_tokens, usage.cache_read_tokens) == (1306, 3, 1152)


def test_stream_without_usage_is_unreported(load_sse: Callable[[str], list[Any]]) -> None:
    observer = extract.ChatStreamObserver()
    for chunk in load_sse("openai/chat_stream_no_usage.sse"):
        observer.observe(chunk)
        assert not extract.is_usage_only_chunk(chunk)
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
        ("get", "/chat/completions", None),
        ("post", "/audio/speech", None),
    ],
)
def test_operation_for(method: str, path: str, operation: str | None) -> None:
    assert extract.operation_for(method, path) == operation


def test_non_integer_counts_are_refused() -> None:
    with pytest.raises(TypeError, match="prompt_tokens"):
        extract.chat_usage({"usage": {"prompt_tokens": "12", "completion_tokens": 1}})
