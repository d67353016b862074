"""Where records wait for each sink: leased while in flight, removed only once acknowledged.

Three implementations share :class:`Store`: :class:`MemoryStore`, :class:`SpillingStore` (durability
``"memory"``: memory first, a spool for what does not fit) and :class:`usagetap.delivery.spool.Spool`
(SQLite on disk, durability ``"spool"``).
"""

from __future__ import annotations

import heapq
import itertools
import threading
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Optional

from .._record import UsageRecord

__all__ = ["DeadLetter", "Entry", "MemoryStore", "SpoolUnavailable", "SpillingStore", "Store", "StoreFull"]


class SpoolUnavailable(Exception):
    """The spool cannot be opened or written (unwritable path, disk full)."""


class StoreFull(Exception):
    """The store is at its size cap; the overflow policy decides what happens to the records."""


class Entry:
    """One record waiting for one sink. ``key`` is where its store keeps it (on a spool: its row,
    which the other records of its batch share).

    A class with slots, not a dataclass: a store holds thousands, and each would carry a ``__dict__``
    for the cyclic collector to walk.
    """

    __slots__ = ("attempts", "key", "not_before", "record", "tier")

    def __init__(
        self,
        key: int,
        record: UsageRecord,
        attempts: int = 0,
        not_before: float = 0.0,
        tier: Optional[Store] = None,
    ) -> None:
        self.key = key
        self.record = record
        self.attempts = attempts
        self.not_before = not_before
        self.tier = tier

    def __repr__(self) -> str:
        return (
            f"Entry(key={self.key!r}, record={self.record!r}, attempts={self.attempts!r}, "
            f"not_before={self.not_before!r})"
        )


@dataclass
class DeadLetter:
    sink: str
    record: UsageRecord
    reason: str
    died: float = field(default=0.0)


class Store(ABC):
    """Where records wait for each sink. Subclasses implement the abstract methods; the others have
    defaults for a store that keeps nothing on disk."""

    durable: bool = False
    """Whether what :meth:`add` takes is on disk once it returns (counted in ``stats()["spooled"]``)."""

    keeps_meta: bool = False
    """Whether :meth:`update_meta` keeps what it is given (for ``usagetap status``)."""

    @abstractmethod
    def add(self, sinks: Sequence[str], records: Sequence[UsageRecord]) -> None:
        """Keep ``records`` for each of ``sinks``; raise :class:`StoreFull` at the size cap."""

    @abstractmethod
    def lease(self, sink: str, limit: int, now: float) -> list[Entry]:
        """Up to ``limit`` due entries for ``sink``, earliest due first (then oldest), leased to us."""

    @abstractmethod
    def ack(self, sink: str, entries: Sequence[Entry]) -> None:
        """The backend took these: forget them."""

    @abstractmethod
    def retry(self, sink: str, entries: Sequence[Entry]) -> None:
        """Release these leases; each entry is due again at its ``not_before``."""

    @abstractmethod
    def dead(self, sink: str, entries: Sequence[Entry], reasons: Sequence[str], now: float) -> None:
        """Move these to the dead letters with the backend's reasons."""

    @abstractmethod
    def pending(self, sink: Optional[str] = None, *, mine: bool = False) -> int:
        """Entries not yet acknowledged (leased ones included), for one sink or all.

        With ``mine``, only entries this process added (a spool may be shared by several).
        """

    @abstractmethod
    def has_pending(self) -> bool:
        """Whether any entry this process added is unacknowledged (without counting them)."""

    @abstractmethod
    def next_due(self, sink: str) -> Optional[float]:
        """When the earliest unleased entry of ``sink`` is due, or None when there is none."""

    def close(self) -> None:  # noqa: B027 (a default: nothing held open)
        """Release what the store holds open (a connection); its entries stay where they are."""

    def disk(self) -> Optional[Store]:
        """The store on disk behind this one (itself, for a spool), opened on first use; None when
        there is none or it cannot be opened."""
        return None

    def drain(self) -> list[tuple[str, Entry]]:
        """Take out every entry that only memory holds (to keep it on disk at shutdown)."""
        return []

    def keep_entries(self, items: Sequence[tuple[str, Entry]]) -> None:
        """Keep entries drained from another store (``(sink, entry)`` each), with their attempts and due
        times. Only a store that :meth:`disk` returns needs it."""
        raise NotImplementedError(f"{type(self).__name__} does not keep entries from another store")

    def adopt(self) -> None:  # noqa: B027 (a default: nothing shared to take over)
        """Take over what other stores on the same file left (to deliver and flush it)."""

    def update_meta(  # noqa: B027 (a default: no meta kept)
        self, key: str, *, add: Mapping[str, int], put: Mapping[str, Any]
    ) -> None:
        """Merge into the status object at ``key`` (kept only where :attr:`keeps_meta`)."""


class MemoryStore(Store):
    """Entries in process memory, bounded by ``max_entries`` (per sink queue entries, all sinks together)."""

    def __init__(self, max_entries: int = 100_000, max_dead: int = 10_000) -> None:
        self.max_entries = max_entries
        self._lock = threading.Lock()
        self._ready: dict[str, deque[Entry]] = {}
        self._delayed: dict[str, list[tuple[float, int, Entry]]] = {}
        self._leased: dict[str, dict[int, Entry]] = {}
        self._count = 0
        self._keys = itertools.count(1)
        self.dead_letters: deque[DeadLetter] = deque(maxlen=max_dead)

    def _queues(self, sink: str) -> tuple[deque[Entry], list[tuple[float, int, Entry]], dict[int, Entry]]:
        ready = self._ready.get(sink)
        if ready is None:
            ready = self._ready[sink] = deque()
            self._delayed[sink] = []
            self._leased[sink] = {}
        return ready, self._delayed[sink], self._leased[sink]

    def add(self, sinks: Sequence[str], records: Sequence[UsageRecord]) -> None:
        with self._lock:
            if self._count + len(sinks) * len(records) > self.max_entries:
                raise StoreFull(f"memory store holds {self._count} of {self.max_entries} entries")
            for sink in sinks:
                ready = self._queues(sink)[0]
                ready.extend(Entry(next(self._keys), r) for r in records)
            self._count += len(sinks) * len(records)

    def lease(self, sink: str, limit: int, now: float) -> list[Entry]:
        with self._lock:
            ready, delayed, leased = self._queues(sink)
            while delayed and delayed[0][0] <= now:
                ready.append(heapq.heappop(delayed)[2])
            out: list[Entry] = []
            while ready and len(out) < limit:
                entry = ready.popleft()
                leased[entry.key] = entry
                out.append(entry)
            return out

    def ack(self, sink: str, entries: Sequence[Entry]) -> None:
        with self._lock:
            leased = self._queues(sink)[2]
            for entry in entries:
                if leased.pop(entry.key, None) is not None:
                    self._count -= 1

    def retry(self, sink: str, entries: Sequence[Entry]) -> None:
        with self._lock:
            _, delayed, leased = self._queues(sink)
            for entry in entries:
                if leased.pop(entry.key, None) is not None:
                    heapq.heappush(delayed, (entry.not_before, entry.key, entry))

    def dead(self, sink: str, entries: Sequence[Entry], reasons: Sequence[str], now: float) -> None:
        with self._lock:
            leased = self._queues(sink)[2]
            for entry, reason in zip(entries, reasons, strict=False):
                if leased.pop(entry.key, None) is not None:
                    self._count -= 1
                    self.dead_letters.append(DeadLetter(sink, entry.record, reason, now))

    def pending(self, sink: Optional[str] = None, *, mine: bool = False) -> int:
        with self._lock:
            sinks = [sink] if sink is not None else list(self._ready)
            return sum(
                len(self._ready.get(s, ())) + len(self._delayed.get(s, ())) + len(self._leased.get(s, {}))
                for s in sinks
            )

    def has_pending(self) -> bool:
        return self.pending() > 0

    def next_due(self, sink: str) -> Optional[float]:
        with self._lock:
            ready, delayed, _ = self._queues(sink)
            if ready:
                return 0.0
            return delayed[0][0] if delayed else None

    def drain(self) -> list[tuple[str, Entry]]:
        """Take every unacknowledged entry out (to spill it to disk at shutdown)."""
        with self._lock:
            out = [(s, e) for s, q in self._ready.items() for e in q]
            out += [(s, item[2]) for s, heap in self._delayed.items() for item in heap]
            out += [(s, e) for s, leased in self._leased.items() for e in leased.values()]
            for q in self._ready.values():
                q.clear()
            for heap in self._delayed.values():
                heap.clear()
            for leased in self._leased.values():
                leased.clear()
            self._count = 0
            return out


class SpillingStore(Store):
    """Memory first; what does not fit spills to a spool on disk (durability ``"memory"``).

    The spool is opened on first spill, or at start when one is already on
    disk (records a previous process left there are then delivered too).
    """

    def __init__(
        self, memory: MemoryStore, open_spill: Callable[[], Optional[Store]], *, adopt: bool
    ) -> None:
        self.memory = memory
        self._open_spill = open_spill
        self._spill: Optional[Store] = open_spill() if adopt else None
        self._tried = adopt
        self._lock = threading.Lock()

    def disk(self) -> Optional[Store]:
        with self._lock:
            if self._spill is None and not self._tried:
                self._tried = True
                self._spill = self._open_spill()
            return self._spill

    def add(self, sinks: Sequence[str], records: Sequence[UsageRecord]) -> None:
        try:
            self.memory.add(sinks, records)
        except StoreFull:
            spill = self.disk()
            if spill is None:
                raise
            spill.add(sinks, records)

    def lease(self, sink: str, limit: int, now: float) -> list[Entry]:
        entries = self.memory.lease(sink, limit, now)
        for entry in entries:
            entry.tier = self.memory
        spill = self._spill
        if spill is not None and len(entries) < limit:
            more = spill.lease(sink, limit - len(entries), now)
            for entry in more:
                entry.tier = spill
            entries.extend(more)
        return entries

    def _by_tier(self, entries: Sequence[Entry]) -> list[tuple[Store, list[Entry]]]:
        groups: dict[int, tuple[Store, list[Entry]]] = {}
        for entry in entries:
            tier = entry.tier if entry.tier is not None else self.memory
            groups.setdefault(id(tier), (tier, []))[1].append(entry)
        return list(groups.values())

    def ack(self, sink: str, entries: Sequence[Entry]) -> None:
        for tier, group in self._by_tier(entries):
            tier.ack(sink, group)

    def retry(self, sink: str, entries: Sequence[Entry]) -> None:
        for tier, group in self._by_tier(entries):
            tier.retry(sink, group)

    def dead(self, sink: str, entries: Sequence[Entry], reasons: Sequence[str], now: float) -> None:
        why = {id(e): r for e, r in zip(entries, reasons, strict=False)}
        for tier, group in self._by_tier(entries):
            tier.dead(sink, group, [why[id(e)] for e in group], now)

    def pending(self, sink: Optional[str] = None, *, mine: bool = False) -> int:
        spill = self._spill
        return self.memory.pending(sink) + (spill.pending(sink, mine=mine) if spill is not None else 0)

    def has_pending(self) -> bool:
        spill = self._spill
        return self.memory.has_pending() or (spill is not None and spill.has_pending())

    def next_due(self, sink: str) -> Optional[float]:
        dues = [
            d
            for d in (self.memory.next_due(sink), self._spill.next_due(sink) if self._spill else None)
            if d is not None
        ]
        return min(dues) if dues else None

    def drain(self) -> list[tuple[str, Entry]]:
        return self.memory.drain()

    def close(self) -> None:
        if self._spill is not None:
            self._spill.close()
