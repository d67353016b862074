"""OpenAI's Responses API for the loopback server: create (JSON, or SSE with ``event:`` names),
stored responses read back with ``GET /v1/responses/{id}`` (also as a stream), background mode, cancel.

A prompt's 64-token blocks are written to the cache the first time it is
seen and read from it after. A background response is queued when created; it completes on its
``server.background_polls``-th retrieval, and only then is its usage issued.
"""

from __future__ import annotations

import json
import time
import uuid
from typing import TYPE_CHECKING, Any, Optional

from ...testing._wire import Event, Issued, Reply, count_tokens, reply_words
from .chat_wire import reply_text, split_reply

if TYPE_CHECKING:
    from ...testing._server import ProviderServer
    from ...testing._wire import Route

__all__ = ["ROUTES"]

_REASONING_PREFIXES = ("o1", "o3", "o4", "gpt-5")
_PENDING = ("queued", "in_progress")


def _error(status: int, message: str) -> Reply:
    return Reply(
        status=status, body={"error": {"message": message, "type": "invalid_request_error", "param": None}}
    )


def _id(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex}"


class _Built:
    """One response as the server will report it, with the usage it issues when it completes."""

    def __init__(self, server: ProviderServer, body: dict[str, Any], model: str) -> None:
        self.body = body
        self.model = model
        self.id = _id("resp")
        self.created = int(time.time())
        prompt = [body.get("instructions"), body.get("input")]
        input_tokens = count_tokens(prompt) + 3
        cap = body.get("max_output_tokens")
        output_tokens = cap if isinstance(cap, int) and cap > 0 else 16
        reasoning = output_tokens // 4 if model.startswith(_REASONING_PREFIXES) else 0
        cached = server.cached_prefix(json.dumps(prompt, sort_keys=True), input_tokens)
        written = 0 if cached else (input_tokens // 64) * 64
        text_config = body.get("text")
        text_format = text_config.get("format") if isinstance(text_config, dict) else None
        schema = (
            text_format
            if isinstance(text_format, dict) and text_format.get("type") == "json_schema"
            else None
        )
        self.text = reply_text(reply_words(output_tokens - reasoning), schema)
        self.output: list[dict[str, Any]] = []
        if reasoning:
            self.output.append({"id": _id("rs"), "type": "reasoning", "summary": []})
        tools = body.get("tools") or []
        if any(isinstance(t, dict) and str(t.get("type", "")).startswith("web_search") for t in tools):
            query = " ".join(str(body.get("input")).split()[:5])
            self.output.append(
                {
                    "id": _id("ws"),
                    "type": "web_search_call",
                    "status": "completed",
                    "action": {"type": "search", "query": query},
                }
            )
        self.message_id = _id("msg")
        self.output.append(
            {
                "id": self.message_id,
                "type": "message",
                "status": "completed",
                "role": "assistant",
                "content": [self._part(self.text)],
            }
        )
        self.usage: Optional[dict[str, Any]] = (
            {
                "input_tokens": input_tokens,
                "input_tokens_details": {"cached_tokens": cached, "cache_write_tokens": written},
                "output_tokens": output_tokens,
                "output_tokens_details": {"reasoning_tokens": reasoning},
                "total_tokens": input_tokens + output_tokens,
            }
            if server.report_usage
            else None
        )
        self.issued = Issued(
            self.id,
            "/v1/responses",
            model,
            bool(body.get("stream")),
            input_tokens,
            output_tokens,
            cache_read_tokens=cached,
            cache_write_tokens=written,
            reasoning_tokens=reasoning,
            reported=server.report_usage,
        )

    @staticmethod
    def _part(text: str) -> dict[str, Any]:
        return {"type": "output_text", "text": text, "annotations": [], "logprobs": []}

    def response(self, status: str) -> dict[str, Any]:
        done = status not in _PENDING
        body = self.body
        return {
            "id": self.id,
            "object": "response",
            "created_at": self.created,
            "status": status,
            "background": bool(body.get("background")),
            "error": None,
            "incomplete_details": None,
            "instructions": body.get("instructions"),
            "max_output_tokens": body.get("max_output_tokens"),
            "model": self.model,
            "output": self.output if status == "completed" else [],
            "parallel_tool_calls": True,
            "previous_response_id": body.get("previous_response_id"),
            "reasoning": {"effort": None, "summary": None},
            "service_tier": "default",
            "store": body.get("store", True),
            "temperature": 1.0,
            "text": body.get("text") or {"format": {"type": "text"}},
            "tool_choice": "auto",
            "tools": body.get("tools") or [],
            "top_p": 1.0,
            "truncation": "disabled",
            "usage": self.usage if done and status == "completed" else None,
            "user": None,
            "metadata": body.get("metadata") or {},
        }

    def events(self, first_status: str) -> list[Event]:
        """The stream of a response from creation to ``response.completed``."""
        events: list[Event] = []

        def add(name: str, **payload: Any) -> None:
            events.append((name, {"type": name, "sequence_number": len(events), **payload}))

        add("response.created", response=self.response(first_status))
        add("response.in_progress", response=self.response("in_progress"))
        for index, item in enumerate(self.output):
            if item["type"] != "message":
                add("response.output_item.added", output_index=index, item={**item, "status": "in_progress"})
                if item["type"] == "web_search_call":
                    for step in ("in_progress", "searching", "completed"):
                        add(f"response.web_search_call.{step}", output_index=index, item_id=item["id"])
                add("response.output_item.done", output_index=index, item=item)
                continue
            at = {"item_id": item["id"], "output_index": index, "content_index": 0}
            add(
                "response.output_item.added",
                output_index=index,
                item={**item, "status": "in_progress", "content": []},
            )
            add("response.content_part.added", **at, part=self._part(""))
            for piece in split_reply(self.text):
                add("response.output_text.delta", **at, delta=piece, logprobs=[])
            add("response.output_text.done", **at, text=self.text, logprobs=[])
            add("response.content_part.done", **at, part=self._part(self.text))
            add("response.output_item.done", output_index=index, item=item)
        add("response.completed", response=self.response("completed"))
        return events


class _Stored:
    """A response the server keeps: its state, and how many retrievals it has seen while pending."""

    def __init__(self, built: _Built, status: str) -> None:
        self.built = built
        self.status = status
        self.polls = 0


def create(server: ProviderServer, body: dict[str, Any], headers: dict[str, str]) -> Reply:
    model = body.get("model")
    if not isinstance(model, str) or body.get("input") in (None, "", []):
        return _error(400, "model and input are required")
    built = _Built(server, body, model)
    background = bool(body.get("background"))
    stream = bool(body.get("stream"))
    if background and not stream:
        server.stored[built.id] = _Stored(built, "queued")
        return Reply(body=built.response("queued"))
    server.issue(built.issued)
    if background or body.get("store", True):
        server.stored[built.id] = _Stored(built, "completed")
    if stream:
        return Reply(events=built.events("queued" if background else "in_progress"))
    return Reply(body=built.response("completed"))


def _advance(server: ProviderServer, stored: _Stored, finish: bool) -> None:
    if stored.status not in _PENDING:
        return
    stored.polls += 1
    if finish or stored.polls >= server.background_polls:
        stored.status = "completed"
        server.issue(stored.built.issued)
    else:
        stored.status = "in_progress"


def retrieve(
    server: ProviderServer, body: dict[str, Any], headers: dict[str, str], params: dict[str, str]
) -> Reply:
    stored: Optional[_Stored] = server.stored.get(params["response_id"])
    if stored is None:
        return _error(404, f"No response found with id '{params['response_id']}'.")
    stream = params.get("stream") == "true"
    _advance(server, stored, finish=stream)
    if not stream:
        return Reply(body=stored.built.response(stored.status))
    if stored.status == "cancelled":
        return _error(400, "Cannot stream a cancelled response.")
    after = int(params.get("starting_after", -1))
    events = stored.built.events("queued" if stored.built.body.get("background") else "in_progress")
    return Reply(
        events=[
            (name, data)
            for name, data in events
            if isinstance(data, dict) and data["sequence_number"] > after
        ]
    )


def cancel(
    server: ProviderServer, body: dict[str, Any], headers: dict[str, str], params: dict[str, str]
) -> Reply:
    stored: Optional[_Stored] = server.stored.get(params["response_id"])
    if stored is None:
        return _error(404, f"No response found with id '{params['response_id']}'.")
    if not stored.built.body.get("background"):
        return _error(400, "Only background responses can be cancelled.")
    if stored.status in _PENDING:
        stored.status = "cancelled"
    return Reply(body=stored.built.response(stored.status))


ROUTES: dict[str, Route] = {
    "POST /v1/responses": create,
    "GET /v1/responses/{response_id}": retrieve,
    "POST /v1/responses/{response_id}/cancel": cancel,
}
