"""Metering a stream without changing it: same object, same type, same iteration and close semantics.

The SDK's ``Stream``/``AsyncStream`` iterate ``self._iterator``; we swap in a
generator that passes each item through an observer and emits exactly one
record when the stream ends, however it ends: exhausted, broken off and
closed, failed mid-way, or dropped unconsumed and garbage-collected.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import AsyncIterator, Iterator
from typing import Any, Callable, Optional

from .._log import internal_error
from ..providers.base import TokenUsage
from ._calls import Call, emit

__all__ = ["StreamTap", "attach_async", "attach_sync"]


class StreamTap:
    """The metering state of one stream. ``observe`` returns True for items to hide from the caller."""

    __slots__ = ("__weakref__", "_ended", "_lock", "call", "hide", "observer")

    def __init__(self, call: Call, observer: Any, hide: Optional[Callable[[Any], bool]]) -> None:
        self.call = call
        self.observer = observer
        self.hide = hide
        self._ended = False
        self._lock = threading.Lock()

    def observe(self, item: Any) -> bool:
        try:
            self.observer.observe(item)
            return self.hide is not None and self.hide(item)
        except Exception as exc:
            internal_error("stream.observe", exc)
            return False

    def end(self, how: str) -> None:
        """Emit the stream's record, once. ``how``: done, closed, error, gc."""
        with self._lock:
            if self._ended:
                return
            self._ended = True
        emit(self.call, _result_of, self.observer)


def _result_of(observer: Any) -> TokenUsage:
    usage: TokenUsage = observer.result()
    return usage


def _iterate(items: Iterator[Any], tap: StreamTap) -> Iterator[Any]:
    observe = tap.observe
    try:
        for item in items:
            if observe(item):
                continue
            yield item
    except GeneratorExit:
        tap.end("closed")
        raise
    except BaseException:
        tap.end("error")
        raise
    tap.end("done")


async def _aiterate(items: AsyncIterator[Any], tap: StreamTap) -> AsyncIterator[Any]:
    observe = tap.observe
    try:
        async for item in items:
            if observe(item):
                continue
            yield item
    except GeneratorExit:
        tap.end("closed")
        raise
    except BaseException:
        tap.end("error")
        raise
    tap.end("done")


# The close hooks hold the stream weakly: a reference cycle would leave a dropped
# stream to the cyclic collector instead of freeing (and metering) it at once.


def _sync_close(stream: Any, tap: StreamTap) -> Callable[[], Any]:
    ref, close = weakref.ref(stream), type(stream).close

    def closing() -> Any:
        try:
            target = ref()
            return None if target is None else close(target)
        finally:
            tap.end("closed")

    return closing


def _async_close(stream: Any, tap: StreamTap) -> Callable[[], Any]:
    ref, close = weakref.ref(stream), type(stream).close

    async def closing() -> Any:
        try:
            target = ref()
            return None if target is None else await close(target)
        finally:
            tap.end("closed")

    return closing


def attach_sync(stream: Any, tap: StreamTap) -> None:
    """Meter a sync SDK stream in place."""
    original = stream._iterator
    stream._iterator = _iterate(original, tap)
    stream.close = _sync_close(stream, tap)
    weakref.finalize(stream, tap.end, "gc")


def attach_async(stream: Any, tap: StreamTap) -> None:
    """Meter an async SDK stream in place."""
    original = stream._iterator
    stream._iterator = _aiterate(original, tap)
    stream.close = _async_close(stream, tap)
    weakref.finalize(stream, tap.end, "gc")
