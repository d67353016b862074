"""Mistral's usage, from the SDK's response objects or the JSON / SSE bodies of its API.

``usage``: ``prompt_tokens`` (cache reads included), ``completion_tokens`` (reasoning included),
``total_tokens``, ``prompt_tokens_details.cached_tokens`` (a plain dict in mistralai 3.x; an extra
field of older SDKs' models) and, where reported, ``completion_tokens_details.reasoning_tokens``.
A stream reports usage in its last chunk, the one with ``finish_reason``.
"""

from __future__ import annotations

import json
from typing import Any, Optional

from ..base import TokenUsage, field_of, int_of, is_object, sse_payloads, unreadable, unreported

__all__ = ["OPERATIONS", "body_usage", "operation_for", "response_usage"]

# the end of a request path -> the operation its records carry
OPERATIONS: dict[str, str] = {
    "/v1/chat/completions": "chat",
    "/v1/agents/completions": "agents",
    "/v1/fim/completions": "fim",
    "/v1/embeddings": "embeddings",
}


def operation_for(path: str) -> Optional[str]:
    """The metered operation of a request path (after any prefix of the server URL), or None."""
    for suffix, operation in OPERATIONS.items():
        if path.endswith(suffix):
            return operation
    return None


def _part(usage: Any, names: tuple[str, ...], count: str) -> int:
    """``usage.<name>.<count>`` for the first of ``names`` present (also among an SDK model's extras)."""
    extras = field_of(usage, "additional_properties")
    for name in names:
        details = field_of(usage, name)
        if details is None and isinstance(extras, dict):
            details = extras.get(name)
        if details is not None and is_object(details):
            return int_of(details, count)
    return 0


def response_usage(response: Any) -> TokenUsage:
    """The usage a chat, FIM, agents or embeddings response reports (an SDK object or its JSON)."""
    model, response_id = field_of(response, "model"), field_of(response, "id")
    usage = field_of(response, "usage")
    if usage is None:
        return TokenUsage(model=model, response_id=response_id, reported=False)
    if not is_object(usage):
        return unreadable(usage, model=model, response_id=response_id)
    prompt, completion = int_of(usage, "prompt_tokens"), int_of(usage, "completion_tokens")
    total = field_of(usage, "total_tokens")
    if type(total) is int and prompt >= 0 and completion >= 0 and total > prompt + completion:
        completion = total - prompt  # output only the total shows is billed as output
    return TokenUsage(
        model=model,
        response_id=response_id,
        input_tokens=prompt,
        output_tokens=completion,
        cache_read_tokens=_part(usage, ("prompt_tokens_details", "prompt_token_details"), "cached_tokens"),
        reasoning_tokens=_part(usage, ("completion_tokens_details",), "reasoning_tokens"),
        issue=unreported(usage, "prompt_tokens"),
    )


def body_usage(body: Optional[bytes], sse: bool) -> TokenUsage:
    """Usage from a response body: its JSON, or of an event stream, the first event (id, model) and
    the last one reporting usage. A body never read, or a stream cut before its usage: unreported."""
    if not body:
        return TokenUsage(reported=False)
    if not sse:
        return response_usage(json.loads(body))
    events = [e for e in sse_payloads(body) if isinstance(e, dict)]
    if not events:
        return TokenUsage(reported=False)
    last = next((e for e in reversed(events) if e.get("usage") is not None), None)
    first = events[0]
    if last is None:
        return TokenUsage(model=first.get("model"), response_id=first.get("id"), reported=False)
    return response_usage(
        {**last, "id": last.get("id") or first.get("id"), "model": last.get("model") or first.get("model")}
    )
