"""Instrumentation for the ``anthropic`` SDK (0.x, 1.x, 2.x), its Bedrock and Vertex clients included.

Hooked at the client's ``request()``, where every surface passes: ``messages.create``
(streamed or not), ``messages.parse``, ``messages.stream()`` (its ``MessageStream``
reads the raw ``Stream`` metered here), the beta namespace, raw and streaming
responses (however their body is read), and Message Batches. At that level Bedrock
and Vertex requests still look like first-party ones (``POST /v1/messages`` with
``model`` and ``stream`` in the body); their clients rewrite the path per attempt, later.

An advisor's turn inside a call (``usage.iterations``) is a record of its own, on
the advisor's model, emitted after the call's and linked to it by the dimension
``parent_event_id`` (when the call's event id is derived from its response id).
"""

from __future__ import annotations

import functools
import inspect
import json
import threading
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any, Optional

from ..._context import Scope
from ..._log import internal_error, log
from ..._record import derive_event_id
from ...instrument._adapter import Adapter
from ...instrument._binding import Binding
from ...instrument._calls import _TRUSTED_IDS, Call, emit
from ...instrument._hosts import provider_for_host
from ...instrument._raw import BodyMeter, attach_raw, is_raw_response
from ...instrument._streams import StreamTap, attach_async, attach_sync
from ..base import TokenUsage, field_of
from . import usage as extract

__all__ = ["ADAPTER", "AnthropicAdapter"]

_KNOWN_HOSTS: dict[str, str] = {"api.anthropic.com": "anthropic"}
_PLATFORMS = (("Bedrock", "bedrock"), ("Vertex", "vertex"))
_REMEMBERED_BATCHES = 4096
_STREAM_HELPER = "x-stainless-stream-helper"


class _Messages(Call):
    """``POST /v1/messages``. ``rebuilt``: sent by an SDK stream helper that reads the response
    through a ``Stream`` of its own (anthropic < 0.43), so its body is metered, not the SDK's stream.
    ``code_execution``: whether the request's code execution calls are free, None when it can make
    none (:func:`usage.code_execution_offer`)."""

    __slots__ = ("code_execution", "rebuilt")

    rebuilt: bool
    code_execution: Optional[bool]


class _BatchCreate(Call):
    """``POST /v1/messages/batches``: not billed itself; its scope is kept for the batch's results, and
    so are the ``custom_id`` of its requests whose code execution calls are free."""

    __slots__ = ("free",)

    free: frozenset[str]


class _BatchResults(Call):
    """``GET .../batches/{id}/results``: every succeeded line is one record."""

    __slots__ = ("batch_id", "free")

    batch_id: str
    free: frozenset[str]


def _stream_types() -> tuple[type, type]:
    import anthropic

    return anthropic.Stream, anthropic.AsyncStream


class AnthropicAdapter(Adapter):
    family = "anthropic"

    def __init__(self) -> None:
        self._streams: Optional[tuple[type, type]] = None
        self._batch_scopes: OrderedDict[str, Scope] = OrderedDict()
        self._batch_free: OrderedDict[str, frozenset[str]] = OrderedDict()
        self._lock = threading.Lock()

    def provider_for(self, client: Any) -> str:
        for cls in type(client).__mro__:
            for marker, provider in _PLATFORMS:
                if marker in cls.__name__:
                    return provider
        url = client.base_url
        return provider_for_host(url.host, url.port, _KNOWN_HOSTS, self.family)

    def plan(self, binding: Binding, options: Any) -> Optional[Call]:
        kind = extract.classify(options.method, options.url)
        if kind is None:
            return None
        what, batch_id = kind
        if what == extract.BATCHES:
            create = _BatchCreate(binding, extract.MESSAGES, None, False, options)
            create.free = _free_requests(options.json_data)
            return create
        if what == extract.BATCH_RESULTS:
            call = _BatchResults(binding, extract.MESSAGES, None, False, options)
            call.batch_id = str(batch_id)
            with self._lock:
                remembered = self._batch_scopes.get(call.batch_id)
                call.free = self._batch_free.get(call.batch_id, frozenset())
            if call.scope.customer is None and remembered is not None:
                call.scope = remembered
            return call
        body = options.json_data if isinstance(options.json_data, dict) else {}
        model = body.get("model")
        messages = _Messages(
            binding,
            extract.MESSAGES,
            model if isinstance(model, str) else None,
            body.get("stream") is True,
            options,
        )
        messages.rebuilt = _helper_rebuilds_stream() and _from_stream_helper(options)
        messages.code_execution = extract.code_execution_offer(body)
        return messages

    def on_result(self, call: Call, result: Any) -> Any:
        if is_raw_response(result):
            attach_raw(result, lambda parsed: self._meter(call, parsed), _RawBody(self, call))
        else:
            self._meter(call, result)
        return result

    def describe(self, response: Any) -> Optional[tuple[str, Callable[[Any], TokenUsage]]]:
        if extract.is_message(response):
            return extract.MESSAGES, extract.message_usage
        return None

    def _meter(self, call: Call, result: Any) -> None:
        if isinstance(call, _BatchCreate):
            self._remember(field_of(result, "id"), call)
        elif isinstance(call, _BatchResults):
            _meter_results(call, result)
        elif self._is_stream(result):
            if isinstance(call, _Messages) and call.rebuilt:
                attach_raw(_ResponseOnly(result.response), _unparsed, _RawBody(self, call))
                return
            offer = call.code_execution if isinstance(call, _Messages) else None
            observer = (
                extract.MessageStreamObserver()
                if offer is None
                else extract.CodeExecutionStreamObserver(code_execution_free=offer)
            )
            tap = _AdvisedTap(call, observer)
            (attach_async if self._is_async_stream(result) else attach_sync)(result, tap)
        elif extract.is_message(result):
            emit(call, _message_usage if _free(call) else extract.message_usage, result)
            _advise(call, extract.message_advisors(result))

    def meter_body(self, call: Call, body: Optional[bytes], sse: bool, uses: Optional[int] = None) -> None:
        """Meter a raw response from its body as the caller read it (None: closed or dropped unread);
        ``uses``: the code execution calls counted in its events as they passed."""
        if isinstance(call, _BatchCreate):
            created = extract.json_of(body)
            self._remember(field_of(created, "id"), call)
        elif isinstance(call, _BatchResults):
            for line in (body or b"").splitlines():
                if line.strip():
                    _record_line(call, json.loads(line))
        elif body is not None and not sse and call.stream and call.provider == "bedrock":
            events = _aws_events(body)
            free = _free(call)
            emit(call, lambda source: extract.events_usage(source, code_execution_free=free), events)
            _advise(call, extract.events_advisors(events))
        else:
            free = _free(call)
            emit(call, lambda source: _body_usage(source, sse, free, uses), body)
            _advise(call, extract.body_advisors(body, sse))

    def _is_stream(self, result: Any) -> bool:
        if self._streams is None:
            self._streams = _stream_types()
        return isinstance(result, self._streams)

    def _is_async_stream(self, result: Any) -> bool:
        assert self._streams is not None
        return isinstance(result, self._streams[1])

    def _remember(self, batch_id: Any, call: _BatchCreate) -> None:
        """Keep the scope a batch was created in, for results read where no customer is in scope, and
        which of its requests make free code execution calls."""
        if not isinstance(batch_id, str):
            return
        scope = call.scope
        with self._lock:
            if scope.customer is not None or scope.dimensions:
                self._batch_scopes[batch_id] = scope
                while len(self._batch_scopes) > _REMEMBERED_BATCHES:
                    self._batch_scopes.popitem(last=False)
            if call.free:
                self._batch_free[batch_id] = call.free
                while len(self._batch_free) > _REMEMBERED_BATCHES:
                    self._batch_free.popitem(last=False)


class _RawBody(BodyMeter):
    """How a raw response of one call is metered from its body."""

    __slots__ = ("adapter", "call", "counter")

    def __init__(self, adapter: AnthropicAdapter, call: Call) -> None:
        self.adapter = adapter
        self.call = call
        self.counter: Optional[extract.CodeExecutionCounter] = None

    def hider(self) -> Optional[Callable[[bytes], bool]]:
        """Hides nothing; counts the code execution calls of a request that may make them."""
        if isinstance(self.call, _Messages) and self.call.code_execution is not None:
            self.counter = extract.CodeExecutionCounter()
        return self.counter

    def on_stream(self, parsed: Any) -> None:
        self.adapter._meter(self.call, parsed)

    def on_body(self, body: Optional[bytes], sse: bool, complete: bool) -> None:
        # an event stream read in part is judged by its events: usage is final in message_delta
        self.adapter.meter_body(self.call, body, sse, None if self.counter is None else self.counter.uses)


class _ResponseOnly:
    """The HTTP response of a stream an SDK helper reads itself, as a raw response nobody parses."""

    def __init__(self, http_response: Any) -> None:
        self.http_response = http_response

    def parse(self) -> None:
        return None


def _free_requests(body: Any) -> frozenset[str]:
    """The ``custom_id`` of a batch's requests whose code execution calls are free."""
    requests = body.get("requests") if isinstance(body, dict) else None
    if not isinstance(requests, list):
        return frozenset()
    return frozenset(
        request["custom_id"]
        for request in requests
        if isinstance(request, dict)
        and isinstance(request.get("custom_id"), str)
        and extract.code_execution_offer(request.get("params")) is True
    )


def _free(call: Call) -> bool:
    """Whether the call's code execution calls cost nothing (see :func:`usage.code_execution_offer`)."""
    return isinstance(call, _Messages) and call.code_execution is True


def _message_usage(message: Any) -> TokenUsage:
    """The usage of a message whose code execution calls are free."""
    return extract.message_usage(message, code_execution_free=True)


def _body_usage(
    body: Optional[bytes], sse: bool, free: bool = False, uses: Optional[int] = None
) -> TokenUsage:
    """The usage a body reports; if reading it fails (a bug of ours), the call is still recorded, partial."""
    try:
        return extract.body_usage(body, sse, code_execution_free=free, uses=uses)
    except Exception as exc:
        internal_error("stream.observe" if sse else "extract", exc)
        return TokenUsage(reported=False)


def _unparsed(parsed: Any) -> None:
    """Nothing: a :class:`_ResponseOnly` is metered from its body alone."""


def _from_stream_helper(options: Any) -> bool:
    """Whether an SDK stream helper sent the request (its ``X-Stainless-Stream-Helper`` header)."""
    headers = options.headers if isinstance(options.headers, dict) else {}
    return any(str(k).lower() == _STREAM_HELPER for k in headers)


@functools.lru_cache(maxsize=1)
def _helper_rebuilds_stream() -> bool:
    """Whether the SDK's ``MessageStream`` builds its own ``Stream`` over the response (anthropic < 0.43)."""
    from anthropic.lib.streaming import MessageStream

    return "response" in inspect.signature(MessageStream.__init__).parameters


class _AdvisedTap(StreamTap):
    """A Messages stream's tap: the call's record, then one per advisor turn the stream reported."""

    __slots__ = ()

    def end(self) -> bool:
        if not super().end():
            return False
        try:
            observer: Any = self.observer  # a MessageStreamObserver (no cast(): a call per stream)
            advisors = observer.advisors()
            if advisors:
                _advise(self.call, advisors)
        except Exception as exc:
            internal_error("stream.advisors", exc)
        return True


def _advise(call: Call, advisors: list[TokenUsage]) -> None:
    """Emit each advisor turn of a call, after the call's own record, linked to it by ``parent_event_id``
    (advisor turns are keyed ``{call's response id}:advisor:{n}``)."""
    if not advisors:
        return
    parent_response_id = (advisors[0].response_id or "").rpartition(":advisor:")[0]
    if parent_response_id and call.provider in _TRUSTED_IDS:
        parent = derive_event_id(call.provider, call.operation, parent_response_id)
        for usage in advisors:
            usage.dimensions["parent_event_id"] = parent
    for usage in advisors:
        emit(call, _same, usage)


def _aws_events(body: bytes) -> list[Any]:
    """The Messages events of a Bedrock stream's body (AWS event-stream framing), decoded as the SDK does;
    those before an error event, if one cut it short."""
    from anthropic.lib.bedrock._stream_decoder import AWSEventStreamDecoder

    events: list[Any] = []
    try:
        for event in AWSEventStreamDecoder().iter_bytes(iter([body])):
            events.append(event.json())
    except Exception as exc:
        log.debug("usagetap: a Bedrock stream's body ended in an error: %r", exc)
    return events


def _same(usage: TokenUsage) -> TokenUsage:
    return usage


def _meter_results(call: _BatchResults, decoder: Any) -> None:
    """Meter a batch's JSONL results in place: one record per succeeded line, as the caller reads it."""
    items = getattr(decoder, "_iterator", None)
    if items is None:
        return
    if hasattr(items, "__anext__"):
        decoder._iterator = _aresults(items, call)
    else:
        decoder._iterator = _results(items, call)


def _record_line(call: _BatchResults, line: Any) -> None:
    try:
        if extract.is_succeeded(line):
            free = field_of(line, "custom_id") in call.free
            emit(call, lambda item: extract.batch_item_usage(item, call.batch_id, free), line)
            key = f"{call.batch_id}:{field_of(line, 'custom_id')}"
            advisors = extract.advisor_usages(
                field_of(field_of(field_of(line, "result"), "message"), "usage"), key
            )
            for usage in advisors:
                usage.dimensions["batch"] = True
            _advise(call, advisors)
    except Exception as exc:
        internal_error("batch.line", exc)


def _results(lines: Iterator[Any], call: _BatchResults) -> Iterator[Any]:
    for line in lines:
        _record_line(call, line)
        yield line


async def _aresults(lines: AsyncIterator[Any], call: _BatchResults) -> AsyncIterator[Any]:
    async for line in lines:
        _record_line(call, line)
        yield line


ADAPTER = AnthropicAdapter()
