"""Usage extraction for Anthropic's Messages API (first-party, Bedrock and Vertex alike).

Pure functions over SDK objects or their JSON (dicts): nothing here patches,
imports the SDK or does I/O. Anthropic's ``input_tokens`` excludes the cache,
so the record's ``input_tokens`` is ``input_tokens + cache_read_input_tokens +
cache_creation_input_tokens``. Streams report input (and the cache) in
``message_start`` and *cumulative* counts in each ``message_delta``: the last
value of a field wins, nothing is summed.

``usage.iterations`` (beta) lists the sampling steps of one call. The top-level
counts are those of its ``message`` steps; every other step is billed on top:
compaction (same model) is added to the call's own counts, and an advisor's turn
(``advisor_message``, on the advisor's model and billed at its rates) is usage of
its own (:func:`advisor_usages`), keyed ``{response id}:advisor:{n}``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from typing import Any, Optional
from urllib.parse import urlsplit

from ..._record import Scalar
from ..base import TokenUsage, field_of, int_of, is_object, sse_payloads, unreadable, unreported
from ..observer import Observer

__all__ = [
    "ADVISOR",
    "BATCHES",
    "BATCH_RESULTS",
    "MESSAGES",
    "MessageStreamObserver",
    "advisor_usages",
    "batch_item_usage",
    "body_advisors",
    "body_usage",
    "classify",
    "events_advisors",
    "events_usage",
    "is_message",
    "is_succeeded",
    "json_of",
    "message_advisors",
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
ADVISOR = "advisor_message"
"""The ``usage.iterations`` type of an advisor model's turn inside a call."""
_OWN_STEPS = ("message", ADVISOR)  # iterations not billed on top of the call's own counts
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


def message_advisors(message: Any) -> list[TokenUsage]:
    """The advisor turns of a whole ``Message`` (or its JSON): see :func:`advisor_usages`."""
    return advisor_usages(field_of(message, "usage"), field_of(message, "id"))


def _has_iterations(usage: Any) -> bool:
    """Whether a usage object lists ``iterations`` (a field of newer SDKs, an extra one of older)."""
    if usage is None:
        return False
    if isinstance(usage, dict):
        return bool(usage.get("iterations"))
    own = getattr(usage, "__dict__", None) or {}
    extra = getattr(usage, "__pydantic_extra__", None) or {}
    return bool(own.get("iterations") or extra.get("iterations"))


def advisor_usages(usage: Any, response_id: Optional[str]) -> list[TokenUsage]:
    """Each ``advisor_message`` iteration: its model, its tokens, keyed ``{response_id}:advisor:{n}``.

    An advisor's turn is billed at the advisor model's rates and left out of the
    call's own counts; ``n`` counts the advisor turns of the call from 1. Empty
    when the call had none (the common case: one look at ``iterations``).
    """
    fields = _fields(usage)
    turns = [i for i in fields.get("iterations") or () if field_of(i, "type") == ADVISOR]
    advisors = []
    for n, turn in enumerate(turns, 1):
        model = field_of(turn, "model")
        advisor = _counted(
            [_fields(turn)],
            model=model if isinstance(model, str) else None,
            response_id=None if response_id is None else f"{response_id}:advisor:{n}",
        )
        advisor.dimensions.update(_labels(fields))
        advisors.append(advisor)
    return advisors


def _usage_fields(
    usage: Any, *, model: Optional[str], response_id: Optional[str], reported: bool = True
) -> TokenUsage:
    if usage is None:
        return TokenUsage(model=model, response_id=response_id, reported=False)
    if not is_object(usage):
        return unreadable(usage, model=model, response_id=response_id)
    usage = _fields(usage)
    parts = [usage]
    parts.extend(i for i in usage.get("iterations") or () if field_of(i, "type") not in _OWN_STEPS)
    result = _counted(parts, model=model, response_id=response_id, reported=reported)
    result.reasoning_tokens = int_of(field_of(usage, "output_tokens_details"), "thinking_tokens")
    tools = field_of(usage, "server_tool_use")
    for name in _SERVER_TOOLS:
        count = int_of(tools, name)
        if count:
            result.dimensions[name] = count
    result.dimensions.update(_labels(usage))
    result.issue = unreported(usage, "input_tokens", "output_tokens")
    return result


def _counted(
    parts: list[Any], *, model: Optional[str], response_id: Optional[str], reported: bool = True
) -> TokenUsage:
    """The counts of ``parts`` added up (``input_tokens`` with the cache), with the cache-write split."""
    uncached = sum(int_of(part, "input_tokens") for part in parts)
    read = sum(int_of(part, "cache_read_input_tokens") for part in parts)
    write = sum(int_of(part, "cache_creation_input_tokens") for part in parts)
    dims: dict[str, Scalar] = {}
    split = [_cache_split(part) for part in parts]
    if write and all(s is not None for s in split):
        dims["cache_write_5m_tokens"] = sum(s[0] for s in split if s is not None)
        dims["cache_write_1h_tokens"] = sum(s[1] for s in split if s is not None)
    return TokenUsage(
        model=model,
        response_id=response_id,
        input_tokens=uncached + read + write,
        output_tokens=sum(int_of(part, "output_tokens") for part in parts),
        cache_read_tokens=read,
        cache_write_tokens=write,
        dimensions=dims,
        reported=reported,
    )


def _labels(usage: dict[str, Any]) -> dict[str, Scalar]:
    """The call's labels (service tier, speed, inference geography): they price every part of it."""
    return {name: value for name in _LABELS if isinstance(value := usage.get(name), str) and value}


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


class MessageStreamObserver(Observer):
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
        return _usage_fields(
            self._merged(), model=self.model, response_id=self.response_id, reported=self.delta is not None
        )

    def advisors(self) -> list[TokenUsage]:
        """The advisor turns the stream reported (in its last ``message_delta``), each as its own usage."""
        if not _has_iterations(self.delta):
            return []  # the common case, on the caller's thread: no merge, no lists
        return advisor_usages(self._merged(), self.response_id)

    def _merged(self) -> dict[str, Any]:
        start, delta = _fields(self.start), _fields(self.delta)
        merged: dict[str, Any] = {}
        for name in _USAGE_FIELDS:
            value = delta.get(name)
            merged[name] = start.get(name) if value is None else value
        return merged


def body_usage(body: Optional[bytes], sse: bool) -> TokenUsage:
    """Usage from a raw response body as the caller read it: a message's JSON, or (some of) its events.

    A body never read, cut short or without usage is unreported (the record will be partial).
    """
    if body is not None and sse:
        return events_usage(sse_payloads(body))
    message = json_of(body)
    return message_usage(message) if is_message(message) else TokenUsage(reported=False)


def body_advisors(body: Optional[bytes], sse: bool) -> list[TokenUsage]:
    """The advisor turns a raw response body reports (see :func:`advisor_usages`)."""
    if body is None or ADVISOR.encode() not in body:
        return []
    if sse:
        return events_advisors(sse_payloads(body))
    message = json_of(body)
    return message_advisors(message) if is_message(message) else []


def events_usage(events: Iterable[Any]) -> TokenUsage:
    """Usage from a Messages stream's events (SDK objects or JSON), as the stream observer sees them."""
    return _observed(events).result()


def events_advisors(events: Iterable[Any]) -> list[TokenUsage]:
    """The advisor turns a Messages stream's events report (see :func:`advisor_usages`)."""
    return _observed(events).advisors()


def _observed(events: Iterable[Any]) -> MessageStreamObserver:
    observer = MessageStreamObserver()
    for event in events:
        observer.observe(event)
    return observer


def json_of(body: Optional[bytes]) -> Any:
    """The JSON document of a body, or None (never read, or cut short)."""
    if body is None:
        return None
    try:
        return json.loads(body)
    except ValueError:
        return None
