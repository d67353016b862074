"""Mistral's wire format for the loopback server: chat, agents and FIM completions (JSON and SSE)
and embeddings, mounted under :data:`PREFIX` (``Mistral(server_url=server.mistral_url)``).

OpenAI's wire answers the same ``/v1/chat/completions`` at the server's root, so Mistral's routes
live under their own prefix: the path a client is pointed at says which provider it talks to.
"""

from __future__ import annotations

import json
import time
import uuid
from typing import TYPE_CHECKING, Any, Optional

from ...testing._wire import Event, Issued, Reply, Wire, count_tokens, reply_words

if TYPE_CHECKING:
    from ...testing._server import ProviderServer

__all__ = ["PREFIX", "WIRE"]

PREFIX = "/mistral"
"""Where Mistral's API is mounted on the loopback server."""

_AGENT_MODEL = "mistral-medium-latest"


def _error(status: int, message: str) -> Reply:
    return Reply(status=status, body={"object": "error", "message": message, "type": "invalid_request_error"})


def _max_tokens(body: dict[str, Any]) -> int:
    value = body.get("max_tokens")
    return value if isinstance(value, int) and value > 0 else 16


def _completion(
    server: ProviderServer, body: dict[str, Any], path: str, model: str, prompt: Any, input_tokens: int
) -> Reply:
    """A chat-shaped completion (chat, agents, FIM) of ``prompt``, as JSON or as SSE chunks."""
    stream = bool(body.get("stream"))
    output_tokens = _max_tokens(body)
    cached = server.cached_prefix(f"mistral:{json.dumps(prompt, sort_keys=True)}", input_tokens)
    response_id = uuid.uuid4().hex
    usage: dict[str, Any] = {
        "prompt_tokens": input_tokens,
        "completion_tokens": output_tokens,
        "total_tokens": input_tokens + output_tokens,
    }
    if cached:
        usage["prompt_tokens_details"] = {"cached_tokens": cached}
    reported = server.report_usage
    server.issue(
        Issued(response_id, path, model, stream, input_tokens, output_tokens, cached, reported=reported)
    )
    words = reply_words(output_tokens)
    finish = "length" if isinstance(body.get("max_tokens"), int) else "stop"
    base = {"id": response_id, "created": int(time.time()), "model": model}
    if not stream:
        message = {"role": "assistant", "content": " ".join(words), "tool_calls": None}
        choice = {"index": 0, "message": message, "finish_reason": finish}
        reply = {**base, "object": "chat.completion", "choices": [choice]}
        return Reply(body={**reply, "usage": usage} if reported else reply)
    chunk = {**base, "object": "chat.completion.chunk"}

    def delta(content: str, finish_reason: Optional[str] = None, **extra: Any) -> dict[str, Any]:
        choice = {"index": 0, "delta": {"content": content, **extra}, "finish_reason": finish_reason}
        return {**chunk, "choices": [choice]}

    events: list[Event] = [(None, delta("", role="assistant"))]
    events += [(None, delta(word if i == 0 else f" {word}")) for i, word in enumerate(words)]
    last = delta("", finish)
    events.append((None, {**last, "usage": usage} if reported else last))
    events.append((None, "[DONE]"))
    return Reply(events=events)


def _prompt_tokens(messages: list[Any]) -> int:
    """The words of the messages, and 3 per message for its role and framing."""
    return count_tokens(messages) + 3 * len(messages)


def chat_completions(server: ProviderServer, body: dict[str, Any], headers: dict[str, str]) -> Reply:
    model, messages = body.get("model"), body.get("messages")
    if not isinstance(model, str) or not isinstance(messages, list) or not messages:
        return _error(422, "model and messages are required")
    return _completion(server, body, "/v1/chat/completions", model, messages, _prompt_tokens(messages))


def agents_completions(server: ProviderServer, body: dict[str, Any], headers: dict[str, str]) -> Reply:
    agent, messages = body.get("agent_id"), body.get("messages")
    if not isinstance(agent, str) or not isinstance(messages, list) or not messages:
        return _error(422, "agent_id and messages are required")
    return _completion(
        server, body, "/v1/agents/completions", _AGENT_MODEL, messages, _prompt_tokens(messages)
    )


def fim_completions(server: ProviderServer, body: dict[str, Any], headers: dict[str, str]) -> Reply:
    model, prompt = body.get("model"), body.get("prompt")
    if not isinstance(model, str) or not isinstance(prompt, str):
        return _error(422, "model and prompt are required")
    parts = [prompt, body.get("suffix") or ""]
    return _completion(server, body, "/v1/fim/completions", model, parts, count_tokens(parts))


def embeddings(server: ProviderServer, body: dict[str, Any], headers: dict[str, str]) -> Reply:
    model = body.get("model")
    inputs = body.get("inputs", body.get("input"))
    if not isinstance(model, str) or inputs is None:
        return _error(422, "model and inputs are required")
    texts = [inputs] if isinstance(inputs, str) else list(inputs)
    input_tokens = count_tokens(texts)
    response_id = uuid.uuid4().hex
    server.issue(Issued(response_id, "/v1/embeddings", model, False, input_tokens, 0))
    data = [
        {"object": "embedding", "embedding": [0.25, -0.5, 0.125, float(i)], "index": i}
        for i in range(len(texts))
    ]
    usage = {"prompt_tokens": input_tokens, "completion_tokens": 0, "total_tokens": input_tokens}
    return Reply(body={"id": response_id, "object": "list", "data": data, "model": model, "usage": usage})


WIRE = Wire(
    {
        f"POST {PREFIX}/v1/chat/completions": chat_completions,
        f"POST {PREFIX}/v1/agents/completions": agents_completions,
        f"POST {PREFIX}/v1/fim/completions": fim_completions,
        f"POST {PREFIX}/v1/embeddings": embeddings,
    }
)
