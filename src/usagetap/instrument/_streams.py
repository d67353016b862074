"""Metering a stream without changing it: same object, same type, same iteration and close semantics.

The SDK's ``Stream``/``AsyncStream`` iterate ``self._iterator``; we swap in a
generator that passes each item through an observer and emits exactly one
record when the stream ends, however it ends: exhausted, broken off and
closed, failed mid-way, or dropped unconsumed and garbage-collected.
Per-item work is the observer's and stays small: the record itself is built
later, on the delivery worker. An observer that needs only a stream's first
and last items (``tail``) gets no Python call per item on a sync stream: the
items pass through C iterators that keep those edges, observed at the end.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import weakref
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterator
from itertools import chain, filterfalse, islice
from typing import Any, Optional

from .._log import internal_error, log
from .._state import STATE
from ..providers.observer import Observer
from ._calls import Call, emit

__all__ = ["StreamTap", "attach_async", "attach_sync"]


# On close, at most this many more items are read when the observer says usage is next
# (a caller who broke out at ``finish_reason``, one chunk before the usage chunk).
DRAIN_LIMIT = 4
DRAIN_SECONDS = 2.0


class StreamTap:
    """The metering state of one stream, fed to its provider's :class:`Observer`.

    ``observe`` returns True for items to hide from the caller: with ``hides``, those the
    observer's ``hidden()`` picks. A stream closed while the observer ``wants_more()`` first
    reads up to :data:`DRAIN_LIMIT` more items, unseen by the caller, so the record carries the
    provider's usage instead of being partial; a record whose usage is not ``usage_final`` is
    ``partial``. With an observer's ``tail``, a sync stream records only the first and last items
    (:func:`_edges`) and hands them to ``observe`` when it ends, or before it drains; ``hidden``
    then decides from the item alone, inside C iterators, where a failure would reach the caller.
    """

    __slots__ = ("call", "edges", "gone", "hide", "hook", "observer", "source")

    def __init__(self, call: Call, observer: Observer, hides: bool = False) -> None:
        self.call = call
        self.observer = observer
        self.hide: Optional[Callable[[Any], bool]] = observer.hidden if hides else None
        self.source: Optional[weakref.ReferenceType[Any]] = None  # the SDK's iterator, held by ours
        self.edges: Optional[tuple[list[Any], deque[Any]]] = None  # (first item, last items) seen
        self.hook: Optional[tuple[weakref.ReferenceType[Any], str, Any]] = None  # (target, name, close hook)
        self.gone: Optional[weakref.ReferenceType[Any]] = None  # the stream; ends the tap when collected

    def observe(self, item: Any) -> bool:
        try:
            self.observer.observe(item)
            return self.hide is not None and self.hide(item)
        except Exception as exc:
            internal_error("stream.observe", exc)
            return False

    def watch(self, stream: Any) -> None:
        """Start metering ``stream``: its record is due from here on (see :func:`_end_open`)."""
        self.gone = weakref.ref(stream, self._collected)
        _open[id(self)] = self

    def _collected(self, _: object) -> None:
        self.end()

    def end(self) -> bool:
        """Emit the stream's record, once (the stream is done, closed, failed, collected, or open at
        exit). True for the one call that emitted it."""
        if _open.pop(id(self), None) is not self:  # atomic: one of racing ends goes on
            return False
        self.gone = None
        self._observe_edges()
        observer = self.observer
        emit(self.call, type(observer).result, observer, "ok" if observer.usage_final else "partial")
        self._unhook()
        return True

    def _unhook(self) -> None:
        """Take the close hook off its target: once the record is out, closing has nothing to meter."""
        hook, self.hook = self.hook, None
        if hook is not None:
            ref, name, closing = hook
            state = getattr(ref(), "__dict__", None)
            if state is not None and state.get(name) is closing:
                del state[name]

    def _observe_edges(self) -> None:
        """Hand the observer the first and last items a sync stream kept for it (see ``tail``)."""
        edges, self.edges = self.edges, None
        if edges is None:
            return
        see = _item_handler(self) if self.hide is None else self.observer.observe  # hide ran as they passed
        for item in (*edges[0], *edges[1]):
            try:
                see(item)
            except Exception as exc:
                internal_error("stream.observe", exc)

    def _wants_more(self) -> bool:
        try:
            return id(self) in _open and self.observer.wants_more()
        except Exception as exc:
            internal_error("stream.drain", exc)
            return False

    def drain(self) -> None:
        """Read the usage the provider is about to send (sync source); never raises."""
        source = None if self.source is None else self.source()
        if source is None or getattr(source, "gi_running", True):
            return
        self._observe_edges()
        if not self._wants_more():
            return
        try:
            for _ in range(DRAIN_LIMIT):
                self.observe(next(source))
                if not self._wants_more():
                    return
        except Exception as exc:  # the stream failing or ending is the caller's business, not ours
            log.debug("usagetap: stopped reading a closed stream's usage: %r", exc)

    async def adrain(self) -> None:
        """Read the usage the provider is about to send (async source, time-bounded); never raises."""
        source = None if self.source is None else self.source()
        if source is None or getattr(source, "ag_running", True) or not self._wants_more():
            return
        try:
            with _deadline(DRAIN_SECONDS):
                for _ in range(DRAIN_LIMIT):
                    self.observe(await source.__anext__())
                    if not self._wants_more():
                        return
        except Exception as exc:
            log.debug("usagetap: stopped reading a closed stream's usage: %r", exc)


_open: dict[int, StreamTap] = STATE.open_streams  # taps of streams being metered, by id


def _end_open() -> None:
    """At exit, the record of every stream still open (before usagetap's final flush, registered earlier)."""
    for tap in list(_open.values()):
        tap.end()


atexit.register(_end_open)
if hasattr(os, "register_at_fork"):  # a child's copies of the parent's open streams are the parent's to meter
    os.register_at_fork(after_in_child=_open.clear)


def _deadline(seconds: float) -> Any:
    """A cancel scope for the running event loop (asyncio or trio), when anyio is installed."""
    try:
        import anyio
    except ImportError:  # pragma: no cover - anyio comes with the provider SDKs
        return contextlib.nullcontext()
    return anyio.move_on_after(seconds)


# Per item: one call, the item handler's, which observes the item and says whether to hide it; a
# failure in it is ours, logged and counted, and the item still reaches the caller.


def _item_handler(tap: StreamTap) -> Callable[[Any], bool]:
    """What each item goes through: the observer, or only its ``kinds`` (event types) when it names them."""
    observe, hide, kinds = tap.observer.observe, tap.hide, tap.observer.kinds
    if hide is not None:

        def see_and_hide(item: Any) -> bool:
            observe(item)
            return hide(item)

        return see_and_hide
    if kinds is None:

        def see(item: Any) -> bool:
            observe(item)
            return False

        return see

    def see_kinds(item: Any) -> bool:
        try:
            kind = item.type
        except AttributeError:
            kind = item.get("type") if type(item) is dict else None
        if kind in kinds:
            observe(item)
        return False

    return see_kinds


def _iterate(items: Iterator[Any], tap: StreamTap) -> Iterator[Any]:
    see = _item_handler(tap)
    try:
        for item in items:
            try:
                if see(item):
                    continue
            except Exception as exc:
                internal_error("stream.observe", exc)
            yield item
    finally:  # exhausted, closed (GeneratorExit) or failed
        tap.end()


def _ending(tap: StreamTap) -> Iterator[Any]:
    """Ends the metering once the items before it are exhausted; yields nothing."""
    tap.end()
    yield from ()


def _edges(items: Iterator[Any], tap: StreamTap, size: int) -> Iterator[Any]:
    """``items`` unchanged; the first and the last ``size`` are kept for the observer (see ``tail``).

    A failure of the SDK's iterator reaches the caller as it is; the stream's
    record is emitted when the SDK closes the response (see :func:`_closes_its_response`).
    """
    head: list[Any] = []
    tail: deque[Any] = deque(maxlen=size)
    tap.edges = (head, tail)
    # filterfalse(keep, ...) passes every item on (``append`` returns None) after keeping it
    first, rest = filterfalse(head.append, islice(items, 1)), filterfalse(tail.append, items)
    hide = tap.hide
    if hide is not None:
        first, rest = filterfalse(hide, first), filterfalse(hide, rest)
    return chain(first, rest, _ending(tap))


async def _aiterate(items: AsyncIterator[Any], tap: StreamTap) -> AsyncIterator[Any]:
    see = _item_handler(tap)
    try:
        async for item in items:
            try:
                if see(item):
                    continue
            except Exception as exc:
                internal_error("stream.observe", exc)
            yield item
    finally:  # exhausted, closed (GeneratorExit) or failed
        tap.end()


# The close hooks hold their target weakly: a reference cycle would leave a dropped
# stream to the cyclic collector instead of freeing (and metering) it at once.
# They sit on the HTTP response, which the SDK's stream and its helpers
# (``chat.completions.stream()``, ``responses.stream()``) all close.


def _sync_close(ref: weakref.ReferenceType[Any], close: Any, tap: StreamTap) -> Callable[[], Any]:
    def closing() -> Any:
        tap.drain()
        try:
            obj = ref()
            return None if obj is None else close(obj)
        finally:
            tap.end()

    return closing


def _async_close(ref: weakref.ReferenceType[Any], close: Any, tap: StreamTap) -> Callable[[], Any]:
    async def closing() -> Any:
        await tap.adrain()
        try:
            obj = ref()
            return None if obj is None else await close(obj)
        finally:
            tap.end()

    return closing


def _close_target(stream: Any, name: str) -> tuple[Any, str]:
    """The stream's HTTP response and its close method's name, or the stream and ``close``."""
    response = getattr(stream, "response", None)
    if response is not None and callable(getattr(type(response), name, None)):
        return response, name
    return stream, "close"


Hook = Callable[[weakref.ReferenceType[Any], Any, StreamTap], Callable[[], Any]]


def _hook_close(stream: Any, tap: StreamTap, name: str, make: Hook) -> None:
    """Put the close hook ``make`` builds on the stream's response (or the stream); the tap takes it off."""
    target, name = _close_target(stream, name)
    ref = weakref.ref(target)
    closing = make(ref, getattr(type(target), name), tap)
    setattr(target, name, closing)
    tap.hook = (ref, name, closing)


_closing = STATE.closing_streams


def _closes_its_response(stream: Any) -> bool:
    """Whether the SDK's iterator closes the response however it ends (newer SDKs, in a ``finally``).

    Only then does a failing stream reach the close hook at once without a generator of ours
    around the SDK's iterator (older SDKs leave the response open until the stream is closed
    or collected). Probed once per stream type, from the names its ``__stream__`` uses.
    """
    cls = type(stream)
    closes = _closing.get(cls)
    if closes is None:
        code = getattr(getattr(cls, "__stream__", None), "__code__", None)
        closes = _closing[cls] = code is not None and "close" in code.co_names
    return closes


def attach_sync(stream: Any, tap: StreamTap) -> None:
    """Meter a sync SDK stream in place."""
    source = stream._iterator
    tap.source = weakref.ref(source)
    tail = tap.observer.tail
    if tail > 0 and _closes_its_response(stream):
        stream._iterator = _edges(source, tap, tail)
    else:
        stream._iterator = _iterate(source, tap)
    _hook_close(stream, tap, "close", _sync_close)
    tap.watch(stream)


def attach_async(stream: Any, tap: StreamTap) -> None:
    """Meter an async SDK stream in place."""
    source = stream._iterator
    tap.source = weakref.ref(source)
    stream._iterator = _aiterate(source, tap)
    _hook_close(stream, tap, "aclose", _async_close)
    tap.watch(stream)
