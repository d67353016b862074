"""The in-process sink for tests: ``Memory().records`` is what was delivered."""

from __future__ import annotations

import threading
from collections.abc import Sequence

from .._record import UsageRecord
from .base import BaseSink, Outcomes

__all__ = ["Memory"]


class Memory(BaseSink):
    """Keep delivered records in a list, deduplicated on ``event_id`` like a real backend.

    ``records`` is the list of :class:`~usagetap.UsageRecord` delivered, in order.
    """

    name = "memory"
    max_batch = 1000
    local = True

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_id: dict[str, UsageRecord] = {}
        self.records: list[UsageRecord] = []

    def send(self, records: Sequence[UsageRecord]) -> Outcomes:
        """Append the records not seen before to ``records``; the others count as duplicates."""
        duplicates = 0
        with self._lock:
            for record in records:
                if record.event_id in self._by_id:
                    duplicates += 1
                    continue
                self._by_id[record.event_id] = record
                self.records.append(record)
        return Outcomes.all_delivered(records, duplicates=duplicates)

    def clear(self) -> None:
        """Forget every record (and the event ids seen), e.g. between tests."""
        with self._lock:
            self._by_id.clear()
            self.records.clear()

    def close(self) -> None:
        """Nothing to release; the records stay readable."""

    def __repr__(self) -> str:
        return f"Memory(records={len(self.records)})"
