"""Make the loopback provider call the caller's tools: the first answer to a request offering tools
(and holding no tool result yet) calls the first one, the usage it reports unchanged.

Shapes from the providers' documentation: OpenAI chat ``message.tool_calls`` with
``finish_reason: "tool_calls"``; OpenAI Responses ``output[{"type": "function_call", ...}]``;
Anthropic Messages ``content[{"type": "tool_use", ...}]`` with ``stop_reason: "tool_use"``.
Anthropic's streamed answers too (pydantic-ai streams Messages); OpenAI's non-streamed only.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

from usagetap.testing import ProviderServer
from usagetap.testing._wire import Reply, Route


def _arguments(schema: Any) -> dict[str, Any]:
    properties = (schema or {}).get("properties") or {}
    sample = {"integer": 2, "number": 2.0, "boolean": True}
    return {name: sample.get(spec.get("type"), "billing") for name, spec in properties.items()}


def _chat(route: Route) -> Route:
    def answer(server: ProviderServer, body: dict[str, Any], headers: dict[str, str]) -> Reply:
        reply = route(server, body, headers)
        tools = body.get("tools") or []
        done = any(m.get("role") == "tool" for m in body.get("messages") or [])
        if tools and not done and not body.get("stream") and reply.status == 200:
            function = tools[0]["function"]
            call = {"name": function["name"], "arguments": json.dumps(_arguments(function.get("parameters")))}
            choice = reply.body["choices"][0]
            choice["message"] = {
                "role": "assistant",
                "content": None,
                "tool_calls": [{"id": f"call_{uuid.uuid4().hex[:12]}", "type": "function", "function": call}],
            }
            choice["finish_reason"] = "tool_calls"
        return reply

    return answer


def _responses(route: Route) -> Route:
    def answer(server: ProviderServer, body: dict[str, Any], headers: dict[str, str]) -> Reply:
        reply = route(server, body, headers)
        tools = [t for t in body.get("tools") or [] if t.get("type") == "function"]
        items = body.get("input") if isinstance(body.get("input"), list) else []
        done = any(isinstance(i, dict) and i.get("type") == "function_call_output" for i in items)
        if tools and not done and not body.get("stream") and reply.status == 200:
            reply.body["output"] = [
                {
                    "type": "function_call",
                    "id": f"fc_{uuid.uuid4().hex[:12]}",
                    "call_id": f"call_{uuid.uuid4().hex[:12]}",
                    "name": tools[0]["name"],
                    "arguments": json.dumps(_arguments(tools[0].get("parameters"))),
                    "status": "completed",
                }
            ]
        return reply

    return answer


def _messages(route: Route) -> Route:
    def answer(server: ProviderServer, body: dict[str, Any], headers: dict[str, str]) -> Reply:
        reply = route(server, body, headers)
        tools = body.get("tools") or []
        blocks = [
            b for m in body.get("messages") or [] if isinstance(m.get("content"), list) for b in m["content"]
        ]
        done = any(isinstance(b, dict) and b.get("type") == "tool_result" for b in blocks)
        if not tools or done or reply.status != 200:
            return reply
        use = {
            "type": "tool_use",
            "id": f"toolu_{uuid.uuid4().hex[:12]}",
            "name": tools[0]["name"],
            "input": _arguments(tools[0].get("input_schema")),
        }
        if reply.events is None:
            reply.body["content"] = [use]
            reply.body["stop_reason"] = "tool_use"
        else:
            reply.events = _tool_use_events(reply.events, use)
        return reply

    return answer


def _tool_use_events(events: list[Any], use: dict[str, Any]) -> list[Any]:
    """A Messages stream whose content is one ``tool_use`` block (its input as one ``input_json_delta``)."""
    start = {"type": "content_block_start", "index": 0, "content_block": {**use, "input": {}}}
    delta = {"type": "input_json_delta", "partial_json": json.dumps(use["input"])}
    block = [
        ("content_block_start", start),
        ("content_block_delta", {"type": "content_block_delta", "index": 0, "delta": delta}),
        ("content_block_stop", {"type": "content_block_stop", "index": 0}),
    ]
    out: list[Any] = []
    for name, data in events:
        if name and name.startswith("content_block"):
            continue
        if name == "message_delta" and isinstance(data, dict):
            out.append((name, {**data, "delta": {**data.get("delta", {}), "stop_reason": "tool_use"}}))
        else:
            out.append((name, data))
        if name == "message_start":
            out.extend(block)
    return out


def calling_tools(server: ProviderServer) -> ProviderServer:
    """``server``, answering requests that offer tools with a call of the first one."""
    routes = server.routes
    routes["POST /v1/chat/completions"] = _chat(routes["POST /v1/chat/completions"])
    routes["POST /v1/responses"] = _responses(routes["POST /v1/responses"])
    routes["POST /v1/messages"] = _messages(routes["POST /v1/messages"])
    return server
