"""``with_raw_response`` / ``with_streaming_response``: meter the raw object, however the caller uses it.

The SDK hands the caller a raw response wrapper; usagetap leaves it as it is
and hooks, on the instances only:

- its ``parse()``: a parsed *stream* is metered as it is read, like any stream;
- its HTTP response's body: a body already read when the wrapper is returned
  (``with_raw_response``) is metered at once; an unread one is metered when it
  has been read, through ``parse()``, ``read()``, ``json()``, ``text()`` or the
  ``iter_*`` methods (which all read through ``iter_bytes``/``aiter_bytes``),
  and when it is closed or dropped unread (then the record is partial).

Exactly one of these meters a response. For a raw event stream that usagetap
asked usage for, the usage-only event is cut out of the bytes the caller reads;
from a body already in memory (a transport that returns ``content=bytes``), it is
cut out of that body.
"""

from __future__ import annotations

import inspect
import re
import threading
import weakref
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any, ClassVar, Optional

from .._log import internal_error

__all__ = ["BodyMeter", "attach_body", "attach_raw", "is_raw_response"]

_BOUNDARY = re.compile(rb"\r\n\r\n|\n\n|\r\r")


def is_raw_response(result: Any) -> bool:
    """A Stainless SDK raw response wrapper (``LegacyAPIResponse``, ``APIResponse``, ``AsyncAPIResponse``)."""
    return hasattr(result, "http_response") and callable(getattr(type(result), "parse", None))


class BodyMeter(ABC):
    """The adapter's half: what to do with a stream ``parse()`` returned, or with the body read."""

    __slots__ = ()

    usage_event: ClassVar[re.Pattern[bytes]] = re.compile(rb'"usage"\s*:\s*\{')
    """What an SSE event reporting usage contains: of an event stream's body, :meth:`on_body` gets
    the first event and the last one matching it."""

    @abstractmethod
    def on_stream(self, parsed: Any) -> None:
        """``parse()`` returned ``parsed`` (an SDK stream, or an object) before the body was read."""

    @abstractmethod
    def on_body(self, body: Optional[bytes], sse: bool, complete: bool) -> None:
        """The body (None if never read; for an event stream, its first and last usage events);
        ``complete``: it was read to its end."""

    def hider(self) -> Optional[Callable[[bytes], bool]]:
        """For an event stream: what says whether to cut a raw SSE event (bytes, with its
        terminator) out of what the caller reads, called on each in order; None to cut none."""
        return None


class _State:
    """Who meters one raw response (``parse`` or ``body``), and the body seen so far."""

    __slots__ = (
        "__weakref__",
        "_lock",
        "chunks",
        "complete",
        "first",
        "hide",
        "last",
        "meter",
        "owner",
        "reader",
        "reports_usage",
        "sse",
        "tail",
    )

    def __init__(self, meter: BodyMeter, sse: bool) -> None:
        self.meter = meter
        self.sse = sse
        self.hide = meter.hider() if sse else None
        self.reports_usage = meter.usage_event.search
        self.complete = False
        self.owner: Optional[str] = None
        self.reader: Any = None
        self.chunks: list[bytes] = []
        self.first: Optional[bytes] = None
        self.last: Optional[bytes] = None
        self.tail = b""
        self._lock = threading.Lock()

    def claim(self, owner: str) -> bool:
        with self._lock:
            if self.owner is not None:
                return False
            self.owner = owner
            return True

    def finish(self) -> None:
        """Meter the body seen so far, once (the caller has read it, or closed or dropped it)."""
        with self._lock:
            if self.owner in ("done", "parse"):
                return
            self.owner = "done"
        try:
            if self.sse:
                events = [e for e in (self.first, self.last, self.tail or None) if e is not None]
                body = b"".join(events) if events else None
            else:
                body = b"".join(self.chunks) if self.chunks else None
            self.chunks = []
            self.meter.on_body(body, self.sse, self.complete)
        except Exception as exc:
            internal_error("raw.body", exc)

    def events(self, chunk: bytes) -> bytes:
        """Whole SSE events from the bytes read so far: keep the first and the last reporting usage;
        leave out the hidden ones."""
        data = self.tail + chunk
        out: list[bytes] = []
        start = 0
        hide = self.hide
        for match in _BOUNDARY.finditer(data):
            event = data[start : match.end()]
            start = match.end()
            if self.first is None:
                self.first = event
            if self.reports_usage(event):
                self.last = event
            if hide is not None and hide(event):
                continue
            out.append(event)
        self.tail = data[start:]
        return b"".join(out)


def _read_sync(state: _State, items: Iterator[bytes]) -> Iterator[bytes]:
    try:
        for data in items:
            chunk = state.events(data) if state.sse else data
            if not state.sse:
                state.chunks.append(chunk)
            if chunk:
                yield chunk
        if state.tail:
            yield state.tail
        state.complete = True
    finally:
        state.finish()


async def _read_async(state: _State, items: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    try:
        async for data in items:
            chunk = state.events(data) if state.sse else data
            if not state.sse:
                state.chunks.append(chunk)
            if chunk:
                yield chunk
        if state.tail:
            yield state.tail
        state.complete = True
    finally:
        state.finish()


def _reading(reader: Any) -> bool:
    """Whether the body is being read right now (httpx closes the response itself at the end of it)."""
    return reader is not None and bool(
        getattr(reader, "gi_running", False) or getattr(reader, "ag_running", False)
    )


# The hooks hold their object strongly: ``client...with_raw_response.create(...).parse()`` drops the
# wrapper as soon as ``parse`` is looked up. The cycle (object -> hook -> object) is left to the
# cyclic collector, which also runs the finalizer of a body dropped unread.


def _hook_body(http_response: Any, state: _State) -> None:
    cls = type(http_response)
    iter_bytes, aiter_bytes = cls.iter_bytes, cls.aiter_bytes
    close, aclose = cls.close, cls.aclose

    def hooked_iter_bytes(*args: Any, **kwargs: Any) -> Iterator[bytes]:
        items = iter_bytes(http_response, *args, **kwargs)
        if not state.claim("body"):
            return items  # type: ignore[no-any-return]
        state.reader = _read_sync(state, items)
        return state.reader  # type: ignore[no-any-return]

    def hooked_aiter_bytes(*args: Any, **kwargs: Any) -> AsyncIterator[bytes]:
        items = aiter_bytes(http_response, *args, **kwargs)
        if not state.claim("body"):
            return items  # type: ignore[no-any-return]
        state.reader = _read_async(state, items)
        return state.reader  # type: ignore[no-any-return]

    def hooked_close() -> None:
        try:
            close(http_response)
        finally:
            if not _reading(state.reader):
                state.finish()

    async def hooked_aclose() -> None:
        try:
            await aclose(http_response)
        finally:
            if not _reading(state.reader):
                state.finish()

    http_response.iter_bytes = hooked_iter_bytes
    http_response.aiter_bytes = hooked_aiter_bytes
    http_response.close = hooked_close
    http_response.aclose = hooked_aclose
    weakref.finalize(http_response, state.finish)


def _meter_in_memory(http_response: Any, state: _State, content: bytes) -> None:
    """Meter a body already read; from an event stream, first cut out the events to hide."""
    state.owner = "body"
    state.complete = True
    if state.sse:
        shown = state.events(content) + state.tail
        if shown != content:
            _replace_body(http_response, shown)
    else:
        state.chunks.append(content)
    state.finish()


def _replace_body(http_response: Any, body: bytes) -> None:
    """What the caller reads from an httpx response already in memory, however it reads it."""
    try:
        http_response._content = body
        stream = http_response.stream
        if type(stream).__name__ == "ByteStream":  # what ``iter_raw()`` reads from
            http_response.stream = type(stream)(body)
    except Exception as exc:
        internal_error("raw.body", exc)


def _already_read(http_response: Any) -> Optional[bytes]:
    try:
        content = http_response.content
    except Exception:  # httpx.ResponseNotRead: a body still to be streamed
        return None
    return content if isinstance(content, bytes) else None


class _Once:
    __slots__ = ("_done", "_lock", "on_parsed")

    def __init__(self, on_parsed: Callable[[Any], None]) -> None:
        self.on_parsed = on_parsed
        self._done = False
        self._lock = threading.Lock()

    def __call__(self, parsed: Any) -> None:
        with self._lock:
            if self._done:
                return
            self._done = True
        try:
            self.on_parsed(parsed)
        except Exception as exc:
            internal_error("raw.parse", exc)


def attach_raw(raw: Any, on_parsed: Callable[[Any], None], body: Optional[BodyMeter] = None) -> None:
    """Meter ``raw`` once: ``on_parsed(result)`` the first time ``raw.parse()`` returns, or ``body``.

    Without ``body``, only ``parse()`` meters. With it, the HTTP body is
    metered when it has been read (at once if it already was), and
    ``on_parsed`` only gets what ``parse()`` returned before the body was read:
    a stream.
    """
    state = None if body is None else _watch_body(raw.http_response, body)
    _hook_parse(raw, on_parsed if state is None else _parse_first(state, on_parsed))


def attach_body(http_response: Any, body: BodyMeter) -> None:
    """Meter an SDK's HTTP response by its body alone (an SDK without raw wrappers, such as mistralai):
    at once if it was read, else when it has been read, closed or dropped."""
    _watch_body(http_response, body)


def _watch_body(http_response: Any, body: BodyMeter) -> _State:
    content_type = http_response.headers.get("content-type", "")
    state = _State(body, sse=content_type.startswith("text/event-stream"))
    content = _already_read(http_response)
    if content is not None:
        _meter_in_memory(http_response, state, content)
    else:
        _hook_body(http_response, state)
    return state


def _parse_first(state: _State, on_parsed: Callable[[Any], None]) -> Callable[[Any], None]:
    def parsed_first(parsed: Any) -> None:
        if state.claim("parse"):
            on_parsed(parsed)

    return parsed_first


def _hook_parse(raw: Any, on_parsed: Callable[[Any], None]) -> None:
    parse, once = type(raw).parse, _Once(on_parsed)

    if inspect.iscoroutinefunction(parse):

        async def parse_async(*args: Any, **kwargs: Any) -> Any:
            parsed = await parse(raw, *args, **kwargs)
            once(parsed)
            return parsed

        raw.parse = parse_async
        return

    def parse_sync(*args: Any, **kwargs: Any) -> Any:
        parsed = parse(raw, *args, **kwargs)
        once(parsed)
        return parsed

    raw.parse = parse_sync
