"""Metering botocore's response bodies in place: the same objects, the same items, the same errors.

A stream (``botocore.eventstream.EventStream``) iterates its raw event-stream messages from
``_event_generator`` and parses each for the caller. Converse and InvokeModel streams need only
their last messages (the usage comes last): the messages pass through C iterators that keep the
first and the last ones (``_edges``), with no Python call per message, and the observer reads them
when the stream is exhausted, closed, or collected, or at exit. A stream broken off by an error
event (botocore raises it to the caller) is recorded, ``partial``, once the caller closes or drops
the stream. ``close()`` after ``messageStop`` first reads the ``metadata`` event.

A non-streamed InvokeModel body without count headers (``botocore.response.StreamingBody``) is
metered from what the caller reads of it; a body closed or dropped before its end makes a
``partial`` record.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Iterator
from typing import Any, Optional

from ...instrument._calls import Call, emit
from ...instrument._streams import StreamTap, _edges, _hook_close, _sync_close

__all__ = ["BodyRead", "attach_body", "attach_events"]


def attach_events(stream: Any, tap: StreamTap) -> None:
    """Meter a botocore ``EventStream`` in place; ``tap``'s observer has a ``done`` attribute.

    An observer with a ``tail`` gets the first and last messages at the end (no Python call per
    message: they pass through C iterators); any other sees each message as it passes.
    """
    source = stream._event_generator
    tap.source = weakref.ref(source)
    tail = tap.observer.tail
    stream._event_generator = _edges(source, tap, tail) if tail > 0 else _events(source, tap)
    _hook_close(stream, tap, "close", _sync_close)
    tap.watch(stream)


def _events(messages: Iterator[Any], tap: StreamTap) -> Iterator[Any]:
    observer: Any = tap.observer
    try:
        for message in messages:
            tap.observe(message)
            if observer.done:
                tap.end()  # the usage (or the error) is in: the record needs nothing more
            yield message
    finally:  # exhausted, closed, failed or collected
        tap.end()


class BodyRead:
    """What the caller read of a body: its bytes, and whether it read it to the end."""

    __slots__ = ("complete", "data")

    def __init__(self, data: bytes, complete: bool) -> None:
        self.data = data
        self.complete = complete


def attach_body(body: Any, call: Call, extract: Callable[[BodyRead], Any]) -> None:
    """Meter a botocore ``StreamingBody`` from the bytes the caller reads; one record, when it is read to
    the end, closed, or collected (then from what was read: ``extract`` decides)."""
    body._raw_stream = _MeteredRaw(body._raw_stream, call, extract)


class _MeteredRaw:
    """The body's raw HTTP response, passing every byte read through to the caller and keeping a copy.

    ``StreamingBody`` reads only through its raw stream (``read``, ``readinto``, ``readlines``) and
    closes it: standing in for it meters every way of reading the body without holding the body.
    """

    __slots__ = ("__weakref__", "call", "chunks", "extract", "finalizer", "raw")

    def __init__(self, raw: Any, call: Call, extract: Callable[[BodyRead], Any]) -> None:
        self.raw = raw
        self.call = call
        self.extract = extract
        self.chunks: list[bytes] = []
        self.finalizer: Optional[weakref.finalize[Any, Any]] = weakref.finalize(
            self, _emit_read, call, extract, self.chunks
        )

    def __getattr__(self, name: str) -> Any:
        return getattr(self.raw, name)

    def read(self, amt: Optional[int] = None, *args: Any, **kwargs: Any) -> Any:
        chunk = self.raw.read(amt, *args, **kwargs)
        self._feed(chunk, amt is None or not chunk)
        return chunk

    def readinto(self, buffer: Any) -> Any:
        count = self.raw.readinto(buffer)
        self._feed(bytes(memoryview(buffer)[:count]), not count)
        return count

    def readlines(self, *args: Any) -> Any:
        lines = self.raw.readlines(*args)
        self._feed(b"".join(lines), not args)
        return lines

    def close(self) -> Any:
        try:
            return self.raw.close()
        finally:
            self._finish(False)

    def _feed(self, chunk: Any, ended: bool) -> None:
        if self.finalizer is not None and isinstance(chunk, bytes):
            self.chunks.append(chunk)
            if ended:
                self._finish(True)

    def _finish(self, complete: bool) -> None:
        finalizer, self.finalizer = self.finalizer, None
        if finalizer is not None and finalizer.detach() is not None:
            _emit_read(self.call, self.extract, self.chunks, complete)


def _emit_read(
    call: Call, extract: Callable[[BodyRead], Any], chunks: list[bytes], complete: bool = False
) -> None:
    emit(call, extract, BodyRead(b"".join(chunks), complete))
