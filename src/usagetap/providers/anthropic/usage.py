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

Code execution is counted from the response's ``server_tool_use`` blocks (``code_execution``,
``bash_code_execution``, ``text_editor_code_execution``), or from
``usage.server_tool_use.code_execution_requests`` where the API reports it (never both), as
``code_execution_requests``; the container it ran in is ``container_id``. A request that offered
a ``web_search`` / ``web_fetch`` tool of version 20260209 or later pays nothing for those uses:
its records say ``code_execution_free=True`` (:func:`code_execution_offer`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from typing import Any, Optional
from urllib.parse import urlsplit

from ..._log import internal_error
from ..._record import Scalar
from ..base import TokenUsage, field_of, int_of, is_object, sse_payloads, unreadable, unreported
from ..observer import Observer

__all__ = [
    "ADVISOR",
    "BATCHES",
    "BATCH_RESULTS",
    "CODE_EXECUTION",
    "MESSAGES",
    "CodeExecutionCounter",
    "CodeExecutionStreamObserver",
    "MessageStreamObserver",
    "advisor_usages",
    "batch_item_usage",
    "body_advisors",
    "body_usage",
    "classify",
    "code_execution_offer",
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
_SERVER_TOOLS = ("web_search_requests", "web_fetch_requests", "code_execution_requests")
CODE_EXECUTION = frozenset({"code_execution", "bash_code_execution", "text_editor_code_execution"})
"""The names of the ``server_tool_use`` blocks that are code execution tool calls."""
_CODE_EXECUTION_USES = "code_execution_requests"
_DATED_TOOL = re.compile(r"(web_search|web_fetch|code_execution)_(\d{8})")
_FREE_FROM = "20260209"  # web tools of this version or later make code execution free
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


def code_execution_offer(body: Any) -> Optional[bool]:
    """Whether a Messages request's code execution calls are free, or None when it cannot make any.

    A request may run code when it offers a ``code_execution_*`` tool, a ``web_search`` /
    ``web_fetch`` tool of version 20260209 or later (they filter results with code), or a
    ``container``; its calls are free with such a web tool.
    """
    if not isinstance(body, Mapping):
        return None
    possible, free = isinstance(body.get("container"), (str, dict)), False  # not the SDK's Omit
    tools = body.get("tools")
    for tool in tools if isinstance(tools, list) else ():
        kind = tool.get("type") if isinstance(tool, dict) else None
        dated = _DATED_TOOL.fullmatch(kind) if isinstance(kind, str) else None
        if dated is None:
            continue
        if dated.group(1) == "code_execution":
            possible = True
        elif dated.group(2) >= _FREE_FROM:
            possible = free = True
    return free if possible else None


def is_message(obj: Any) -> bool:
    """A Messages API response (``type == "message"``) that carries usage."""
    return field_of(obj, "type") == "message" and field_of(obj, "usage") is not None


def message_usage(message: Any, *, code_execution_free: bool = False) -> TokenUsage:
    """Usage of a whole ``Message`` (or its JSON); ``code_execution_free``: :func:`code_execution_offer`."""
    usage = field_of(message, "usage")
    result = _usage_fields(usage, model=field_of(message, "model"), response_id=field_of(message, "id"))
    content = field_of(message, "content")
    uses = code_execution_uses(content) if isinstance(content, list) else 0
    _code_execution(result, usage, uses, field_of(message, "container"), code_execution_free)
    return result


def code_execution_uses(content: Iterable[Any]) -> int:
    """The code execution tool calls among a message's content blocks."""
    return sum(
        1
        for block in content
        if field_of(block, "type") == "server_tool_use" and field_of(block, "name") in CODE_EXECUTION
    )


def _code_execution(result: TokenUsage, usage: Any, uses: int, container: Any, free: bool) -> None:
    """Add the code execution calls (the count the usage reports, else ``uses``) and the container."""
    reported = field_of(field_of(usage, "server_tool_use"), _CODE_EXECUTION_USES)
    if uses and reported is None:  # a count the usage reports wins: never both
        result.dimensions[_CODE_EXECUTION_USES] = uses
    if free and result.dimensions.get(_CODE_EXECUTION_USES):
        result.dimensions["code_execution_free"] = True
    container_id = field_of(container, "id")
    if isinstance(container_id, str) and container_id:
        result.dimensions["container_id"] = container_id


def is_succeeded(item: Any) -> bool:
    """A Message Batches result line whose request succeeded (the only kind that is billed)."""
    return bool(field_of(field_of(item, "result"), "type") == "succeeded")


def batch_item_usage(item: Any, batch_id: str, code_execution_free: bool = False) -> TokenUsage:
    """Usage of one succeeded batch result, keyed ``{batch_id}:{custom_id}``, with ``batch=True``."""
    message = field_of(field_of(item, "result"), "message")
    usage = message_usage(message, code_execution_free=code_execution_free)
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
    with what ``message_start`` said. Code execution calls are counted by
    :class:`CodeExecutionStreamObserver` (it reads every block's start).
    """

    __slots__ = ("container", "delta", "free", "model", "response_id", "start", "uses")

    kinds = frozenset({"message_start", "message_delta"})
    """The only events :meth:`observe` reads: a stream may skip calling it for the others."""

    tail = 8
    """``message_start`` is the first event and the last ``message_delta`` comes just before
    ``message_stop``, the last: a stream may hand :meth:`observe` only its first and last
    ``tail`` events, at its end."""

    def __init__(self, code_execution_free: bool = False) -> None:
        self.response_id: Optional[str] = None
        self.model: Optional[str] = None
        self.start: Any = None
        self.delta: Any = None
        self.container: Any = None
        self.uses = 0
        self.free = code_execution_free

    def observe(self, event: Any) -> None:
        kind = event.get("type") if type(event) is dict else getattr(event, "type", None)  # per event: inline
        if kind == "message_start":
            message = field_of(event, "message")
            self.response_id = field_of(message, "id")
            self.model = field_of(message, "model")
            self.start = field_of(message, "usage")
            self.container = field_of(message, "container")
        elif kind == "message_delta":
            usage = field_of(event, "usage")
            if usage is not None:
                self.delta = usage
            container = field_of(field_of(event, "delta"), "container")
            if container is not None:
                self.container = container

    def result(self) -> TokenUsage:
        if self.start is None and self.delta is None:
            return TokenUsage(model=self.model, response_id=self.response_id, reported=False)
        for part in (self.start, self.delta):
            if part is not None and not is_object(part):
                return unreadable(part, model=self.model, response_id=self.response_id)
        merged = self._merged()
        usage = _usage_fields(
            merged, model=self.model, response_id=self.response_id, reported=self.delta is not None
        )
        _code_execution(usage, merged, self.uses, self.container, self.free)
        return usage

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


class CodeExecutionStreamObserver(MessageStreamObserver):
    """A Messages stream of a request that may run code: also counts its code execution calls from
    every ``content_block_start`` (so it reads the whole stream, not only its edges)."""

    __slots__ = ()

    kinds = frozenset({"message_start", "content_block_start", "message_delta"})
    tail = 0

    def observe(self, event: Any) -> None:
        kind = event.get("type") if type(event) is dict else getattr(event, "type", None)
        if kind != "content_block_start":
            super().observe(event)
        elif code_execution_uses((field_of(event, "content_block"),)):
            self.uses += 1


class CodeExecutionCounter:
    """Counts the code execution calls of a raw Messages event stream as its events pass (a raw
    body keeps only its first and last events): called on each event, it hides none."""

    __slots__ = ("uses",)

    def __init__(self) -> None:
        self.uses = 0

    def __call__(self, event: bytes) -> bool:
        if b"content_block_start" in event and b"server_tool_use" in event:
            try:
                self.uses += code_execution_uses(field_of(p, "content_block") for p in sse_payloads(event))
            except Exception as exc:  # the event still reaches the caller
                internal_error("stream.observe", exc)
        return False


def body_usage(
    body: Optional[bytes], sse: bool, *, code_execution_free: bool = False, uses: Optional[int] = None
) -> TokenUsage:
    """Usage from a raw response body as the caller read it: a message's JSON, or (some of) its events.

    A body never read, cut short or without usage is unreported (the record will be partial).
    ``uses``: the code execution calls a :class:`CodeExecutionCounter` counted in an event stream.
    """
    if body is not None and sse:
        return events_usage(sse_payloads(body), code_execution_free=code_execution_free, uses=uses)
    message = json_of(body)
    if not is_message(message):
        return TokenUsage(reported=False)
    return message_usage(message, code_execution_free=code_execution_free)


def body_advisors(body: Optional[bytes], sse: bool) -> list[TokenUsage]:
    """The advisor turns a raw response body reports (see :func:`advisor_usages`)."""
    if body is None or ADVISOR.encode() not in body:
        return []
    if sse:
        return events_advisors(sse_payloads(body))
    message = json_of(body)
    return message_advisors(message) if is_message(message) else []


def events_usage(
    events: Iterable[Any], *, code_execution_free: bool = False, uses: Optional[int] = None
) -> TokenUsage:
    """Usage from a Messages stream's events (SDK objects or JSON), as the stream observer sees them;
    ``uses``: the code execution calls counted already (the events are only some of the stream's)."""
    observer = _observed(events, code_execution_free)
    if uses is not None:
        observer.uses = uses
    return observer.result()


def events_advisors(events: Iterable[Any]) -> list[TokenUsage]:
    """The advisor turns a Messages stream's events report (see :func:`advisor_usages`)."""
    return _observed(events).advisors()


def _observed(events: Iterable[Any], code_execution_free: bool = False) -> MessageStreamObserver:
    observer = CodeExecutionStreamObserver(code_execution_free)
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
