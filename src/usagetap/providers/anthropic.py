"""Usage extraction for Anthropic's Messages API (first-party, Bedrock and Vertex alike).

Pure functions over SDK objects or their JSON (dicts): nothing here patches,
imports the SDK or does I/O. Anthropic's ``input_tokens`` excludes the cache,
so the record's ``input_tokens`` is ``input_tokens + cache_read_input_tokens +
cache_creation_input_tokens``. Streams report input (and the cache) in
``message_start`` and *cumulative* counts in each ``message_delta``: the last
value of a field wins, nothing is summed. Compaction iterations (beta) are
billed but left out of the top-level counts, so they are added.
"""

from __future__ import annotations

import re
from typing import Any, Optional
from urllib.parse import urlsplit

from ..record import Scalar
from .base import TokenUsage, field_of, int_of, is_object, unreadable, unreported

__all__ = [
    "BATCHES",
    "BATCH_RESULTS",
    "MESSAGES",
    "MessageStreamObserver",
    "batch_item_usage",
    "classify",
    "is_message",
    "is_succeeded",
    "message_usage",
]

MESSAGES = "messages"
BATCHES = "batches"
BATCH_RESULTS = "batch_results"

_BATCH_RESULTS_PATH = re.compile(r"/v1/messages/batches/([^/]+)/results$")

# usage fields a message_delta may revise; the rest come from message_start
_USAGE_FIELDS = (
    "input_tokens",
    "cache_read_input_tokens",
    "cache_creation_input_tokens",
    "cache_creation",
    "output_tokens",
    "output_tokens_details",
    "server_tool_use",
    "iterations",
    "service_tier",
    "speed",
    "inference_geo",
)
_SERVER_TOOLS = ("web_search_requests", "web_fetch_requests")
_LABELS = ("service_tier", "speed", "inference_geo")


def classify(method: str, url: str) -> Optional[tuple[str, Optional[str]]]:
    """What a request is, as seen at the SDK's ``request()``: ``(kind, batch id)``, or None.

    ``messages`` (POST /v1/messages, beta too: billable), ``batches`` (POST
    /v1/messages/batches: creates a batch, billed when its results are read) and
    ``batch_results`` (GET .../batches/{id}/results). ``count_tokens`` and
    everything else is None. Bedrock and Vertex rewrite these paths later, per attempt.
    """
    path = urlsplit(url).path.rstrip("/")
    verb = method.lower()
    if verb == "post":
        if path == "/v1/messages":
            return MESSAGES, None
        if path == "/v1/messages/batches":
            return BATCHES, None
        return None
    if verb == "get":
        match = _BATCH_RESULTS_PATH.search(path)
        if match:
            return BATCH_RESULTS, match.group(1)
    return None


def is_message(obj: Any) -> bool:
    """A Messages API response (``type == "message"``) that carries usage."""
    return field_of(obj, "type") == "message" and field_of(obj, "usage") is not None


def message_usage(message: Any) -> TokenUsage:
    """Usage of a whole ``Message`` (or its JSON)."""
    return _usage_fields(
        field_of(message, "usage"), model=field_of(message, "model"), response_id=field_of(message, "id")
    )


def is_succeeded(item: Any) -> bool:
    """A Message Batches result line whose request succeeded (the only kind that is billed)."""
    return bool(field_of(field_of(item, "result"), "type") == "succeeded")


def batch_item_usage(item: Any, batch_id: str) -> TokenUsage:
    """Usage of one succeeded batch result, keyed ``{batch_id}:{custom_id}``, with ``batch=True``."""
    usage = message_usage(field_of(field_of(item, "result"), "message"))
    usage.response_id = f"{batch_id}:{field_of(item, 'custom_id')}"
    usage.dimensions["batch"] = True
    return usage


def _usage_fields(
    usage: Any, *, model: Optional[str], response_id: Optional[str], reported: bool = True
) -> TokenUsage:
    if usage is None:
        return TokenUsage(model=model, response_id=response_id, reported=False)
    if not is_object(usage):
        return unreadable(usage, model=model, response_id=response_id)
    usage = _fields(usage)
    parts = [usage]
    parts.extend(i for i in field_of(usage, "iterations") or () if field_of(i, "type") == "compaction")
    uncached = sum(int_of(part, "input_tokens") for part in parts)
    read = sum(int_of(part, "cache_read_input_tokens") for part in parts)
    write = sum(int_of(part, "cache_creation_input_tokens") for part in parts)
    output = sum(int_of(part, "output_tokens") for part in parts)

    dims: dict[str, Scalar] = {}
    split = [_cache_split(part) for part in parts]
    if write and all(s is not None for s in split):
        dims["cache_write_5m_tokens"] = sum(s[0] for s in split if s is not None)
        dims["cache_write_1h_tokens"] = sum(s[1] for s in split if s is not None)
    tools = field_of(usage, "server_tool_use")
    for name in _SERVER_TOOLS:
        count = int_of(tools, name)
        if count:
            dims[name] = count
    for name in _LABELS:
        value = field_of(usage, name)
        if isinstance(value, str) and value:
            dims[name] = value
    return TokenUsage(
        model=model,
        response_id=response_id,
        input_tokens=uncached + read + write,
        output_tokens=output,
        cache_read_tokens=read,
        cache_write_tokens=write,
        reasoning_tokens=int_of(field_of(usage, "output_tokens_details"), "thinking_tokens"),
        dimensions=dims,
        reported=reported,
        issue=unreported(usage, "input_tokens", "output_tokens"),
    )


def _cache_split(part: Any) -> Optional[tuple[int, int]]:
    """``(5-minute, 1-hour)`` cache writes of one usage part; None when unknown or not adding up."""
    write = int_of(part, "cache_creation_input_tokens")
    creation = field_of(part, "cache_creation")
    if creation is None:
        return (0, 0) if write == 0 else None
    five, hour = int_of(creation, "ephemeral_5m_input_tokens"), int_of(creation, "ephemeral_1h_input_tokens")
    return (five, hour) if five + hour == write else None


def _fields(usage: Any) -> dict[str, Any]:
    """A usage object's fields as a mapping: a model's own and extra fields, read without a miss.

    A field this SDK version does not define is absent here, where ``getattr`` would go
    through the model's ``__getattr__`` and raise.
    """
    if usage is None:
        return {}
    if isinstance(usage, dict):
        return usage
    own = getattr(usage, "__dict__", None)
    if not isinstance(own, dict):
        return {name: getattr(usage, name, None) for name in _USAGE_FIELDS}
    extra = getattr(usage, "__pydantic_extra__", None)
    return {**extra, **own} if extra else own


class MessageStreamObserver:
    """Follows a Messages stream event by event and keeps what the record needs.

    Input and cache counts arrive in ``message_start``; each ``message_delta``
    carries cumulative usage that replaces what came before, field by field.
    A stream that never reached a ``message_delta`` is unreported (``partial``),
    with what ``message_start`` said.
    """

    __slots__ = ("delta", "model", "response_id", "start")

    kinds = frozenset({"message_start", "message_delta"})
    """The only events :meth:`observe` reads: a stream may skip calling it for the others."""

    tail = 8
    """``message_start`` is the first event and the last ``message_delta`` comes just before
    ``message_stop``, the last: a stream may hand :meth:`observe` only its first and last
    ``tail`` events, at its end."""

    def __init__(self) -> None:
        self.response_id: Optional[str] = None
        self.model: Optional[str] = None
        self.start: Any = None
        self.delta: Any = None

    def observe(self, event: Any) -> None:
        kind = event.get("type") if type(event) is dict else getattr(event, "type", None)  # per event: inline
        if kind == "message_start":
            message = field_of(event, "message")
            self.response_id = field_of(message, "id")
            self.model = field_of(message, "model")
            self.start = field_of(message, "usage")
        elif kind == "message_delta":
            usage = field_of(event, "usage")
            if usage is not None:
                self.delta = usage

    def result(self) -> TokenUsage:
        if self.start is None and self.delta is None:
            return TokenUsage(model=self.model, response_id=self.response_id, reported=False)
        for part in (self.start, self.delta):
            if part is not None and not is_object(part):
                return unreadable(part, model=self.model, response_id=self.response_id)
        start, delta = _fields(self.start), _fields(self.delta)
        merged: dict[str, Any] = {}
        for name in _USAGE_FIELDS:
            value = delta.get(name)
            merged[name] = start.get(name) if value is None else value
        return _usage_fields(
            merged, model=self.model, response_id=self.response_id, reported=self.delta is not None
        )
