"""OpenAI's wire format for the loopback server: chat completions, JSON and SSE."""

from __future__ import annotations

import json
import time
import uuid
from typing import TYPE_CHECKING, Any, Optional, Union

from ._server import Issued, Reply

if TYPE_CHECKING:
    from ._server import ProviderServer, Route

__all__ = ["ROUTES", "count_tokens", "reply_words"]

_WORDS = ("usage", "is", "metered", "per", "customer", "and", "billed", "to", "the", "token")
_REASONING_PREFIXES = ("o1", "o3", "o4", "gpt-5")

Event = tuple[Optional[str], Union[str, dict[str, Any]]]


def count_tokens(value: Any) -> int:
    """A deterministic token count: whitespace-separated words in every string of ``value``."""
    if isinstance(value, str):
        return len(value.split())
    if isinstance(value, dict):
        return sum(count_tokens(v) for k, v in value.items() if k not in ("role", "type", "name"))
    if isinstance(value, (list, tuple)):
        return sum(count_tokens(v) for v in value)
    return 0


def reply_words(n: int) -> list[str]:
    return [_WORDS[i % len(_WORDS)] for i in range(n)]


def _error(status: int, message: str, code: Optional[str] = None) -> Reply:
    return Reply(
        status=status,
        body={"error": {"message": message, "type": "invalid_request_error", "param": None, "code": code}},
    )


def _max_tokens(body: dict[str, Any]) -> int:
    for key in ("max_completion_tokens", "max_tokens", "max_output_tokens"):
        value = body.get(key)
        if isinstance(value, int) and value > 0:
            return value
    return 16


def chat_completions(server: ProviderServer, body: dict[str, Any], headers: dict[str, str]) -> Reply:
    model = body.get("model")
    messages = body.get("messages")
    if not isinstance(model, str) or not isinstance(messages, list) or not messages:
        return _error(400, "model and messages are required")
    stream_options = body.get("stream_options")
    if stream_options is not None and server.reject_stream_options:
        return _error(400, "Unrecognized request argument supplied: stream_options")
    stream = bool(body.get("stream"))
    if stream_options is not None and not stream:
        return _error(400, "The 'stream_options' parameter is only allowed when 'stream' is enabled.")

    input_tokens = count_tokens(messages) + 3 * len(messages)
    output_tokens = _max_tokens(body)
    reasoning = output_tokens // 4 if model.startswith(_REASONING_PREFIXES) else 0
    cached = server.cached_prefix(json.dumps(messages, sort_keys=True), input_tokens)
    response_id = f"chatcmpl-{uuid.uuid4().hex}"
    created = int(time.time())
    words = reply_words(output_tokens - reasoning)
    usage = {
        "prompt_tokens": input_tokens,
        "completion_tokens": output_tokens,
        "total_tokens": input_tokens + output_tokens,
        "prompt_tokens_details": {"cached_tokens": cached, "audio_tokens": 0},
        "completion_tokens_details": {
            "reasoning_tokens": reasoning,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    }
    include_usage = bool(isinstance(stream_options, dict) and stream_options.get("include_usage"))
    reported = server.report_usage and (include_usage or not stream)
    server.issue(
        Issued(
            response_id,
            "/v1/chat/completions",
            model,
            stream,
            input_tokens,
            output_tokens,
            cache_read_tokens=cached,
            reasoning_tokens=reasoning,
            reported=reported,
        )
    )
    base = {
        "id": response_id,
        "created": created,
        "model": model,
        "system_fingerprint": "fp_loopback",
        "service_tier": "default",
    }
    if not stream:
        return Reply(
            body={
                **base,
                "object": "chat.completion",
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": " ".join(words), "refusal": None},
                        "logprobs": None,
                        "finish_reason": "length",
                    }
                ],
                "usage": usage if server.report_usage else None,
            }
        )

    chunk = {**base, "object": "chat.completion.chunk"}
    extra = {"usage": None} if include_usage else {}
    events: list[Event] = [
        (
            None,
            {
                **chunk,
                **extra,
                "choices": [
                    {
                        "index": 0,
                        "delta": {"role": "assistant", "content": "", "refusal": None},
                        "logprobs": None,
                        "finish_reason": None,
                    }
                ],
            },
        )
    ]
    for i, word in enumerate(words):
        events.append(
            (
                None,
                {
                    **chunk,
                    **extra,
                    "choices": [
                        {
                            "index": 0,
                            "delta": {"content": word if i == 0 else f" {word}"},
                            "logprobs": None,
                            "finish_reason": None,
                        }
                    ],
                },
            )
        )
    events.append(
        (
            None,
            {
                **chunk,
                **extra,
                "choices": [{"index": 0, "delta": {}, "logprobs": None, "finish_reason": "length"}],
            },
        )
    )
    if include_usage and server.report_usage:
        events.append((None, {**chunk, "choices": [], "usage": usage}))
    events.append((None, "[DONE]"))
    return Reply(events=events)


ROUTES: dict[str, Route] = {
    "POST /v1/chat/completions": chat_completions,
}
