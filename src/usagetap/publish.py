"""The one way a finished call leaves the instrumentation: :func:`publish`, to every consumer.

Like OpenTelemetry's ``SpanProcessor.on_end``: each registered :class:`Consumer` (run totals,
budget limits, delivery) is handed the call's :class:`~usagetap.delivery.intake.Capture` once, on
the caller's thread, and must only queue it: the record is built later, once, by whoever reads it
first (span attributes, :mod:`usagetap._spans`, build it there only for a recording span). Delivery
and span attributes are always registered; run totals from the first run, limits from the first limit.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from ._forksafe import module_lock
from ._log import internal_error
from ._state import STATE

if TYPE_CHECKING:
    from .delivery.intake import Capture

__all__ = ["Consumer", "publish", "register", "unregister"]

_lock = module_lock(globals(), "_lock")


class Consumer(Protocol):
    """Receives every finished call. ``on_end`` runs on the caller's thread: queue, nothing more."""

    def on_end(self, capture: Capture) -> None: ...


def publish(capture: Capture) -> None:
    """Hand a finished call to every consumer; a consumer that fails is logged, the others still run."""
    for consumer in STATE.consumers:
        try:
            consumer.on_end(capture)
        except Exception as exc:
            internal_error("capture", exc)


def register(consumer: Consumer) -> None:
    """Add ``consumer`` (once; consumers receive calls in the order they were registered)."""
    with _lock:
        if not any(c is consumer for c in STATE.consumers):
            STATE.consumers = (*STATE.consumers, consumer)


def unregister(consumer: Consumer) -> None:
    """Remove ``consumer``; calls published afterwards do not reach it."""
    with _lock:
        STATE.consumers = tuple(c for c in STATE.consumers if c is not consumer)
