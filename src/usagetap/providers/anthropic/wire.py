"""Anthropic's wire format for the loopback server: Messages (JSON and SSE), token counting, Message
Batches, and the Bedrock (``/model/{id}/invoke``, AWS event stream) and Vertex (``:rawPredict``) routes.

Token counts are deterministic. Input: the words of the tools, system prompt and
messages, plus 3 per message. Prompt caching follows ``cache_control`` breakpoints
(and the top-level ``cache_control`` of automatic caching): the longest prefix
seen before is read from the cache, the rest up to the last breakpoint is
written, split by each breakpoint's ``ttl``. Output: ``min(max_tokens, 48)`` (the
server's ``anthropic_max_output``),
a quarter of it thinking when ``thinking`` is on. A ``web_search`` /
``web_fetch`` server tool is used once per request that offers it, and so is a
``code_execution_*`` tool: one ``server_tool_use`` block (``bash_code_execution``, or
``code_execution`` for ``code_execution_20250522``) and its result, in the message's
``container`` (the request's ``container`` id when it names one, a new one otherwise; in a
stream the ``container`` comes in ``message_delta``).
"""

from __future__ import annotations

import base64
import json
import re
import time
import uuid
import zlib
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any, Optional
from urllib.parse import unquote

from ...testing._wire import Event, Issued, Reply, Wire, count_tokens, reply_words

if TYPE_CHECKING:
    from ...testing._server import ProviderServer
    from ...testing._wire import PatternRoute, Route

__all__ = ["PATTERNS", "ROUTES", "WIRE", "event_stream_message"]
_STREAM_ERROR: tuple[str, dict[str, Any]] = (
    "error",
    {"type": "error", "error": {"type": "overloaded_error", "message": "injected mid-stream failure"}},
)


def _error(status: int, message: str, kind: str = "invalid_request_error") -> Reply:
    return Reply(status=status, body={"type": "error", "error": {"type": kind, "message": message}})


def _invalid(body: dict[str, Any], *, model_required: bool = True) -> Optional[str]:
    messages = body.get("messages")
    if model_required and not isinstance(body.get("model"), str):
        return "model: Field required"
    if not isinstance(messages, list) or not messages:
        return "messages: Field required"
    max_tokens = body.get("max_tokens")
    if not isinstance(max_tokens, int) or isinstance(max_tokens, bool) or max_tokens < 1:
        return "max_tokens: Field required"
    return None


# -- tokens ------------------------------------------------------------------


def _blocks(content: Any) -> list[Any]:
    return [content] if isinstance(content, str) else list(content or [])


def _prompt_parts(body: dict[str, Any]) -> list[tuple[int, Optional[dict[str, Any]], Any]]:
    """The prompt in cache order (tools, system, messages): ``(tokens, cache_control, part)``."""
    parts: list[tuple[int, Optional[dict[str, Any]], Any]] = []
    for tool in body.get("tools") or []:
        parts.append((count_tokens(tool), tool.get("cache_control"), tool))
    for block in _blocks(body.get("system")):
        control = block.get("cache_control") if isinstance(block, dict) else None
        parts.append((count_tokens(block), control, block))
    for message in body.get("messages") or []:
        blocks = _blocks(message.get("content"))
        for i, block in enumerate(blocks):
            control = block.get("cache_control") if isinstance(block, dict) else None
            parts.append((count_tokens(block) + (3 if i == 0 else 0), control, block))
        if not blocks:
            parts.append((3, None, None))
    automatic = body.get("cache_control")
    if isinstance(automatic, dict) and parts:
        tokens, _, part = parts[-1]
        parts[-1] = (tokens, automatic, part)
    return parts


def _usage_of_prompt(server: ProviderServer, model: str, body: dict[str, Any]) -> dict[str, int]:
    """Input tokens split the way Anthropic reports them: uncached, cache read, cache written (by TTL)."""
    parts = _prompt_parts(body)
    total = sum(tokens for tokens, _, _ in parts)
    breakpoints: list[tuple[int, str, str]] = []  # (cumulative tokens, ttl, prefix key)
    cumulative = 0
    for i, (tokens, control, _) in enumerate(parts):
        cumulative += tokens
        if control:
            key = json.dumps([model, [p for _, _, p in parts[: i + 1]]], sort_keys=True, default=str)
            breakpoints.append((cumulative, str(control.get("ttl") or "5m"), key))
    seen = [server.remember(key) for _, _, key in breakpoints]
    read = 0
    for (position, _, _), hit in zip(breakpoints, seen, strict=False):
        if hit:
            read = position
    written = {"5m": 0, "1h": 0}
    previous = read
    for position, ttl, _ in breakpoints:
        if position > previous:
            written["1h" if ttl == "1h" else "5m"] += position - previous
            previous = position
    write = written["5m"] + written["1h"]
    return {
        "input_tokens": total - read - write,
        "cache_read_input_tokens": read,
        "cache_creation_input_tokens": write,
        "ephemeral_5m_input_tokens": written["5m"],
        "ephemeral_1h_input_tokens": written["1h"],
    }


def _server_tools(body: dict[str, Any]) -> dict[str, int]:
    used = {"web_search_requests": 0, "web_fetch_requests": 0}
    for tool in body.get("tools") or []:
        kind = str(tool.get("type") or "")
        if kind.startswith("web_search"):
            used["web_search_requests"] = 1
        elif kind.startswith("web_fetch"):
            used["web_fetch_requests"] = 1
    return used


def _code_execution(body: dict[str, Any]) -> Optional[str]:
    """The name of the code execution call a request offering that tool gets, or None."""
    for tool in body.get("tools") or []:
        kind = str(tool.get("type") or "")
        if kind.startswith("code_execution_"):
            return "code_execution" if kind == "code_execution_20250522" else "bash_code_execution"
    return None


def _code_execution_blocks(name: str) -> list[dict[str, Any]]:
    """One code execution call and its result block, as Anthropic returns them."""
    tool_id = f"srvtoolu_{uuid.uuid4().hex[:24]}"
    if name == "code_execution":
        call, kind = {"code": "print(6 * 7)"}, "code_execution_result"
    else:
        call, kind = {"command": "echo $((6 * 7))"}, "bash_code_execution_result"
    result = {"type": kind, "stdout": "42\n", "stderr": "", "return_code": 0, "content": []}
    return [
        {"type": "server_tool_use", "id": tool_id, "name": name, "input": call},
        {"type": f"{name}_tool_result", "tool_use_id": tool_id, "content": result},
    ]


def _container(body: dict[str, Any]) -> dict[str, Any]:
    asked = body.get("container")
    container_id = asked if isinstance(asked, str) and asked else f"container_{uuid.uuid4().hex[:24]}"
    return {"id": container_id, "expires_at": _iso(time.time() + timedelta(days=30).total_seconds())}


def _output_schema(body: dict[str, Any]) -> Optional[dict[str, Any]]:
    config = body.get("output_config")
    form = config.get("format") if isinstance(config, dict) else None
    if isinstance(form, dict) and form.get("type") == "json_schema" and isinstance(form.get("schema"), dict):
        schema: dict[str, Any] = form["schema"]
        return schema
    return None


def _fill(schema: dict[str, Any], defs: Optional[dict[str, Any]] = None) -> Any:
    """A value that satisfies a (simple) JSON schema, for structured outputs."""
    defs = schema.get("$defs", defs) or {}
    ref = schema.get("$ref")
    if isinstance(ref, str):
        return _fill(defs.get(ref.rsplit("/", 1)[-1], {}), defs)
    if "enum" in schema:
        return schema["enum"][0]
    for key in ("anyOf", "oneOf", "allOf"):
        if schema.get(key):
            return _fill(schema[key][0], defs)
    kind = schema.get("type")
    if kind == "object":
        return {name: _fill(sub, defs) for name, sub in (schema.get("properties") or {}).items()}
    return {"array": [], "string": "usage", "integer": 1, "number": 1.5, "boolean": True, "null": None}.get(
        str(kind), "usage"
    )


# -- messages ----------------------------------------------------------------


def _message(
    server: ProviderServer,
    body: dict[str, Any],
    model: str,
    *,
    path: str,
    stream: bool,
    batch_key: Optional[str] = None,
) -> dict[str, Any]:
    """A whole Message (as a non-streaming response returns it), issued under its id (or ``batch_key``)."""
    prompt = _usage_of_prompt(server, model, body)
    tools = _server_tools(body)
    output = min(int(body["max_tokens"]), server.anthropic_max_output)
    thinking = body.get("thinking")
    thinks = isinstance(thinking, dict) and thinking.get("type") in ("enabled", "adaptive")
    thinking_tokens = output // 4 if thinks else 0
    message_id = f"msg_{uuid.uuid4().hex[:24]}"

    content: list[dict[str, Any]] = []
    if thinking_tokens:
        thought = " ".join(reply_words(thinking_tokens))
        content.append({"type": "thinking", "thinking": thought, "signature": "sig_" + uuid.uuid4().hex})
    for name, kind, result in (
        ("web_search", "web_search_requests", "web_search_tool_result"),
        ("web_fetch", "web_fetch_requests", "web_fetch_tool_result"),
    ):
        if tools[kind]:
            tool_id = f"srvtoolu_{uuid.uuid4().hex[:24]}"
            content.append(
                {"type": "server_tool_use", "id": tool_id, "name": name, "input": {"query": "usage"}}
            )
            content.append({"type": result, "tool_use_id": tool_id, "content": []})
    code_execution = _code_execution(body)
    if code_execution is not None:
        content.extend(_code_execution_blocks(code_execution))
    schema = _output_schema(body)
    text = " ".join(reply_words(output - thinking_tokens)) if schema is None else json.dumps(_fill(schema))
    content.append({"type": "text", "text": text})

    usage: dict[str, Any] = {
        "input_tokens": prompt["input_tokens"],
        "cache_creation_input_tokens": prompt["cache_creation_input_tokens"],
        "cache_read_input_tokens": prompt["cache_read_input_tokens"],
        "cache_creation": {
            "ephemeral_5m_input_tokens": prompt["ephemeral_5m_input_tokens"],
            "ephemeral_1h_input_tokens": prompt["ephemeral_1h_input_tokens"],
        },
        "output_tokens": output,
        "service_tier": "standard" if batch_key is None else "batch",
    }
    if any(tools.values()) or code_execution is not None:
        usage["server_tool_use"] = tools
    if thinking_tokens:
        usage["output_tokens_details"] = {"thinking_tokens": thinking_tokens}
    read, write = prompt["cache_read_input_tokens"], prompt["cache_creation_input_tokens"]
    dimensions: dict[str, Any] = {k: v for k, v in tools.items() if v}
    container = None if code_execution is None else _container(body)
    if container is not None:
        dimensions["code_execution_requests"] = 1
        dimensions["container_id"] = container["id"]
    if batch_key is not None:
        dimensions["batch"] = True
    if write:
        dimensions["cache_write_5m_tokens"] = prompt["ephemeral_5m_input_tokens"]
        dimensions["cache_write_1h_tokens"] = prompt["ephemeral_1h_input_tokens"]
    server.issue(
        Issued(
            message_id if batch_key is None else batch_key,
            path,
            model,
            stream,
            prompt["input_tokens"] + read + write,
            output,
            cache_read_tokens=read,
            cache_write_tokens=write,
            reasoning_tokens=thinking_tokens,
            dimensions=dimensions,
        )
    )
    message = {
        "id": message_id,
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": content,
        "stop_reason": "max_tokens" if output == body["max_tokens"] else "end_turn",
        "stop_sequence": None,
        "usage": usage,
    }
    if container is not None:
        message["container"] = container
    return message


def _stream_events(message: dict[str, Any]) -> list[Event]:
    """The SSE event sequence Anthropic sends for ``message``, with its cumulative ``message_delta``."""
    usage = message["usage"]
    start_usage = {k: v for k, v in usage.items() if k not in ("output_tokens_details", "server_tool_use")}
    start_usage["output_tokens"] = 1
    start_message = {k: v for k, v in message.items() if k != "container"}
    events: list[Event] = [
        (
            "message_start",
            {
                "type": "message_start",
                "message": {
                    **start_message,
                    "content": [],
                    "stop_reason": None,
                    "stop_sequence": None,
                    "usage": start_usage,
                },
            },
        )
    ]
    for index, block in enumerate(message["content"]):
        kind = block["type"]
        if kind == "text":
            start: dict[str, Any] = {"type": "text", "text": ""}
            deltas = [
                {"type": "text_delta", "text": word if i == 0 else f" {word}"}
                for i, word in enumerate(block["text"].split())
            ]
        elif kind == "thinking":
            start = {"type": "thinking", "thinking": "", "signature": ""}
            deltas = [{"type": "thinking_delta", "thinking": block["thinking"]}]
            deltas.append({"type": "signature_delta", "signature": block["signature"]})
        elif kind == "server_tool_use":  # web search / fetch and code execution calls
            start = {**block, "input": {}}
            deltas = [{"type": "input_json_delta", "partial_json": json.dumps(block["input"])}]
        else:
            start, deltas = block, []
        events.append(
            ("content_block_start", {"type": "content_block_start", "index": index, "content_block": start})
        )
        if index == 0:
            events.append(("ping", {"type": "ping"}))
        for delta in deltas:
            events.append(
                ("content_block_delta", {"type": "content_block_delta", "index": index, "delta": delta})
            )
        events.append(("content_block_stop", {"type": "content_block_stop", "index": index}))
    final_usage = {
        k: usage[k]
        for k in (
            "input_tokens",
            "cache_creation_input_tokens",
            "cache_read_input_tokens",
            "output_tokens",
            "server_tool_use",
            "output_tokens_details",
        )
        if k in usage
    }
    events.append(
        (
            "message_delta",
            {
                "type": "message_delta",
                "delta": _final_delta(message),
                "usage": final_usage,
            },
        )
    )
    events.append(("message_stop", {"type": "message_stop"}))
    return events


def _final_delta(message: dict[str, Any]) -> dict[str, Any]:
    delta: dict[str, Any] = {"stop_reason": message["stop_reason"], "stop_sequence": None}
    if "container" in message:
        delta["container"] = message["container"]
    return delta


def messages(server: ProviderServer, body: dict[str, Any], headers: dict[str, str]) -> Reply:
    problem = _invalid(body)
    if problem:
        return _error(400, problem)
    stream = bool(body.get("stream"))
    message = _message(server, body, body["model"], path="/v1/messages", stream=stream)
    if not stream:
        return Reply(body=message, headers={"request-id": f"req_{uuid.uuid4().hex[:24]}"})
    return Reply(events=_stream_events(message), error_event=_STREAM_ERROR)


def count_tokens_route(server: ProviderServer, body: dict[str, Any], headers: dict[str, str]) -> Reply:
    if not isinstance(body.get("messages"), list) or not body["messages"]:
        return _error(400, "messages: Field required")
    tokens = sum(tokens for tokens, _, _ in _prompt_parts(body))
    return Reply(body={"input_tokens": tokens})


# -- message batches -----------------------------------------------------------


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, timezone.utc).isoformat().replace("+00:00", "Z")


def _batches(server: ProviderServer) -> dict[str, dict[str, Any]]:
    batches: dict[str, dict[str, Any]] = server.state.setdefault("anthropic_batches", {})
    return batches


def create_batch(server: ProviderServer, body: dict[str, Any], headers: dict[str, str]) -> Reply:
    requests = body.get("requests")
    if not isinstance(requests, list) or not requests:
        return _error(400, "requests: Field required")
    batch_id = f"msgbatch_{uuid.uuid4().hex[:24]}"
    lines: list[dict[str, Any]] = []
    for request in requests:
        custom_id, params = request.get("custom_id"), request.get("params") or {}
        problem = _invalid(params)
        if problem:
            error = {"type": "error", "error": {"type": "invalid_request_error", "message": problem}}
            lines.append({"custom_id": custom_id, "result": {"type": "errored", "error": error}})
            continue
        message = _message(
            server,
            params,
            params["model"],
            path="/v1/messages/batches",
            stream=False,
            batch_key=f"{batch_id}:{custom_id}",
        )
        lines.append({"custom_id": custom_id, "result": {"type": "succeeded", "message": message}})
    now = time.time()
    succeeded = sum(1 for line in lines if line["result"]["type"] == "succeeded")
    batch = {
        "id": batch_id,
        "type": "message_batch",
        "processing_status": "in_progress",
        "request_counts": {
            "processing": len(lines),
            "succeeded": 0,
            "errored": 0,
            "canceled": 0,
            "expired": 0,
        },
        "created_at": _iso(now),
        "expires_at": _iso(now + timedelta(days=1).total_seconds()),
        "ended_at": None,
        "archived_at": None,
        "cancel_initiated_at": None,
        "results_url": None,
    }
    _batches(server)[batch_id] = {
        "batch": batch,
        "lines": lines,
        "final": {"succeeded": succeeded, "errored": len(lines) - succeeded},
    }
    return Reply(body=batch)


def retrieve_batch(
    server: ProviderServer, body: dict[str, Any], headers: dict[str, str], match: re.Match[str]
) -> Reply:
    entry = _batches(server).get(match.group("batch"))
    if entry is None:
        return _error(404, "batch not found", "not_found_error")
    batch = dict(entry["batch"])
    batch.update(
        processing_status="ended",
        request_counts={"processing": 0, **entry["final"], "canceled": 0, "expired": 0},
        ended_at=_iso(time.time()),
        results_url=f"{server.url}/v1/messages/batches/{batch['id']}/results",
    )
    return Reply(body=batch)


def batch_results(
    server: ProviderServer, body: dict[str, Any], headers: dict[str, str], match: re.Match[str]
) -> Reply:
    entry = _batches(server).get(match.group("batch"))
    if entry is None:
        return _error(404, "batch not found", "not_found_error")
    data = b"".join(json.dumps(line).encode() + b"\n" for line in entry["lines"])
    return Reply(raw=data, headers={"Content-Type": "application/binary"})


# -- Bedrock and Vertex ---------------------------------------------------------


def _platform_message(
    server: ProviderServer, body: dict[str, Any], model: str, path: str, stream: bool
) -> Any:
    problem = _invalid(body, model_required=False)
    if problem:
        return _error(400, problem)
    if "anthropic_version" not in body:
        return _error(400, "anthropic_version: Field required")
    return _message(server, body, model, path=path, stream=stream)


def bedrock_invoke(
    server: ProviderServer, body: dict[str, Any], headers: dict[str, str], match: re.Match[str]
) -> Reply:
    stream = match.group("action") == "invoke-with-response-stream"
    message = _platform_message(server, body, unquote(match.group("model")), match.group(0), stream)
    if isinstance(message, Reply):
        return message
    if not stream:
        return Reply(body=message)
    frames: list[bytes] = []
    events = [data for name, data in _stream_events(message) if name != "ping"]
    if server.stream_error_after is not None:
        events = events[: server.stream_error_after]
    for event in events:
        assert isinstance(event, dict)
        data = event
        if event["type"] == "message_stop":
            usage = message["usage"]
            data = {
                **event,
                "amazon-bedrock-invocationMetrics": {
                    "inputTokenCount": usage["input_tokens"],
                    "outputTokenCount": usage["output_tokens"],
                    "invocationLatency": 10,
                    "firstByteLatency": 5,
                },
            }
        payload = {"bytes": base64.b64encode(json.dumps(data).encode()).decode(), "p": "abcdefghijklmnopqr"}
        frames.append(
            event_stream_message(
                {":event-type": "chunk", ":content-type": "application/json", ":message-type": "event"},
                json.dumps(payload).encode(),
            )
        )
    if server.stream_error_after is not None:
        frames.append(
            event_stream_message(
                {
                    ":exception-type": "internalServerException",
                    ":content-type": "application/json",
                    ":message-type": "exception",
                },
                json.dumps({"message": "injected mid-stream failure"}).encode(),
            )
        )
    return Reply(
        raw=b"".join(frames),
        headers={
            "Content-Type": "application/vnd.amazon.eventstream",
            "X-Amzn-Bedrock-Content-Type": "application/json",
        },
    )


def event_stream_message(headers: dict[str, str], payload: bytes) -> bytes:
    """One message of the AWS event stream encoding (string headers), as Bedrock streams responses."""
    encoded = b"".join(
        bytes([len(name)]) + name.encode() + b"\x07" + len(value.encode()).to_bytes(2, "big") + value.encode()
        for name, value in headers.items()
    )
    total = 12 + len(encoded) + len(payload) + 4
    prelude = total.to_bytes(4, "big") + len(encoded).to_bytes(4, "big")
    message = prelude + zlib.crc32(prelude).to_bytes(4, "big") + encoded + payload
    return message + zlib.crc32(message).to_bytes(4, "big")


def vertex_predict(
    server: ProviderServer, body: dict[str, Any], headers: dict[str, str], match: re.Match[str]
) -> Reply:
    model = unquote(match.group("model"))
    if model == "count-tokens":
        return count_tokens_route(server, body, headers)
    stream = match.group("action") == "streamRawPredict"
    if stream != bool(body.get("stream")):
        return _error(400, f"{match.group('action')} needs stream={str(stream).lower()}")
    message = _platform_message(server, body, model, match.group(0), stream)
    if isinstance(message, Reply):
        return message
    if not stream:
        return Reply(body=message)
    return Reply(events=_stream_events(message), error_event=_STREAM_ERROR)


ROUTES: dict[str, Route] = {
    "POST /v1/messages": messages,
    "POST /v1/messages/count_tokens": count_tokens_route,
    "POST /v1/messages/batches": create_batch,
}

PATTERNS: list[tuple[str, re.Pattern[str], PatternRoute]] = [
    ("GET", re.compile(r"/v1/messages/batches/(?P<batch>[^/]+)"), retrieve_batch),
    ("GET", re.compile(r"/v1/messages/batches/(?P<batch>[^/]+)/results"), batch_results),
    (
        "POST",
        re.compile(r"/model/(?P<model>[^/]+)/(?P<action>invoke|invoke-with-response-stream)"),
        bedrock_invoke,
    ),
    (
        "POST",
        re.compile(
            r"(?:/v1)?/projects/[^/]+/locations/[^/]+/publishers/anthropic/models/"
            r"(?P<model>[^/:]+):(?P<action>rawPredict|streamRawPredict)"
        ),
        vertex_predict,
    ),
]

WIRE = Wire(ROUTES, PATTERNS)
