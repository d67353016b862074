"""One call, one record, however many layers see it: a framework's callback defers to the SDK below.

A framework that calls a provider SDK (LiteLLM calls the ``openai`` SDK) may run above a client
usagetap already meters (``instrument()``, or a wrapped client handed to the framework). The SDK
layer publishes its record first: before the framework's success callback fires, the SDK call has
returned (or its stream has ended). So the framework layer :func:`mark`\\ s where its call starts,
and when it ends asks :func:`metered_below` whether a capture published since then is the same
response (same response id; for responses without one, such as embeddings, the same operation and
input tokens); each such capture answers for one framework call only. The SDK layer's record wins:
it has the provider's exact usage.
"""

from __future__ import annotations

import itertools
import threading
from collections import deque
from typing import Optional

from ..delivery.intake import Capture
from ..publish import register

__all__ = ["LayerCapture", "mark", "metered_below"]

_KEEP = 512  # recent captures kept: far more than the calls one framework call can overlap


class LayerCapture(Capture):
    """A capture published by a framework layer (never a match for another framework call)."""

    __slots__ = ()


class _Recent:
    """A publish consumer keeping the latest captures, numbered in publication order."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._count = itertools.count(1)
        self._seq = 0
        self._items: deque[tuple[int, Capture]] = deque(maxlen=_KEEP)
        self._claimed: set[int] = set()

    def on_end(self, capture: Capture) -> None:
        if isinstance(capture, LayerCapture):
            return
        with self._lock:
            self._seq = next(self._count)
            self._items.append((self._seq, capture))

    def now(self) -> int:
        with self._lock:
            return self._seq

    def since(self, start: int) -> list[tuple[int, Capture]]:
        with self._lock:
            return [(seq, c) for seq, c in self._items if seq > start and seq not in self._claimed]

    def claim(self, seq: int) -> bool:
        with self._lock:
            if seq in self._claimed:
                return False
            self._claimed.add(seq)
            if len(self._claimed) > 4 * _KEEP:
                oldest = self._items[0][0] if self._items else seq
                self._claimed = {s for s in self._claimed if s >= oldest}
            return True


_RECENT = _Recent()


def mark() -> int:
    """Start watching what the SDK layer publishes; the position to pass to :func:`metered_below`."""
    register(_RECENT)
    return _RECENT.now()


def metered_below(
    since: Optional[int],
    response_id: Optional[str],
    operation: str,
    input_tokens: Optional[int],
    model: Optional[str] = None,
) -> bool:
    """Whether a capture published after ``since`` is this call, claiming it if so.

    ``since`` None (the framework never said where its call started): only the response id can tell.
    A response without an id matches on operation, input tokens and the model asked for.
    """
    if response_id is None and (since is None or input_tokens is None):
        return False
    for seq, capture in _RECENT.since(since or 0):
        record = capture.record(price=False)
        if record is None:
            continue
        if response_id is not None:
            same = record.response_id == response_id
        else:
            same = (record.response_id, record.operation, record.input_tokens) == (
                None,
                operation,
                input_tokens,
            )
            same = same and (model is None or model in (record.request_model, record.model))
        if same and _RECENT.claim(seq):
            return True
    return False
