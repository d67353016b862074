"""The bounded hand-off between the caller's thread and the delivery threads.

``put()`` is the only delivery code on the caller's thread: an append to a
deque, no I/O, and no lock while there is room (threads putting at once
would queue behind a holder the GIL preempted). The buffer is bounded by
item count and (estimated) bytes; when full, the overflow policy decides:
``drop_newest`` drops the incoming item, ``block`` waits up to
``block_timeout`` for room and then drops it. The bounds are soft: threads
putting at the same moment may each pass the check, and the byte count,
kept without a lock, is set right whenever the buffer drains.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from typing import Any

from .._record import UsageRecord

__all__ = ["CaptureBuffer", "estimate_bytes"]

_BASE_BYTES = 600
_CAPTURE_BYTES = 2048  # a captured call holds its SDK response until the intake builds its record


def estimate_bytes(item: Any) -> int:
    """A cheap size estimate: a fixed base plus the dimensions of a record; a capture counts more."""
    if isinstance(item, UsageRecord):
        return _BASE_BYTES + 48 * len(item.dimensions)
    return _CAPTURE_BYTES


class CaptureBuffer:
    def __init__(
        self,
        *,
        max_items: int,
        max_bytes: int,
        overflow: str = "drop_newest",
        block_timeout: float = 1.0,
    ) -> None:
        if overflow not in ("drop_newest", "block"):
            raise ValueError("overflow must be 'drop_newest' or 'block'")
        self.max_items = max_items
        self.max_bytes = max_bytes
        self.overflow = overflow
        self.block_timeout = block_timeout
        self._items: deque[tuple[Any, int]] = deque()
        self._bytes = 0
        self._room = threading.Condition(threading.Lock())

    def __len__(self) -> int:
        return len(self._items)

    def put(self, item: Any) -> int:
        """Queue ``item``; return how many items are queued then (0: dropped, the buffer is full)."""
        size = estimate_bytes(item) if type(item) is UsageRecord else _CAPTURE_BYTES
        items = self._items
        if len(items) < self.max_items and self._bytes + size <= self.max_bytes:
            items.append((item, size))  # atomic: no lock needed
            self._bytes += size
            return len(items)
        if self.overflow != "block":
            return 0
        with self._room:
            deadline = time.monotonic() + self.block_timeout
            while len(self._items) >= self.max_items or self._bytes + size > self.max_bytes:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return 0
                self._room.wait(remaining)
            self._items.append((item, size))
            self._bytes += size
            return len(self._items)

    def take(self, limit: int) -> list[Any]:
        """Remove and return up to ``limit`` items, oldest first (delivery thread)."""
        out: list[Any] = []
        removed = 0
        with self._room:
            items = self._items
            while items and len(out) < limit:
                item, size = items.popleft()
                out.append(item)
                removed += size
            self._bytes = self._bytes - removed if items else 0
            if out:
                self._room.notify_all()
        return out
