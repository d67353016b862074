"""Bedrock Runtime's wire format for the loopback server, as boto3's ``bedrock-runtime`` client speaks it.

``POST /model/{modelId}/converse`` and ``/converse-stream`` (Converse, any model), ``/invoke`` and
``/invoke-with-response-stream`` (InvokeModel, in the model family's own body: Anthropic Messages,
Amazon Nova and Titan, Meta Llama, Mistral, Cohere). Streams use the AWS event-stream framing
(``application/vnd.amazon.eventstream``). Any SigV4 signature is accepted. Point a real client at it::

    boto3.client("bedrock-runtime", endpoint_url=server.url, region_name="us-east-1",
                 aws_access_key_id="test", aws_secret_access_key="test")

Token counts are deterministic: input is the words of the prompt (Converse and Nova: plus 3 per
message), output ``min(max tokens, 48)`` (16 by default). Converse ``cachePoint`` blocks cache
the prompt before the last one: written the first time (``cacheDetails`` by its ``ttl``), read
after. Every usage report is kept in ``server.issued`` under the response's ``x-amzn-requestid``.
With ``server.report_usage = False`` a stream ends before its usage (``metadata`` event, invocation
metrics); with ``server.state["bedrock_count_headers"] = False`` InvokeModel answers without its
``x-amzn-bedrock-*-token-count`` headers. Claude bodies (``anthropic_version``) on ``/invoke`` are
answered by Anthropic's wire (``AnthropicBedrock`` speaks it too), with Bedrock's count headers.
"""

from __future__ import annotations

import base64
import json
import uuid
from typing import TYPE_CHECKING, Any, Optional
from urllib.parse import unquote

from ...testing._wire import Issued, Reply, Wire, count_tokens, reply_words
from ..anthropic import wire as anthropic_wire
from ..anthropic.wire import event_stream_message
from .usage import family_of

if TYPE_CHECKING:
    from ...testing._server import ProviderServer

__all__ = ["WIRE"]

_EVENT_STREAM = "application/vnd.amazon.eventstream"
_MAX_OUTPUT = 48
_NATIVE = frozenset({"amazon", "meta", "mistral", "cohere"})  # InvokeModel bodies answered here


def _error(status: int, message: str, kind: str = "ValidationException") -> Reply:
    return Reply(status=status, body={"message": message}, headers={"x-amzn-ErrorType": kind})


def _request_id() -> str:
    return str(uuid.uuid4())


def _output(limit: Any) -> int:
    return min(
        limit if isinstance(limit, int) and not isinstance(limit, bool) and limit > 0 else 16, _MAX_OUTPUT
    )


def _frame(event: str, data: Any) -> bytes:
    headers = {":event-type": event, ":content-type": "application/json", ":message-type": "event"}
    return event_stream_message(headers, json.dumps(data).encode())


def _stream(server: ProviderServer, frames: list[bytes], request_id: str) -> Reply:
    """An event-stream reply; cut after ``server.stream_error_after`` frames by an exception, if set."""
    if server.stream_error_after is not None:
        frames = frames[: server.stream_error_after]
        frames.append(
            event_stream_message(
                {
                    ":exception-type": "modelStreamErrorException",
                    ":content-type": "application/json",
                    ":message-type": "exception",
                },
                json.dumps({"message": "injected mid-stream failure"}).encode(),
            )
        )
    return Reply(
        raw=b"".join(frames),
        headers={"Content-Type": _EVENT_STREAM, "x-amzn-requestid": request_id},
    )


# -- Converse --------------------------------------------------------------------


def _blocks_before_last_cache_point(body: dict[str, Any]) -> tuple[list[Any], Optional[dict[str, Any]]]:
    """The prompt (tools, system, messages, in cache order) up to its last ``cachePoint``, and that point."""
    ordered: list[Any] = []
    tools = (body.get("toolConfig") or {}).get("tools") or []
    ordered += [("tool", tool) for tool in tools]
    ordered += [("system", block) for block in body.get("system") or []]
    for message in body.get("messages") or []:
        ordered += [("message", block) for block in message.get("content") or []]
    last = max((i for i, (_, block) in enumerate(ordered) if "cachePoint" in block), default=None)
    if last is None:
        return [], None
    return ordered[:last], ordered[last][1]["cachePoint"]


def _converse_usage(server: ProviderServer, body: dict[str, Any]) -> dict[str, Any]:
    messages = body.get("messages") or []
    total = count_tokens(body.get("system") or []) + count_tokens(messages) + 3 * len(messages)
    total += count_tokens((body.get("toolConfig") or {}).get("tools") or [])
    prefix, point = _blocks_before_last_cache_point(body)
    cached = count_tokens([block for _, block in prefix])
    read = write = 0
    if point is not None and cached:
        if server.remember("bedrock-cache:" + json.dumps(prefix, sort_keys=True)):
            read = cached
        else:
            write = cached
    output = _output((body.get("inferenceConfig") or {}).get("maxTokens"))
    usage: dict[str, Any] = {
        "inputTokens": total - read - write,
        "outputTokens": output,
        "totalTokens": total + output,
    }
    if point is not None:
        usage.update(
            cacheReadInputTokens=read,
            cacheWriteInputTokens=write,
            cacheReadInputTokenCount=read,  # the legacy names, still sent alongside
            cacheWriteInputTokenCount=write,
        )
        if write:
            usage["cacheDetails"] = [{"inputTokens": write, "ttl": (point or {}).get("ttl", "5m")}]
    return usage


def _issue(server: ProviderServer, request_id: str, path: str, model: str, stream: bool, usage: Any) -> None:
    read = usage.get("cacheReadInputTokens", 0)
    write = usage.get("cacheWriteInputTokens", 0)
    server.issue(
        Issued(
            request_id,
            path,
            model,
            stream,
            usage["inputTokens"] + read + write,
            usage["outputTokens"],
            cache_read_tokens=read,
            cache_write_tokens=write,
            reported=server.report_usage or not stream,
        )
    )


def converse(server: ProviderServer, body: dict[str, Any], headers: dict[str, str], params: Any) -> Reply:
    model = unquote(params["model"])
    if not isinstance(body.get("messages"), list) or not body["messages"]:
        return _error(400, "messages: Field required")
    usage = _converse_usage(server, body)
    request_id = _request_id()
    _issue(server, request_id, f"/model/{model}/converse", model, False, usage)
    words = reply_words(usage["outputTokens"])
    limited = usage["outputTokens"] == (body.get("inferenceConfig") or {}).get("maxTokens")
    return Reply(
        body={
            "output": {"message": {"role": "assistant", "content": [{"text": " ".join(words)}]}},
            "stopReason": "max_tokens" if limited else "end_turn",
            "usage": usage,
            "metrics": {"latencyMs": 12},
        },
        headers={"x-amzn-requestid": request_id},
    )


def converse_stream(
    server: ProviderServer, body: dict[str, Any], headers: dict[str, str], params: Any
) -> Reply:
    model = unquote(params["model"])
    if not isinstance(body.get("messages"), list) or not body["messages"]:
        return _error(400, "messages: Field required")
    usage = _converse_usage(server, body)
    request_id = _request_id()
    _issue(server, request_id, f"/model/{model}/converse-stream", model, True, usage)
    frames = [_frame("messageStart", {"role": "assistant"})]
    for i, word in enumerate(reply_words(usage["outputTokens"])):
        text = word if i == 0 else f" {word}"
        frames.append(_frame("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": text}}))
    frames.append(_frame("contentBlockStop", {"contentBlockIndex": 0}))
    frames.append(_frame("messageStop", {"stopReason": "end_turn"}))
    if server.report_usage:
        frames.append(_frame("metadata", {"usage": usage, "metrics": {"latencyMs": 12}}))
    return _stream(server, frames, request_id)


# -- InvokeModel -----------------------------------------------------------------


def _prompt(family: Optional[str], body: dict[str, Any]) -> Optional[tuple[int, Any]]:
    """``(input tokens, output limit)`` of an InvokeModel body in the family's format, or None."""
    if family == "amazon" and "messages" in body:
        messages = body["messages"]
        tokens = count_tokens(body.get("system") or []) + count_tokens(messages) + 3 * len(messages)
        return tokens, (body.get("inferenceConfig") or {}).get("maxTokens") or 16
    if family == "amazon" and "inputText" in body:
        return count_tokens(body["inputText"]), (body.get("textGenerationConfig") or {}).get("maxTokenCount")
    if family == "meta" and "prompt" in body:
        return count_tokens(body["prompt"]), body.get("max_gen_len")
    if family == "mistral" and "prompt" in body:
        return count_tokens(body["prompt"]), body.get("max_tokens")
    if family == "cohere" and ("message" in body or "prompt" in body):
        return count_tokens(body.get("message") or body.get("prompt")), body.get("max_tokens")
    return None


def _invoke_body(family: str, body: dict[str, Any], input_tokens: int, words: list[str]) -> dict[str, Any]:
    text, output = " ".join(words), len(words)
    if family == "amazon" and "messages" in body:
        return {
            "output": {"message": {"role": "assistant", "content": [{"text": text}]}},
            "stopReason": "end_turn",
            "usage": {
                "inputTokens": input_tokens,
                "outputTokens": output,
                "totalTokens": input_tokens + output,
                "cacheReadInputTokenCount": 0,
                "cacheWriteInputTokenCount": 0,
            },
        }
    if family == "amazon":
        return {
            "inputTextTokenCount": input_tokens,
            "results": [{"tokenCount": output, "outputText": text, "completionReason": "FINISH"}],
        }
    if family == "meta":
        return {
            "generation": text,
            "prompt_token_count": input_tokens,
            "generation_token_count": output,
            "stop_reason": "stop",
        }
    if family == "mistral":
        return {"outputs": [{"text": text, "stop_reason": "stop"}]}
    if "message" in body:
        return {
            "response_id": _request_id(),
            "text": text,
            "generation_id": _request_id(),
            "finish_reason": "COMPLETE",
        }
    return {
        "id": _request_id(),
        "generations": [{"id": _request_id(), "text": text, "finish_reason": "COMPLETE"}],
    }


def _stream_chunks(
    family: str, body: dict[str, Any], input_tokens: int, words: list[str]
) -> list[dict[str, Any]]:
    """The chunks an InvokeModel stream of the family sends (invocation metrics are added to the last)."""
    output = len(words)
    texts = [w if i == 0 else f" {w}" for i, w in enumerate(words)]
    if family == "amazon" and "messages" in body:
        usage = {"inputTokens": input_tokens, "outputTokens": output}
        return [
            {"messageStart": {"role": "assistant"}},
            *({"contentBlockDelta": {"delta": {"text": t}, "contentBlockIndex": 0}} for t in texts),
            {"contentBlockStop": {"contentBlockIndex": 0}},
            {"messageStop": {"stopReason": "end_turn"}},
            {"metadata": {"usage": usage, "metrics": {}, "trace": {}}},
        ]
    if family == "amazon":
        return [
            {"outputText": " ".join(words), "index": 0, "inputTextTokenCount": input_tokens},
            {"outputText": "", "index": 0, "totalOutputTextTokenCount": output, "completionReason": "FINISH"},
        ]
    if family == "meta":
        last = len(texts) - 1
        return [
            {
                "generation": t,
                "prompt_token_count": input_tokens if i == 0 else None,
                "generation_token_count": i + 1,
                "stop_reason": "stop" if i == last else None,
            }
            for i, t in enumerate(texts)
        ]
    if family == "mistral":
        return [{"outputs": [{"text": t, "stop_reason": None}]} for t in texts] + [
            {"outputs": [{"text": "", "stop_reason": "stop"}]}
        ]
    return [{"is_finished": False, "event_type": "text-generation", "text": t} for t in texts] + [
        {"is_finished": True, "event_type": "stream-end", "finish_reason": "COMPLETE"}
    ]


def invoke(server: ProviderServer, body: dict[str, Any], headers: dict[str, str], params: Any) -> Reply:
    return _invoke(server, body, headers, params, "invoke")


def invoke_stream(
    server: ProviderServer, body: dict[str, Any], headers: dict[str, str], params: Any
) -> Reply:
    return _invoke(server, body, headers, params, "invoke-with-response-stream")


def _invoke(
    server: ProviderServer, body: dict[str, Any], headers: dict[str, str], params: Any, action: str
) -> Reply:
    path = f"/model/{params['model']}/{action}"
    model = unquote(params["model"])
    stream = action != "invoke"
    family = family_of(model)
    prompt = None if "anthropic_version" in body else _prompt(family, body)
    if family is None or family == "anthropic" or (prompt is None and family not in _NATIVE):
        return _anthropic(server, body, headers, path, stream)
    if prompt is None:
        return _error(400, f"Malformed input request for model {model}")
    input_tokens, limit = prompt
    words = reply_words(_output(limit))
    request_id = _request_id()
    server.issue(
        Issued(
            request_id,
            path,
            model,
            stream,
            input_tokens,
            len(words),
            reported=server.report_usage or not stream,
        )
    )
    if not stream:
        counts = {
            "x-amzn-bedrock-input-token-count": str(input_tokens),
            "x-amzn-bedrock-output-token-count": str(len(words)),
            "x-amzn-bedrock-invocation-latency": "12",
        }
        if family == "amazon":
            counts.update(
                {
                    "x-amzn-bedrock-cache-read-input-token-count": "0",
                    "x-amzn-bedrock-cache-write-input-token-count": "0",
                }
            )
        reply_headers = {"x-amzn-requestid": request_id}
        if server.state.get("bedrock_count_headers", True):
            reply_headers.update(counts)
        return Reply(body=_invoke_body(family, body, input_tokens, words), headers=reply_headers)
    chunks = _stream_chunks(family, body, input_tokens, words)
    if server.report_usage:
        chunks[-1] = {
            **chunks[-1],
            "amazon-bedrock-invocationMetrics": {
                "inputTokenCount": input_tokens,
                "outputTokenCount": len(words),
                "invocationLatency": 12,
                "firstByteLatency": 5,
            },
        }
    frames = [_chunk(chunk) for chunk in chunks]
    return _stream(server, frames, request_id)


def _chunk(data: dict[str, Any]) -> bytes:
    return _frame("chunk", {"bytes": base64.b64encode(json.dumps(data).encode()).decode()})


def _anthropic(
    server: ProviderServer, body: dict[str, Any], headers: dict[str, str], path: str, stream: bool
) -> Reply:
    """A Claude body, answered by Anthropic's wire, with the request id and count headers Bedrock adds."""
    matches = (pattern.fullmatch(path) for verb, pattern, _ in anthropic_wire.PATTERNS if verb == "POST")
    match = next(m for m in matches if m is not None)
    reply = anthropic_wire.bedrock_invoke(server, body, headers, match)
    if reply.status != 200:
        return reply
    message_id = _first_message_id(reply.raw) if stream else reply.body["id"]
    reply.headers["x-amzn-requestid"] = message_id
    if not stream and server.state.get("bedrock_count_headers", True):
        usage = reply.body["usage"]
        reply.headers.update(
            {
                "x-amzn-bedrock-input-token-count": str(usage["input_tokens"]),
                "x-amzn-bedrock-output-token-count": str(usage["output_tokens"]),
                "x-amzn-bedrock-cache-read-input-token-count": str(usage["cache_read_input_tokens"]),
                "x-amzn-bedrock-cache-write-input-token-count": str(usage["cache_creation_input_tokens"]),
            }
        )
    return reply


def _first_message_id(raw: Optional[bytes]) -> str:
    """The message id in the ``message_start`` chunk that opens an event-stream body."""
    data = raw or b""
    total, header_length = int.from_bytes(data[:4], "big"), int.from_bytes(data[4:8], "big")
    payload = json.loads(data[12 + header_length : total - 4])
    start = json.loads(base64.b64decode(payload["bytes"]))
    return str(start["message"]["id"])


WIRE = Wire(
    {
        "POST /model/{model}/converse": converse,
        "POST /model/{model}/converse-stream": converse_stream,
        "POST /model/{model}/invoke": invoke,
        "POST /model/{model}/invoke-with-response-stream": invoke_stream,
    }
)
