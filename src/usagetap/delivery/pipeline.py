"""The background path from capture to a sink: an in-memory queue drained by one worker thread.

``submit()`` runs on the caller's thread and only appends to a deque; the
worker prices records, sends them to the sink in batches and acts on each
event's outcome.
"""

from __future__ import annotations

import collections
import logging
import os
import threading
import time
from dataclasses import dataclass
from typing import Optional, Protocol, Union

from .. import _stats
from .._log import internal_error, log, log_once
from ..pricing import price_record
from ..record import UsageRecord
from ..sinks.base import Outcomes, Sink

__all__ = ["FlushResult", "Item", "Pending", "Pipeline"]


class Pending(Protocol):
    """A captured call; it becomes a :class:`UsageRecord` (or None) off the caller's thread."""

    def materialize(self) -> Optional[UsageRecord]: ...


Item = Union[UsageRecord, Pending]


@dataclass(frozen=True)
class FlushResult:
    """What a flush achieved: events ``sent`` and ``dead`` while it ran, ``pending`` when it returned."""

    sent: int
    pending: int
    dead: int

    def __bool__(self) -> bool:
        return self.pending == 0


def _materialize(item: Item) -> Optional[UsageRecord]:
    return item if isinstance(item, UsageRecord) else item.materialize()


class Pipeline:
    """Queue records and deliver them to ``sink`` from a background thread."""

    def __init__(self, sink: Sink, *, batch_size: int = 500, flush_interval: float = 1.0) -> None:
        self.sink = sink
        self.batch_size = max(1, min(batch_size, getattr(sink, "max_batch", batch_size) or batch_size))
        self.flush_interval = flush_interval
        self._queue: collections.deque[Item] = collections.deque()
        self._wake = threading.Event()
        self._cond = threading.Condition()
        self._inflight = 0
        self._sent = 0
        self._dead = 0
        self._flushes = 0
        self._closed = False
        self._stopped = False
        self._thread: Optional[threading.Thread] = None
        self._pid = os.getpid()
        self._start_lock = threading.Lock()

    # -- caller's thread -------------------------------------------------

    def submit(self, record: Item) -> None:
        """Queue a record (or a pending capture) for delivery. Never blocks on I/O."""
        if self._closed:
            _stats.incr("dropped.after_shutdown")
            log_once(logging.WARNING, "submit-after-shutdown", "usagetap: record after shutdown() dropped")
            return
        self._queue.append(record)
        if self._thread is None or self._pid != os.getpid():
            self._start()
        if len(self._queue) >= self.batch_size:
            self._wake.set()

    def _start(self) -> None:
        with self._start_lock:
            if self._pid != os.getpid():
                self._pid = os.getpid()
                self._thread = None
            if self._thread is not None:
                return
            self._thread = threading.Thread(target=self._run, name="usagetap-delivery", daemon=True)
            self._thread.start()

    # -- worker thread -----------------------------------------------------

    def _run(self) -> None:
        while True:
            self._wake.wait(self.flush_interval)
            self._wake.clear()
            self._drain()
            if self._stopped or (self._closed and not self._queue):
                return

    def _drain(self) -> None:
        while self._queue and not self._stopped:
            items: list[Item] = []
            with self._cond:
                while self._queue and len(items) < self.batch_size:
                    items.append(self._queue.popleft())
                self._inflight = len(items)
            try:
                batch = [r for r in map(_materialize, items) if r is not None]
                if batch:
                    self._settle(batch, self._send(batch))
            finally:
                with self._cond:
                    self._inflight = 0
                    self._cond.notify_all()

    def _send(self, batch: list[UsageRecord]) -> Outcomes:
        for record in batch:
            try:
                price_record(record)
            except Exception as exc:
                internal_error("pricing", exc)
        try:
            return self.sink.send(batch)
        except Exception as exc:
            log_once(
                logging.WARNING,
                f"sink-error:{self.sink.name}:{type(exc).__name__}",
                "usagetap: sink %s failed (%s); will retry",
                self.sink.name,
                type(exc).__name__,
            )
            return Outcomes.all_retry(batch, retry_after=1.0)

    def _settle(self, batch: list[UsageRecord], outcomes: Outcomes) -> None:
        by_id = {r.event_id: r for r in batch}
        with self._cond:
            self._sent += len(outcomes.delivered)
            self._dead += len(outcomes.dead)
        _stats.incr("sent", len(outcomes.delivered))
        if outcomes.duplicates:
            _stats.incr("duplicate", outcomes.duplicates)
        if outcomes.dead:
            _stats.incr("dead", len(outcomes.dead))
            for event_id, reason in outcomes.dead.items():
                log.warning("usagetap: event %s dead-lettered by %s: %s", event_id, self.sink.name, reason)
        retry = [by_id[i] for i in outcomes.retry if i in by_id]
        if retry:
            _stats.incr("retried", len(retry))
            with self._cond:
                self._queue.extendleft(reversed(retry))
            if not self._closed:
                self._sleep(outcomes.retry_after or 1.0)

    def _sleep(self, seconds: float) -> None:
        with self._cond:
            self._cond.wait_for(lambda: self._closed or self._flushes > 0, timeout=seconds)

    # -- lifecycle -------------------------------------------------------

    def pending(self) -> int:
        return len(self._queue) + self._inflight

    def flush(self, timeout: Optional[float] = 5.0) -> FlushResult:
        """Deliver what is queued; wait at most ``timeout`` seconds (None: no limit)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            sent0, dead0 = self._sent, self._dead
            self._flushes += 1
        try:
            if self.pending():
                if self._thread is None or self._pid != os.getpid():
                    self._start()
                self._wake.set()
                with self._cond:
                    self._cond.notify_all()
                    while self.pending():
                        remaining = None if deadline is None else deadline - time.monotonic()
                        if remaining is not None and remaining <= 0:
                            break
                        self._cond.wait(remaining if remaining is None else min(remaining, 0.05))
                        self._wake.set()
        finally:
            with self._cond:
                self._flushes -= 1
        with self._cond:
            return FlushResult(sent=self._sent - sent0, pending=self.pending(), dead=self._dead - dead0)

    def shutdown(self, timeout: Optional[float] = 5.0) -> FlushResult:
        """Flush within ``timeout``, stop the worker and close the sink. Idempotent."""
        if self._closed:
            return FlushResult(sent=0, pending=self.pending(), dead=0)
        result = self.flush(timeout)
        self._closed = True
        self._stopped = True
        self._wake.set()
        with self._cond:
            self._cond.notify_all()
        if self._thread is not None and self._thread.is_alive() and not result.pending:
            self._thread.join(timeout=1.0)
        if result.pending:
            _stats.incr("dropped.shutdown", result.pending)
            log.warning("usagetap: %d usage records not delivered at shutdown", result.pending)
        try:
            self.sink.close()
        except Exception as exc:
            internal_error("sink.close", exc)
        return result
