"""OpenAI's wire format for the loopback server: chat and legacy completions (JSON and SSE), embeddings."""

from __future__ import annotations

import base64
import json
import struct
import time
import uuid
from typing import TYPE_CHECKING, Any, Optional

from ...testing._wire import Event, Issued, Reply, count_tokens, reply_words

if TYPE_CHECKING:
    from ...testing._server import ProviderServer
    from ...testing._wire import Route

__all__ = ["ROUTES", "Event", "count_tokens", "finish_reason", "reply_text", "reply_words", "split_reply"]

_REASONING_PREFIXES = ("o1", "o3", "o4", "gpt-5")


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


def finish_reason(body: dict[str, Any]) -> str:
    """``length`` if the request capped the output (the loopback writes up to the cap), else ``stop``."""
    capped = any(
        isinstance(body.get(k), int) for k in ("max_completion_tokens", "max_tokens", "max_output_tokens")
    )
    return "length" if capped else "stop"


def reply_text(words: list[str], schema_format: Any) -> str:
    """The reply: the words, or for a JSON-schema format an object with a value for each property."""
    schema = schema_format.get("schema") if isinstance(schema_format, dict) else None
    if not isinstance(schema, dict):
        return " ".join(words)
    samples = {"integer": 1, "number": 1.0, "boolean": True, "array": [], "object": {}, "null": None}
    values: dict[str, Any] = {}
    for name, spec in (schema.get("properties") or {}).items():
        kind = spec.get("type") if isinstance(spec, dict) else None
        values[name] = samples.get(kind, " ".join(words)) if isinstance(kind, str) else " ".join(words)
    return json.dumps(values)


def split_reply(text: str) -> list[str]:
    """The reply in stream deltas: a word (with its leading space) at a time."""
    parts = text.split(" ")
    return [parts[0]] + [f" {part}" for part in parts[1:]]


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
    response_format = body.get("response_format")
    schema_format = response_format.get("json_schema") if isinstance(response_format, dict) else None
    text = reply_text(words, schema_format)
    finish = finish_reason(body)
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
                        "message": {"role": "assistant", "content": text, "refusal": None},
                        "logprobs": None,
                        "finish_reason": finish,
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
    for piece in split_reply(text):
        events.append(
            (
                None,
                {
                    **chunk,
                    **extra,
                    "choices": [
                        {
                            "index": 0,
                            "delta": {"content": piece},
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
                "choices": [{"index": 0, "delta": {}, "logprobs": None, "finish_reason": finish}],
            },
        )
    )
    if include_usage and server.report_usage:
        events.append((None, {**chunk, "choices": [], "usage": usage}))
    events.append((None, "[DONE]"))
    return Reply(events=events)


def _prompt_tokens(prompt: Any) -> int:
    """Tokens of a completions/embeddings input: words of strings, or the length of token-id arrays."""
    if isinstance(prompt, list) and prompt and all(isinstance(t, int) for t in prompt):
        return len(prompt)
    if isinstance(prompt, list):
        return sum(_prompt_tokens(p) for p in prompt)
    return count_tokens(prompt)


def completions(server: ProviderServer, body: dict[str, Any], headers: dict[str, str]) -> Reply:
    """Legacy completions (``POST /v1/completions``), JSON or SSE, with ``include_usage`` like chat."""
    model, prompt = body.get("model"), body.get("prompt")
    if not isinstance(model, str) or prompt is None:
        return _error(400, "model and prompt are required")
    stream_options = body.get("stream_options")
    if stream_options is not None and server.reject_stream_options:
        return _error(400, "Unrecognized request argument supplied: stream_options")
    stream = bool(body.get("stream"))
    if stream_options is not None and not stream:
        return _error(400, "The 'stream_options' parameter is only allowed when 'stream' is enabled.")
    input_tokens = _prompt_tokens(prompt)
    output_tokens = _max_tokens(body)
    response_id = f"cmpl-{uuid.uuid4().hex}"
    include_usage = bool(isinstance(stream_options, dict) and stream_options.get("include_usage"))
    server.issue(
        Issued(
            response_id,
            "/v1/completions",
            model,
            stream,
            input_tokens,
            output_tokens,
            reported=server.report_usage and (include_usage or not stream),
        )
    )
    usage = {
        "prompt_tokens": input_tokens,
        "completion_tokens": output_tokens,
        "total_tokens": input_tokens + output_tokens,
    }
    base = {"id": response_id, "object": "text_completion", "created": int(time.time()), "model": model}
    text, finish = " ".join(reply_words(output_tokens)), finish_reason(body)
    if not stream:
        choice = {"text": text, "index": 0, "logprobs": None, "finish_reason": finish}
        return Reply(body={**base, "choices": [choice], "usage": usage if server.report_usage else None})
    events: list[Event] = [
        (None, {**base, "choices": [{"text": piece, "index": 0, "logprobs": None, "finish_reason": None}]})
        for piece in split_reply(text)
    ]
    events.append(
        (None, {**base, "choices": [{"text": "", "index": 0, "logprobs": None, "finish_reason": finish}]})
    )
    if include_usage and server.report_usage:
        events.append((None, {**base, "choices": [], "usage": usage}))
    events.append((None, "[DONE]"))
    return Reply(events=events)


def embeddings(server: ProviderServer, body: dict[str, Any], headers: dict[str, str]) -> Reply:
    """``POST /v1/embeddings``: float or base64 (the SDK's default) vectors; no response id, like OpenAI."""
    model, inputs = body.get("model"), body.get("input")
    if not isinstance(model, str) or inputs in (None, [], ""):
        return _error(400, "model and input are required")
    items = inputs if isinstance(inputs, list) and not all(isinstance(t, int) for t in inputs) else [inputs]
    input_tokens = _prompt_tokens(items)
    dimensions = body.get("dimensions")
    size = dimensions if isinstance(dimensions, int) and dimensions > 0 else 8
    server.issue(Issued(f"embedding-{uuid.uuid4().hex}", "/v1/embeddings", model, False, input_tokens, 0))
    data = []
    for index, item in enumerate(items):
        vector = [round((_prompt_tokens(item) + i) / (size + 1), 4) for i in range(size)]
        encoded: Any = vector
        if body.get("encoding_format") == "base64":
            encoded = base64.b64encode(struct.pack(f"<{size}f", *vector)).decode()
        data.append({"object": "embedding", "index": index, "embedding": encoded})
    usage = {"prompt_tokens": input_tokens, "total_tokens": input_tokens}
    return Reply(body={"object": "list", "data": data, "model": model, "usage": usage})


ROUTES: dict[str, Route] = {
    "POST /v1/chat/completions": chat_completions,
    "POST /v1/completions": completions,
    "POST /v1/embeddings": embeddings,
}
