"""Event-stream bodies served from memory (``httpx.MockTransport``), shaped like real providers' streams.

A handler built here answers like the real server: a chat or completions stream
carries its usage-only chunk only when the request asked for it
(``stream_options.include_usage``), unless the server sends usage unasked.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, Optional

import anthropic
import openai

CHAT_USAGE = {"prompt_tokens": 23, "completion_tokens": 4, "total_tokens": 27}
COMPLETION_USAGE = {"prompt_tokens": 6, "completion_tokens": 2, "total_tokens": 8}
RESPONSES_USAGE = {
    "input_tokens": 31,
    "input_tokens_details": {"cached_tokens": 0},
    "output_tokens": 5,
    "output_tokens_details": {"reasoning_tokens": 0},
    "total_tokens": 36,
}


def sse(*payloads: Any) -> bytes:
    """An SSE body: one ``data:`` event per payload, then ``[DONE]``."""
    events = [f"data: {json.dumps(payload)}\n\n" for payload in payloads]
    return "".join(events).encode() + b"data: [DONE]\n\n"


def named_sse(*events: dict[str, Any]) -> bytes:
    """An SSE body of typed events (``event:``, then ``data:``), as the Responses and Messages APIs send."""
    return "".join(f"event: {event['type']}\ndata: {json.dumps(event)}\n\n" for event in events).encode()


def chat_chunk(content: Optional[str] = None, finish: Optional[str] = None, **extra: Any) -> dict[str, Any]:
    delta = {} if content is None else {"content": content}
    return {
        "id": "chatcmpl-fx-77",
        "object": "chat.completion.chunk",
        "created": 1790000000,
        "model": "gpt-4.1-mini-2025-04-14",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
        **extra,
    }


def chat_usage_chunk(usage: Optional[dict[str, Any]] = CHAT_USAGE) -> dict[str, Any]:
    return {**chat_chunk(), "choices": [], "usage": usage}


def cumulative_usage(completion_tokens: int) -> dict[str, int]:
    return {
        "prompt_tokens": 23,
        "completion_tokens": completion_tokens,
        "total_tokens": 23 + completion_tokens,
    }


def completion_chunk(text: str, finish: Optional[str] = None, **extra: Any) -> dict[str, Any]:
    return {
        "id": "cmpl-fx-12",
        "object": "text_completion",
        "created": 1790000001,
        "model": "gpt-3.5-turbo-instruct",
        "choices": [{"text": text, "index": 0, "logprobs": None, "finish_reason": finish}],
        **extra,
    }


def chat_body(
    asked: bool,
    *,
    unasked_usage: bool = False,
    nulls: bool = True,
    usage: Optional[dict[str, Any]] = CHAT_USAGE,
) -> bytes:
    """Three chunks and, when asked (or sent unasked), the usage-only chunk carrying ``usage``;
    with ``nulls``, ``usage: null`` on the others when asked, as OpenAI sends them."""
    extra = {"usage": None} if asked and nulls else {}
    chunks = [chat_chunk("Ly", **extra), chat_chunk("on", **extra), chat_chunk(finish="stop", **extra)]
    if asked or unasked_usage:
        chunks.append(chat_usage_chunk(usage))
    return sse(*chunks)


def cumulative_chat_body(asked: bool) -> bytes:
    """A server that repeats cumulative usage on every chunk, asked or not."""
    return sse(
        chat_chunk("Ly", usage=cumulative_usage(1)),
        chat_chunk("on", usage=cumulative_usage(2)),
        chat_chunk(" !", usage=cumulative_usage(3)),
        chat_chunk(finish="stop", usage=cumulative_usage(4)),
    )


def completions_body(asked: bool) -> bytes:
    chunks = [completion_chunk("Bon"), completion_chunk("jour", finish="stop")]
    if asked:
        chunks.append({**completion_chunk(""), "choices": [], "usage": COMPLETION_USAGE})
    return sse(*chunks)


def responses_body(response_id: str) -> bytes:
    response = {
        "id": response_id,
        "object": "response",
        "created_at": 1790000002,
        "model": "gpt-4.1-2025-04-14",
        "status": "in_progress",
        "output": [],
        "usage": None,
        "parallel_tool_calls": True,
        "tool_choice": "auto",
        "tools": [],
    }
    message = {
        "id": "msg_fx_5",
        "type": "message",
        "role": "assistant",
        "status": "completed",
        "content": [{"type": "output_text", "text": "Hello", "annotations": []}],
    }
    done = {**response, "status": "completed", "output": [message], "usage": RESPONSES_USAGE}
    return named_sse(
        {"type": "response.created", "sequence_number": 0, "response": response},
        {
            "type": "response.output_text.delta",
            "sequence_number": 1,
            "item_id": "msg_fx_5",
            "output_index": 0,
            "content_index": 0,
            "delta": "Hello",
            "logprobs": [],
        },
        {"type": "response.completed", "sequence_number": 2, "response": done},
    )


def messages_body() -> bytes:
    return named_sse(
        {
            "type": "message_start",
            "message": {
                "id": "msg_fx_9",
                "type": "message",
                "role": "assistant",
                "model": "claude-sonnet-4-5",
                "content": [],
                "stop_reason": None,
                "stop_sequence": None,
                "usage": {"input_tokens": 17, "output_tokens": 1},
            },
        },
        {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
        {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Salut"}},
        {"type": "content_block_stop", "index": 0},
        {
            "type": "message_delta",
            "delta": {"stop_reason": "end_turn", "stop_sequence": None},
            "usage": {"output_tokens": 6},
        },
        {"type": "message_stop"},
    )


Body = Callable[[bool], bytes]


def openai_http(body: Body, is_async: bool = False, *, unread: bool = False) -> Any:
    """An ``http_client`` for the openai SDK serving ``body(asked)`` from memory: as ``content=``
    (read before the SDK sees it), or ``unread`` as a stream to read, like a network body."""
    return _http(openai._base_client, body, is_async, unread)


def anthropic_http(body: bytes, is_async: bool = False) -> Any:
    return _http(anthropic._base_client, lambda asked: body, is_async, False)


def _http(sdk_client: Any, body: Body, is_async: bool, unread: bool) -> Any:
    hx = getattr(sdk_client, "httpx2", None) or sdk_client.httpx

    def handler(request: Any) -> Any:
        sent = json.loads(request.content or b"{}")
        asked = bool((sent.get("stream_options") or {}).get("include_usage"))
        headers = {"content-type": "text/event-stream"}
        if unread:
            return hx.Response(200, headers=headers, stream=Events(body(asked)))
        return hx.Response(200, headers=headers, content=body(asked))

    class Events(hx.SyncByteStream, hx.AsyncByteStream):
        """A body sent event by event."""

        def __init__(self, body: bytes) -> None:
            self.events = [event + b"\n\n" for event in body.split(b"\n\n") if event]

        def __iter__(self) -> Any:
            yield from self.events

        async def __aiter__(self) -> Any:
            for event in self.events:
                yield event

    transport = hx.MockTransport(handler)
    return hx.AsyncClient(transport=transport) if is_async else hx.Client(transport=transport)


def dumps(items: Any) -> list[Any]:
    """Each item as the caller would compare it: its ``model_dump()``."""
    return [item.model_dump() for item in items]
