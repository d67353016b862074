"""Records from usage that breaks the record's rules: kept, fitted and flagged partial, never dropped."""

from __future__ import annotations

import anthropic
import openai
import pytest

import usagetap
from tests.helpers import answering
from tests.instrument.conftest import delivered
from tests.providers.conftest import FIXTURES
from usagetap import _stats
from usagetap.sinks import Memory

MESSAGES = [{"role": "user", "content": "hi"}]


def _openai(body: bytes, content_type: str = "application/json") -> openai.OpenAI:
    http = answering(openai, body, content_type)
    return usagetap.wrap(
        openai.OpenAI(
            base_url="https://openrouter.ai/api/v1", api_key="sk-test", max_retries=0, http_client=http
        )
    )


def _claude(body: bytes) -> anthropic.Anthropic:
    http = answering(anthropic, body)
    return usagetap.wrap(anthropic.Anthropic(api_key="sk-ant-test", max_retries=0, http_client=http))


def test_reasoning_above_the_completion_is_one_partial_record_with_the_issue_named(sink: Memory) -> None:
    body = (FIXTURES / "openai" / "chat_stream_openrouter_reasoning_over_completion.sse").read_bytes()
    stream = _openai(body, "text/event-stream").chat.completions.create(
        model="m", messages=MESSAGES, stream=True
    )
    assert [c.choices[0].delta.content for c in stream] == ["", "Hi", ""]
    [record] = delivered(sink)
    assert record.status == "partial"
    assert (record.input_tokens, record.output_tokens, record.reasoning_tokens) == (57, 16, 16)
    assert record.dimensions["usage_issue"] == "reasoning_tokens 19 over output_tokens 16, cut to 16"
    stats = _stats.snapshot()
    assert stats["partial.parts_exceed_total"] == 1
    assert stats["dropped.invalid"] == 0


def test_anthropic_thinking_above_the_output_is_one_partial_record(sink: Memory) -> None:
    body = (FIXTURES / "anthropic" / "message_thinking_over_output.json").read_bytes()
    message = _claude(body).messages.create(model="claude-sonnet-4-6", max_tokens=64, messages=MESSAGES)
    assert message.usage.output_tokens == 40
    [record] = delivered(sink)
    assert record.status == "partial"
    assert (record.input_tokens, record.output_tokens, record.reasoning_tokens) == (18, 40, 40)
    assert record.dimensions["usage_issue"] == "reasoning_tokens 52 over output_tokens 40, cut to 40"


@pytest.mark.internal_error("usage")
@pytest.mark.parametrize("usage", [b'"n/a"', b"[18, 40]", b"58"], ids=["str", "list", "int"])
def test_anthropic_usage_that_is_not_an_object_is_a_partial_record_and_an_internal_error(
    sink: Memory, usage: bytes
) -> None:
    body = (
        b'{"id": "msg_01AbC", "type": "message", "role": "assistant", "model": "claude-sonnet-4-6", '
        b'"content": [], "stop_reason": "end_turn", "usage": ' + usage + b"}"
    )
    _claude(body).messages.create(model="claude-sonnet-4-6", max_tokens=64, messages=MESSAGES)
    [record] = delivered(sink)
    assert record.status == "partial"
    assert str(record.dimensions["usage_issue"]).startswith("usage is a ")
    assert _stats.snapshot()["internal_errors"] == 1


def test_a_count_of_2_to_the_63_is_not_billed_and_the_call_is_kept_as_partial(sink: Memory) -> None:
    body = (
        b'{"id": "gen-1", "object": "chat.completion", "model": "m", "choices": [], '
        b'"usage": {"prompt_tokens": 9223372036854775808, "completion_tokens": 4, "total_tokens": 12}}'
    )
    _openai(body).chat.completions.create(model="m", messages=MESSAGES)
    [record] = delivered(sink)
    assert record.status == "partial"
    assert (record.input_tokens, record.output_tokens) == (0, 4)
    assert (
        record.dimensions["usage_issue"] == "input_tokens 9223372036854775808 over 1000000000000, not billed"
    )
    assert _stats.snapshot()["partial.out_of_range"] == 1


@pytest.mark.internal_error("extract")
def test_usage_that_extraction_cannot_read_is_a_partial_record_naming_why(
    sink: Memory, monkeypatch: pytest.MonkeyPatch
) -> None:
    from usagetap.providers.openai import usage as extract

    def broken(_: object) -> None:
        raise ZeroDivisionError("a shape nobody expected")

    monkeypatch.setattr(extract, "chat_usage", broken)
    body = (FIXTURES / "openai" / "chat_completion.json").read_bytes()
    response = _openai(body).chat.completions.create(model="gpt-4.1", messages=MESSAGES)
    assert response.choices
    [record] = delivered(sink)
    assert (record.status, record.input_tokens, record.output_tokens) == ("partial", 0, 0)
    assert record.dimensions["usage_issue"] == "usage unreadable: ZeroDivisionError"
    assert _stats.snapshot()["internal_errors"] == 1
