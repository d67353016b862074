"""Property tests: mutated OpenAI and Anthropic bodies and streams through the real SDKs, wrapped and bare.

Whatever the server sends, the caller of a wrapped client sees what a bare client sees (the same
items, the same result, the same exception type), and each call's record is exact by the token
convention or flagged ``partial``: never an exception from usagetap, never a negative or
inflated count.
"""

from __future__ import annotations

import importlib
import json
import os
from typing import Any, Optional

import anthropic
import openai
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import usagetap
from usagetap._record import MAX_TOKENS
from usagetap.sinks import Memory

SETTINGS = settings(
    max_examples=200,
    derandomize=bool(os.environ.get("CI")),  # CI explores the same examples every run; a developer new ones
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
MESSAGES = [{"role": "user", "content": "hi"}]
SANE = MAX_TOKENS  # the largest count a record takes


def _http_lib(sdk: Any) -> Any:
    base = importlib.import_module(sdk.__name__ + "._base_client")
    return importlib.import_module("httpx2" if hasattr(base, "httpx2") else "httpx")


HX_OPENAI = _http_lib(openai)
HX_ANTHROPIC = _http_lib(anthropic)


# ------------------------------------------------------------------ strategies

good_count = st.integers(0, 5000)
odd_count = st.one_of(
    st.integers(-3, -1),
    st.integers(SANE + 1, 2**70),
    st.none(),
    st.text(max_size=3),
    st.floats(allow_nan=True, allow_infinity=True),
    st.booleans(),
    st.lists(st.integers(0, 9), max_size=2),
)
count = st.one_of(good_count, good_count, good_count, odd_count)
odd_usage = st.one_of(st.text(max_size=4), st.lists(st.integers(0, 9), max_size=3), st.integers(0, 99))


@st.composite
def openai_usage(draw: st.DrawFn) -> Any:
    if draw(st.integers(0, 9)) == 0:
        return draw(odd_usage)
    prompt, completion = draw(count), draw(count)
    total: Any = draw(
        st.one_of(
            st.just(prompt + completion)
            if isinstance(prompt, int) and isinstance(completion, int)
            else count,
            count,
            st.integers(0, 12000),
        )
    )
    usage: dict[str, Any] = {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": total}
    if draw(st.booleans()):
        usage["prompt_tokens_details"] = draw(
            st.one_of(st.none(), st.fixed_dictionaries({"cached_tokens": count}))
        )
    if draw(st.booleans()):
        usage["completion_tokens_details"] = draw(
            st.one_of(st.none(), st.fixed_dictionaries({"reasoning_tokens": count}))
        )
    return usage


@st.composite
def anthropic_usage(draw: st.DrawFn) -> Any:
    if draw(st.integers(0, 9)) == 0:
        return draw(odd_usage)
    usage: dict[str, Any] = {"input_tokens": draw(count), "output_tokens": draw(count)}
    for key in ("cache_read_input_tokens", "cache_creation_input_tokens"):
        if draw(st.booleans()):
            usage[key] = draw(st.one_of(st.none(), count))
    return usage


# ------------------------------------------------------------------ the expected record


def _number(value: Any) -> Optional[int]:
    """A count as the SDKs' models read it: an int, a whole float (``12.0``), a decimal string
    (``"12"``), or a bool (pydantic's lax mode makes ``true`` a 1)."""
    if type(value) in (int, bool):
        return int(value)
    if type(value) is float and value.is_integer():
        return int(value)
    if type(value) is str and value.isascii() and value.isdigit() and str(int(value)) == value:
        return int(value)
    return None


def _plain(value: Any) -> bool:
    number = _number(value)
    return number is not None and 0 <= number <= SANE


def _part(details: Any, key: str) -> Optional[int]:
    """A part's count (0 when not reported), or None when it is not a plain count."""
    if details is None:
        return 0
    if not isinstance(details, dict):
        return None
    value = details.get(key)
    return 0 if value is None else _number(value) if _plain(value) else None


def expected_openai(usage: Any) -> Optional[dict[str, int]]:
    """The exact record for a chat usage object, or None when only a partial record is right."""
    if not isinstance(usage, dict):
        return None
    counts = [usage.get(key) for key in ("prompt_tokens", "completion_tokens", "total_tokens")]
    prompt, completion = (_number(c) if _plain(c) else None for c in counts[:2])
    total = _number(counts[2])
    cached = _part(usage.get("prompt_tokens_details"), "cached_tokens")
    reasoning = _part(usage.get("completion_tokens_details"), "reasoning_tokens")
    if prompt is None or completion is None or cached is None or reasoning is None:
        return None
    output = completion
    if total is not None and total > prompt + completion:  # reasoning outside completion_tokens
        output = total - prompt
        reasoning = max(reasoning, total - prompt - completion)
    if cached > prompt or reasoning > output or output > SANE:
        return None
    return {"input": prompt, "output": output, "cache_read": cached, "cache_write": 0, "reasoning": reasoning}


def expected_anthropic(usage: Any) -> Optional[dict[str, int]]:
    if not isinstance(usage, dict):
        return None
    base, output = (
        _number(v) if _plain(v) else None for v in (usage.get("input_tokens"), usage.get("output_tokens"))
    )
    read, write = (_part(usage, key) for key in ("cache_read_input_tokens", "cache_creation_input_tokens"))
    if base is None or output is None or read is None or write is None:
        return None
    return {
        "input": base + read + write,
        "output": output,
        "cache_read": read,
        "cache_write": write,
        "reasoning": 0,
    }


def bound_of(usage: Any) -> int:
    """Every non-negative count anywhere in ``usage`` added up: no record count may exceed it."""
    total = 0

    def walk(value: Any) -> None:
        nonlocal total
        if isinstance(value, (dict, list)):
            for item in value.values() if isinstance(value, dict) else value:
                walk(item)
        elif (number := _number(value)) is not None and number > 0:
            total += number

    walk(usage)
    return total


def check_record(records: list[Any], want: Optional[dict[str, int]], usage: Any, seen: Any = None) -> None:
    """One record, exact (``want``) or partial, no count above what ``seen`` (default ``usage``) held."""
    assert len(records) == 1, f"{len(records)} records for one billed call"
    record = records[0]
    got = {
        "input": record.input_tokens,
        "output": record.output_tokens,
        "cache_read": record.cache_read_tokens,
        "cache_write": record.cache_write_tokens,
        "reasoning": record.reasoning_tokens,
    }
    limit = bound_of(usage if seen is None else seen)
    assert all(type(v) is int and 0 <= v <= limit for v in got.values()), (got, usage)
    if record.status == "ok":
        assert want is not None, f"an ok record {got} for a usage that cannot be known exactly: {usage!r}"
        assert got == want, (got, want, usage)
    else:
        assert record.status == "partial"


# ------------------------------------------------------------------ calling, wrapped and bare


def outcome(call: Any) -> tuple[str, Any]:
    """``("ok", items or dump)`` or ``("raise", exception type)``: what the caller sees."""
    try:
        return "ok", call()
    except Exception as exc:
        return "raise", type(exc)


def dump(obj: Any) -> Any:
    return obj.model_dump(warnings=False) if hasattr(obj, "model_dump") else obj


def records_of(sink: Memory, customer: str) -> list[Any]:
    usagetap.flush(timeout=10)
    return [r for r in sink.records if r.customer == customer]


class Server:
    """Answers every request with ``body``; a chat stream drops its usage-only chunk unless asked for it.

    ``@ID@`` in the body becomes an id of this server's own: each example's response is a new one.
    """

    def __init__(self, hx: Any, body: bytes, content_type: str, usage_chunk: Optional[bytes] = None) -> None:
        self.name = customer_name()
        ident = self.name.encode()
        self.hx, self.content_type = hx, content_type
        self.body = body.replace(b"@ID@", ident)
        self.usage_chunk = None if usage_chunk is None else usage_chunk.replace(b"@ID@", ident)

    def __call__(self, request: Any) -> Any:
        body = self.body
        if self.usage_chunk is not None:
            asked = (json.loads(request.content).get("stream_options") or {}).get("include_usage")
            body = body.replace(b"@USAGE@", self.usage_chunk if asked else b"")
        return self.hx.Response(200, headers={"content-type": self.content_type}, content=body)

    def openai(self) -> openai.OpenAI:
        http = self.hx.Client(transport=self.hx.MockTransport(self))
        return openai.OpenAI(
            api_key="sk-fuzz", base_url="https://api.openai.com/v1", http_client=http, max_retries=0
        )

    def anthropic(self) -> anthropic.Anthropic:
        http = self.hx.Client(transport=self.hx.MockTransport(self))
        return anthropic.Anthropic(
            api_key="sk-ant-fuzz", base_url="https://api.anthropic.com", http_client=http, max_retries=0
        )


_calls = iter(range(10**9))


def customer_name() -> str:
    return f"fuzz_{next(_calls)}"


# ------------------------------------------------------------------ OpenAI


@pytest.mark.internal_error("extract", "usage", optional=True)
@SETTINGS
@given(usage=openai_usage(), keep_usage_key=st.booleans())
def test_a_mutated_chat_completion_is_seen_unchanged_and_metered_exactly_or_flagged(
    sink: Memory, usage: Any, keep_usage_key: bool
) -> None:
    body: dict[str, Any] = {
        "id": "chatcmpl-@ID@",
        "object": "chat.completion",
        "created": 1_700_000_000,
        "model": "gpt-4.1-mini-2025-04-14",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "ok"}, "finish_reason": "stop"}],
    }
    if keep_usage_key:
        body["usage"] = usage
    server = Server(HX_OPENAI, json.dumps(body).encode(), "application/json")
    name = server.name

    def call(client: openai.OpenAI) -> Any:
        return dump(client.chat.completions.create(model="gpt-4.1-mini", messages=MESSAGES))

    bare = outcome(lambda: call(server.openai()))
    with usagetap.customer(name):
        wrapped = outcome(lambda: call(usagetap.wrap(server.openai())))
    assert wrapped == bare
    if bare[0] == "ok":
        check_record(records_of(sink, name), expected_openai(usage) if keep_usage_key else None, usage)


def _sse(events: list[Any]) -> bytes:
    return b"".join(
        b"data: " + (e if isinstance(e, bytes) else json.dumps(e).encode()) + b"\n\n" for e in events
    )


def _chunk(delta: dict[str, Any], finish: Optional[str] = None, **extra: Any) -> dict[str, Any]:
    return {
        "id": "chatcmpl-@ID@",
        "object": "chat.completion.chunk",
        "created": 1_700_000_000,
        "model": "gpt-4.1-mini-2025-04-14",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
        **extra,
    }


@pytest.mark.internal_error("extract", "usage", optional=True)
@SETTINGS
@given(
    usage=openai_usage(),
    words=st.integers(0, 4),
    caller_asks=st.booleans(),
    ending=st.sampled_from(["done", "no_done", "truncated", "garbage"]),
    break_after=st.one_of(st.none(), st.integers(0, 5)),
)
def test_a_mutated_chat_stream_shows_the_bare_items_and_is_metered_exactly_or_flagged(
    sink: Memory, usage: Any, words: int, caller_asks: bool, ending: str, break_after: Optional[int]
) -> None:
    events: list[Any] = [_chunk({"role": "assistant", "content": ""})]
    events += [_chunk({"content": f"w{i} "}) for i in range(words)]
    events.append(_chunk({}, "stop"))
    head = _sse(events)
    usage_chunk = _sse([{**_chunk({}), "choices": [], "usage": usage}])
    tail = {
        "done": b"data: [DONE]\n\n",
        "no_done": b"",
        "truncated": b'data: {"id": "chatc',
        "garbage": b"data: {]\n\n",
    }
    server = Server(HX_OPENAI, head + b"@USAGE@" + tail[ending], "text/event-stream", usage_chunk)
    name = server.name
    extra = {"stream_options": {"include_usage": True}} if caller_asks else {}

    def call(client: openai.OpenAI) -> Any:
        items = []
        with client.chat.completions.create(
            model="gpt-4.1-mini", messages=MESSAGES, stream=True, **extra
        ) as s:
            for chunk in s:
                items.append(dump(chunk))
                if break_after is not None and len(items) > break_after:
                    break
        return items

    bare = outcome(lambda: call(server.openai()))
    with usagetap.customer(name):
        wrapped = outcome(lambda: call(usagetap.wrap(server.openai())))
    assert wrapped == bare
    check_record(records_of(sink, name), expected_openai(usage), usage)


# ------------------------------------------------------------------ Anthropic


@pytest.mark.internal_error("extract", "usage", optional=True)
@SETTINGS
@given(usage=anthropic_usage())
def test_a_mutated_anthropic_message_is_seen_unchanged_and_metered_exactly_or_flagged(
    sink: Memory, usage: Any
) -> None:
    body = {
        "id": "msg_@ID@",
        "type": "message",
        "role": "assistant",
        "model": "claude-haiku-4-5-20251001",
        "content": [{"type": "text", "text": "ok"}],
        "stop_reason": "end_turn",
        "stop_sequence": None,
        "usage": usage,
    }
    server = Server(HX_ANTHROPIC, json.dumps(body).encode(), "application/json")
    name = server.name

    def call(client: anthropic.Anthropic) -> Any:
        return dump(client.messages.create(model="claude-haiku-4-5", max_tokens=16, messages=MESSAGES))

    bare = outcome(lambda: call(server.anthropic()))
    with usagetap.customer(name):
        wrapped = outcome(lambda: call(usagetap.wrap(server.anthropic())))
    assert wrapped == bare
    if bare[0] == "ok":
        check_record(records_of(sink, name), expected_anthropic(usage), usage)


def _event(kind: str, **data: Any) -> bytes:
    return f"event: {kind}\ndata: {json.dumps({'type': kind, **data})}\n\n".encode()


@pytest.mark.internal_error("extract", "usage", optional=True)
@SETTINGS
@given(
    start_usage=anthropic_usage(),
    output=count,
    words=st.integers(0, 3),
    ending=st.sampled_from(["stop", "no_stop", "truncated", "garbage"]),
    break_after=st.one_of(st.none(), st.integers(0, 6)),
)
def test_a_mutated_anthropic_stream_shows_the_bare_events_and_is_metered_exactly_or_flagged(
    sink: Memory, start_usage: Any, output: Any, words: int, ending: str, break_after: Optional[int]
) -> None:
    message = {
        "id": "msg_@ID@",
        "type": "message",
        "role": "assistant",
        "model": "claude-haiku-4-5-20251001",
        "content": [],
        "stop_reason": None,
        "stop_sequence": None,
        "usage": start_usage,
    }
    events = [_event("message_start", message=message)]
    events.append(_event("content_block_start", index=0, content_block={"type": "text", "text": ""}))
    events += [
        _event("content_block_delta", index=0, delta={"type": "text_delta", "text": f"w{i} "})
        for i in range(words)
    ]
    events.append(_event("content_block_stop", index=0))
    events.append(
        _event(
            "message_delta",
            delta={"stop_reason": "end_turn", "stop_sequence": None},
            usage={"output_tokens": output},
        )
    )
    tail = {
        "stop": _event("message_stop"),
        "no_stop": b"",
        "truncated": b'event: message_stop\ndata: {"ty',
        "garbage": b"event: message_stop\ndata: {]\n\n",
    }
    server = Server(HX_ANTHROPIC, b"".join(events) + tail[ending], "text/event-stream")
    name = server.name

    def call(client: anthropic.Anthropic) -> Any:
        items = []
        with client.messages.create(
            model="claude-haiku-4-5", max_tokens=16, messages=MESSAGES, stream=True
        ) as s:
            for event in s:
                items.append(dump(event))
                if break_after is not None and len(items) > break_after:
                    break
        return items

    bare = outcome(lambda: call(server.anthropic()))
    with usagetap.customer(name):
        wrapped = outcome(lambda: call(usagetap.wrap(server.anthropic())))
    assert wrapped == bare
    final = start_usage
    if isinstance(start_usage, dict) and output is not None:
        final = {**start_usage, "output_tokens": output}
    check_record(records_of(sink, name), expected_anthropic(final), final, seen=[start_usage, output])
