"""How many records a sink's backend takes per request, learned from its 413 answers.

A backend that refuses a batch as too large (HTTP 413) refuses the same size
again: the sizes it took and the smallest it refused are remembered per sink,
so later batches go at a size that fits instead of being bisected again.
Between the two, :meth:`BatchSizes.lease_size` tries the middle (a binary
search), so the learned size climbs to the backend's real limit.
"""

from __future__ import annotations

import threading
from typing import Optional

__all__ = ["BatchSizes"]


class BatchSizes:
    """The largest batch the backend took and the smallest it refused as too large. Thread-safe."""

    def __init__(self, limit: int) -> None:
        self.limit = max(1, limit)
        self.taken = 0
        self.refused: Optional[int] = None
        self._lock = threading.Lock()

    def was_refused(self, n: int) -> None:
        """A batch of ``n`` records was too large (``n`` > 1: a single record is too large on its own)."""
        if n <= 1:
            return
        with self._lock:
            self.refused = n if self.refused is None else min(self.refused, n)
            if self.taken >= self.refused:  # the records got larger: what fitted before may not
                self.taken = 0

    def was_taken(self, n: int) -> None:
        """A batch of ``n`` records was not refused for its size."""
        with self._lock:
            if self.refused is None or n < self.refused:
                self.taken = max(self.taken, n)

    def known_too_large(self, n: int) -> bool:
        """Whether a batch of ``n`` records is at least a size the backend refused."""
        refused = self.refused
        return refused is not None and n >= refused

    def safe_size(self) -> int:
        """The most records to send at once without trying a size not known to fit."""
        with self._lock:
            if self.refused is None:
                return self.limit
            return self.taken or max(1, self.refused // 2)

    def lease_size(self) -> int:
        """Records for the next batch: the safe size, or the middle of what is still unknown."""
        with self._lock:
            if self.refused is None:
                return self.limit
            if not self.taken:
                return max(1, self.refused // 2)
            return min(self.limit, (self.taken + self.refused) // 2)
