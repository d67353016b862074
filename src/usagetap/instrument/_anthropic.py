"""Instrumentation for the ``anthropic`` SDK (0.x, 1.x, 2.x), its Bedrock and Vertex clients included.

Hooked at the client's ``request()``, where every surface passes: ``messages.create``
(streamed or not), ``messages.parse``, ``messages.stream()`` (its ``MessageStream``
reads the raw ``Stream`` metered here), the beta namespace, raw and streaming
responses, and Message Batches. At that level Bedrock and Vertex requests still
look like first-party ones (``POST /v1/messages`` with ``model`` and ``stream`` in
the body); their clients rewrite the path per attempt, later.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import AsyncIterator, Iterator
from typing import Any, Callable, Optional

from .._log import internal_error
from ..context import Scope
from ..providers import anthropic as extract
from ..providers.base import TokenUsage, field_of
from ._binding import Binding
from ._calls import Call, emit
from ._hosts import provider_for_host
from ._raw import attach_raw, is_raw_response
from ._streams import StreamTap, attach_async, attach_sync

__all__ = ["ADAPTER", "AnthropicAdapter"]

_KNOWN_HOSTS: dict[str, str] = {"api.anthropic.com": "anthropic"}
_PLATFORMS = (("Bedrock", "bedrock"), ("Vertex", "vertex"))
_REMEMBERED_BATCHES = 4096


class _BatchCreate(Call):
    """``POST /v1/messages/batches``: not billed itself; its scope is kept for the batch's results."""

    __slots__ = ()


class _BatchResults(Call):
    """``GET .../batches/{id}/results``: every succeeded line is one record."""

    __slots__ = ("batch_id",)

    batch_id: str


def _stream_types() -> tuple[type, type]:
    import anthropic

    return anthropic.Stream, anthropic.AsyncStream


class AnthropicAdapter:
    family = "anthropic"

    def __init__(self) -> None:
        self._streams: Optional[tuple[type, type]] = None
        self._batch_scopes: OrderedDict[str, Scope] = OrderedDict()
        self._lock = threading.Lock()

    def provider_for(self, client: Any) -> str:
        for cls in type(client).__mro__:
            for marker, provider in _PLATFORMS:
                if marker in cls.__name__:
                    return provider
        url = client.base_url
        return provider_for_host(url.host, url.port, _KNOWN_HOSTS)

    def client_classes(self) -> tuple[type, ...]:
        import anthropic

        return anthropic.Anthropic, anthropic.AsyncAnthropic

    def plan(self, binding: Binding, options: Any) -> Optional[Call]:
        kind = extract.classify(options.method, options.url)
        if kind is None:
            return None
        what, batch_id = kind
        if what == extract.BATCHES:
            return _BatchCreate(binding, extract.MESSAGES, None, False, options)
        if what == extract.BATCH_RESULTS:
            call = _BatchResults(binding, extract.MESSAGES, None, False, options)
            call.batch_id = str(batch_id)
            if call.scope.customer is None:
                with self._lock:
                    remembered = self._batch_scopes.get(call.batch_id)
                if remembered is not None:
                    call.scope = remembered
            return call
        body = options.json_data if isinstance(options.json_data, dict) else {}
        model = body.get("model")
        return Call(
            binding,
            extract.MESSAGES,
            model if isinstance(model, str) else None,
            body.get("stream") is True,
            options,
        )

    def on_result(self, call: Call, result: Any) -> Any:
        if is_raw_response(result):
            attach_raw(result, lambda parsed: self._meter(call, parsed))
        else:
            self._meter(call, result)
        return result

    def fallback(self, call: Call, exc: Exception) -> Any:
        """usagetap adds nothing to Anthropic requests, so there is nothing to retry without."""
        return None

    def describe(self, response: Any) -> Optional[tuple[str, Callable[[Any], TokenUsage]]]:
        if extract.is_message(response):
            return extract.MESSAGES, extract.message_usage
        return None

    def _meter(self, call: Call, result: Any) -> None:
        if isinstance(call, _BatchCreate):
            self._remember(field_of(result, "id"), call.scope)
        elif isinstance(call, _BatchResults):
            _meter_results(call, result)
        elif self._is_stream(result):
            tap = StreamTap(call, extract.MessageStreamObserver(), None)
            (attach_async if self._is_async_stream(result) else attach_sync)(result, tap)
        elif extract.is_message(result):
            emit(call, extract.message_usage, result)

    def _is_stream(self, result: Any) -> bool:
        if self._streams is None:
            self._streams = _stream_types()
        return isinstance(result, self._streams)

    def _is_async_stream(self, result: Any) -> bool:
        assert self._streams is not None
        return isinstance(result, self._streams[1])

    def _remember(self, batch_id: Any, scope: Scope) -> None:
        """Keep the scope a batch was created in, for results read where no customer is in scope."""
        if not isinstance(batch_id, str) or (scope.customer is None and not scope.dimensions):
            return
        with self._lock:
            self._batch_scopes[batch_id] = scope
            while len(self._batch_scopes) > _REMEMBERED_BATCHES:
                self._batch_scopes.popitem(last=False)


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
            emit(call, lambda item: extract.batch_item_usage(item, call.batch_id), line)
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
