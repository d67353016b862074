"""From capture to acknowledgement.

capture (caller's thread: append to a bounded buffer, nothing else)
  -> intake thread (every ``commit_interval``: build and price records,
     group-commit them to the store: the spool on disk, or memory)
  -> one worker thread per sink (lease due entries, send a batch, ack /
     retry with backoff / dead-letter each event by its outcome).

Durability ``"spool"`` loses at most one commit interval on SIGKILL;
``"sync"`` commits on the caller's thread before the call returns;
``"memory"`` keeps records in memory and spills what does not fit (and
what is left at exit) to the spool.
"""

from __future__ import annotations

import logging
import os
import threading
import time
import weakref
from collections.abc import Sequence
from typing import Optional, Union, cast

from .. import _stats
from .._log import internal_error, log, log_once
from .._record import UsageRecord
from ..sinks.base import BaseSink, Sink, as_sink
from .backoff import Backoff
from .buffer import CaptureBuffer
from .intake import Captured, record_of

# the warm-up's imports and delays a new process's first commit
from .settings import DURABILITY, FlushResult, Settings, default_spool_path
from .spool import open_spool  # loaded with usagetap: a lazy import on the intake thread waits behind
from .store import MemoryStore, SpillingStore, SpoolUnavailable, Store, StoreFull
from .warmup import is_warm, warm
from .worker import SinkWorker, batch_limit

__all__ = ["DURABILITY", "FlushResult", "Pipeline", "Settings", "default_spool_path"]


_COMMIT_CHUNK = 5000
_CLOSE_WAIT = 1.0  # seconds shutdown() waits for a commit in progress before closing the store
_STOP_GRACE = 0.2  # seconds shutdown waits for threads past its deadline: an idle one stops at once


_pipelines: weakref.WeakSet[Pipeline] = weakref.WeakSet()
_inherited: list[object] = []


def _sink_keys(sinks: Sequence[Sink]) -> list[str]:
    keys: list[str] = []
    for sink in sinks:
        key = sink.name
        n = 2
        while key in keys:
            key = f"{sink.name}-{n}"
            n += 1
        keys.append(key)
    return keys


class Pipeline:
    """Deliver records to ``sinks`` (each with its own acknowledgements) in the background."""

    def __init__(self, sinks: Union[Sink, Sequence[Sink]], settings: Optional[Settings] = None) -> None:
        self.sinks: list[Sink] = list(sinks) if isinstance(sinks, (list, tuple)) else [cast(Sink, sinks)]
        if not self.sinks:
            raise ValueError("at least one sink is needed")
        self.settings = settings or Settings()
        if self.settings.durability not in DURABILITY:
            raise ValueError(f"durability must be one of {', '.join(DURABILITY)}")
        self.keys = _sink_keys(self.sinks)
        # the sinks as delivery reads them: every optional member with its default
        self.adapted: list[BaseSink] = [as_sink(sink) for sink in self.sinks]
        self.closed = False
        self._backoff: Optional[Backoff] = None
        self._init_state()
        _pipelines.add(self)

    def _init_state(self) -> None:
        s = self.settings
        self.buffer = CaptureBuffer(
            max_items=s.max_queue,
            max_bytes=s.max_queue_bytes,
            overflow=s.overflow,
            block_timeout=s.block_timeout,
        )
        self.store: Optional[Store] = None
        self.workers: list[SinkWorker] = []
        self.fallback = False
        self._held: list[UsageRecord] = []
        self._wake = threading.Event()
        self._cond = threading.Condition()
        self._start_lock = threading.Lock()
        self._store_lock = threading.Lock()
        self._transit = 0
        self._store_closed = False
        self._keep_open: tuple[Sink, ...] = ()
        self._successor: Optional[Pipeline] = None
        self._predecessor: Optional[Pipeline] = None  # replaced, still closing: its rows are ours next
        self._closed_event = threading.Event()
        self._stopping = False
        self._thread: Optional[threading.Thread] = None
        self._pid = os.getpid()

    # -- caller's thread -------------------------------------------------

    def submit(self, item: Captured) -> None:
        """Queue a record (or a capture that becomes one). Never raises; no I/O unless durability is sync."""
        if self.closed:
            _stats.incr("dropped.after_shutdown")
            log_once(logging.WARNING, "submit-after-shutdown", "usagetap: record after shutdown() dropped")
            return
        if self._pid != os.getpid():
            self._after_fork()
        if self.settings.durability == "sync":
            self._commit_sync(item)
            return
        queued = self.buffer.put(item)
        if not queued:
            self._drop([item], "queue_full")
            return
        if self._thread is None:
            self._start()
        if queued >= _COMMIT_CHUNK and not self._wake.is_set():  # set() takes a lock
            self._wake.set()

    def _commit_sync(self, item: Captured) -> None:
        record = record_of(item, price=is_warm())
        if record is None:
            return
        with self._store_lock:
            self._ensure_store()
            self._store([record])
        if self._thread is None:
            self._start()

    def _drop(self, items: Sequence[Captured], reason: str) -> None:
        _stats.incr(f"dropped.{reason}", len(items))
        log_once(
            logging.WARNING,
            f"drop:{reason}",
            "usagetap: dropping usage records (%s); see usagetap.stats() for counts",
            reason,
        )
        on_drop = self.settings.on_drop
        if on_drop is None:
            return
        for item in items:
            try:
                on_drop(record_of(item, price=False), reason)
            except Exception as exc:
                internal_error("on_drop", exc)

    def resume(self, *, wait: bool = True) -> None:
        """Start delivering at once when a spool from an earlier run is on disk (not on first capture).

        With ``wait``, the spool is opened here, on the caller's thread, so that ``pending()`` counts
        what an earlier process left from now on; else the intake thread opens it.
        """
        if not os.path.exists(self.settings.spool_path) or self.closed:
            return
        if self._pid != os.getpid():
            self._after_fork()
        if not wait:
            self._start()
            return
        if self.store is None:
            try:
                with self._store_lock:
                    self._ensure_store()
            except Exception as exc:
                internal_error("resume", exc)
        if self.settings.durability != "sync" or self.pending():
            self._start()

    # -- threads -------------------------------------------------------------

    def _start(self) -> None:
        with self._start_lock:
            if self._thread is None and not self.closed:
                self._thread = threading.Thread(target=self._intake, name="usagetap-intake", daemon=True)
                self._thread.start()

    def _ensure_store(self) -> Store:
        if self.store is not None:
            return self.store
        s = self.settings
        if self._backoff is None:
            self._backoff = Backoff()
        if s.durability == "memory":
            self.store = SpillingStore(
                MemoryStore(s.max_queue), self._open_spill, adopt=os.path.exists(s.spool_path)
            )
        else:
            try:
                self.store = open_spool(
                    s.spool_path,
                    max_bytes=s.max_spool_bytes,
                    lease_seconds=s.lease_seconds,
                    hot_limit=s.max_queue,
                    chunks=self._chunks(),
                )
            except SpoolUnavailable as exc:
                self._fall_back(exc)
        assert self.store is not None
        for sink, key in zip(self.adapted, self.keys, strict=False):
            worker = SinkWorker(
                sink,
                key,
                self.store,
                batch_size=s.batch_size,
                flush_interval=s.flush_interval,
                backoff=self._backoff,
                on_batch_done=self._notify,
            )
            if sink.unavailable:
                worker.hold(sink.unavailable)
            self.workers.append(worker)
            worker.start()
        return self.store

    def _chunks(self) -> dict[str, int]:
        """Records per spool row for each sink: its batch, so a row is leased and acknowledged whole."""
        return {
            key: batch_limit(sink, self.settings.batch_size)
            for sink, key in zip(self.adapted, self.keys, strict=False)
        }

    def _open_spill(self) -> Optional[Store]:

        s = self.settings
        try:
            return open_spool(  # memory is full when it spills: spilled rows wait on disk only
                s.spool_path,
                max_bytes=s.max_spool_bytes,
                lease_seconds=s.lease_seconds,
                hot_limit=0,
                chunks=self._chunks(),
            )
        except SpoolUnavailable as exc:
            log_once(logging.WARNING, "spill-unavailable", "usagetap: cannot spill to disk: %s", exc)
            return None

    def _fall_back(self, exc: Exception) -> None:
        """The spool cannot be used: keep going in memory, loudly."""
        log.error(
            "usagetap: %s. Usage records are kept in memory only (bounded, lost if the process dies) "
            "until the spool is writable and the process restarts.",
            exc,
        )
        _stats.incr("spool_failures")
        self.fallback = True
        memory = MemoryStore(self.settings.max_queue)
        if self.store is not None:
            for worker in self.workers:
                worker.store = memory
        self.store = memory

    def _notify(self) -> None:
        with self._cond:
            self._cond.notify_all()

    def _intake(self) -> None:
        # the store first: records are committed from the first interval on, unpriced while
        # genai-prices is still being imported (the sink's worker prices them before sending)
        try:
            with self._store_lock:
                self._ensure_store()
        except Exception as exc:
            internal_error("intake.open", exc)
            self._fall_back(exc)
        warm()
        while True:
            self._wake.wait(self.settings.commit_interval)
            self._wake.clear()
            try:
                self._commit()
            except Exception as exc:
                internal_error("intake", exc)
            if self._stopping:
                return

    def _commit(self) -> None:
        """Move everything buffered into the store, in chunks, one transaction each."""
        try:
            while True:
                if self._held:
                    records, self._held = self._held, []
                else:
                    with self._cond:
                        items = self.buffer.take(_COMMIT_CHUNK)
                        self._transit = len(items)
                    if not items:
                        return
                    price = is_warm()
                    records = [r for r in (record_of(i, price=price) for i in items) if r is not None]
                with self._store_lock:
                    stored = self._store(records)
                with self._cond:
                    self._transit = 0
                if not stored:
                    return
        finally:
            with self._cond:
                self._transit = 0
                self._cond.notify_all()

    def _store(self, records: list[UsageRecord]) -> bool:
        """Add records to the store; False when they must wait (store full under the block policy)."""
        if self._store_closed:  # a commit that outlived shutdown()
            self._pass_on(records)
            return True
        store = self._ensure_store()
        try:
            store.add(self.keys, records)
        except StoreFull:
            if self.settings.overflow == "block":
                self._held = records
                return False
            self._drop(records, "spool_full")
            return True
        except SpoolUnavailable as exc:
            self._fall_back(exc)
            return self._store(records)
        if store.durable:
            _stats.incr("spooled", len(records))
        for worker in self.workers:
            worker.added(len(records))
        return True

    # -- flush and shutdown ------------------------------------------------

    def persist(self, timeout: float = 1.0) -> None:
        """Commit what is buffered to the store now, waiting at most ``timeout`` seconds."""
        if self._thread is None or self.closed:
            return
        deadline = time.monotonic() + timeout
        self._wake.set()
        with self._cond:
            while len(self.buffer) or self._transit:
                left = deadline - time.monotonic()
                if left <= 0:
                    return
                self._wake.set()
                self._cond.wait(min(left, 0.05))

    def pending(self) -> int:
        """Records captured by this process and not yet acknowledged by every sink."""
        store = self.store
        with self._cond:
            held = len(self.buffer) + self._transit + len(self._held)
        if store is None:
            return held
        try:
            stored = store.pending(mine=True)
        except Exception:
            stored = 0
        return held + stored

    def _anything_pending(self) -> bool:
        """``pending() > 0`` without counting a spool's rows (flush asks after every batch)."""
        with self._cond:
            if len(self.buffer) or self._transit or self._held:
                return True
        store = self.store
        if store is None:
            return False
        try:
            return store.has_pending()
        except Exception:
            return False

    def _waiting_only_on_stuck(self, *, paused: bool) -> bool:
        """Whether all that is pending waits for sinks that are halted (or, with ``paused``, pausing)."""
        stuck = {w.key for w in self.workers if w.stuck(paused=paused)}
        if not stuck:
            return False
        with self._cond:
            if len(self.buffer) or self._transit or self._held:
                return False
        store = self.store
        if store is None:
            return False
        try:
            return not any(store.pending(key, mine=True) for key in self.keys if key not in stuck)
        except Exception:
            return False

    def halted(self) -> int:
        """How many sinks have their delivery halted (a rejected key, a sink that could not be built)."""
        unbuilt = {key for sink, key in zip(self.adapted, self.keys, strict=False) if sink.unavailable}
        return len(unbuilt | {w.key for w in self.workers if w.halted})

    def adopt(self) -> None:
        """Take over what an earlier pipeline of this process left in the spool, and deliver it."""
        if self.closed:
            return
        with self._store_lock:
            if self.store is None and os.path.exists(self.settings.spool_path):
                try:
                    self._ensure_store()  # opening the spool adopts those rows
                except Exception as exc:
                    internal_error("adopt.open", exc)
            store = self.store
            if store is not None and (store.durable or os.path.exists(self.settings.spool_path)):
                disk = store.disk()
                if disk is not None:
                    disk.adopt()
        self.resume()
        for worker in self.workers:
            worker.wake.set()

    def _await_predecessor(self, deadline: Optional[float]) -> None:
        """Wait (until ``deadline``) for the pipeline this one replaced to close, then adopt what it
        left: its worker may still have been sending when it was replaced."""
        predecessor = self._predecessor
        if predecessor is None:
            return
        wait = None if deadline is None else max(0.0, deadline - time.monotonic())
        if predecessor._closed_event.wait(wait):
            self._predecessor = None
            self.adopt()

    def _totals(self) -> tuple[int, int]:
        return sum(w.sent for w in self.workers), sum(w.dead for w in self.workers)

    def flush(self, timeout: Optional[float] = 5.0, *, skip_paused: bool = False) -> FlushResult:
        """Deliver what this process captured, waiting at most ``timeout`` seconds (None: no limit).

        It stops waiting early when what is left waits for halted sinks only (with ``skip_paused``,
        for sinks pausing after a 429 too): they keep it, pending, for later.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        sent0, dead0 = self._totals()
        if self._pid != os.getpid():
            self._after_fork()
        if self.store is None and (self._thread is not None or os.path.exists(self.settings.spool_path)):
            try:
                with self._store_lock:
                    self._ensure_store()  # count what an earlier run left on disk as pending too
            except Exception as exc:
                internal_error("flush.open", exc)
        self._await_predecessor(deadline)
        if self.pending() and self._thread is None:
            self._start()

        def remaining() -> Optional[float]:
            return None if deadline is None else deadline - time.monotonic()

        while True:
            self._wake.set()
            for worker in self.workers:
                worker.wake.set()
            if not self._anything_pending():
                break
            if self._waiting_only_on_stuck(paused=skip_paused):
                break
            left = remaining()
            if left is not None and left <= 0:
                break
            with self._cond:
                self._cond.wait(0.05 if left is None else max(0.0, min(left, 0.05)))
        sent, dead = self._totals()
        return FlushResult(sent=sent - sent0, pending=self.pending(), dead=dead - dead0)

    def shutdown(
        self,
        timeout: Optional[float] = 5.0,
        *,
        keep_open: Sequence[Sink] = (),
        skip_paused: bool = False,
        successor: Optional[Pipeline] = None,
    ) -> FlushResult:
        """Flush within ``timeout`` (one deadline), stop the threads, keep what is left on disk.

        When a new pipeline replaces this one: sinks in ``keep_open`` (the new one's) are not
        closed, and records still waiting in the buffer go to ``successor``.
        """
        if self.closed:
            return FlushResult(sent=0, pending=0, dead=0)
        started = time.monotonic()
        result = self.flush(timeout, skip_paused=skip_paused)
        self._keep_open = tuple(keep_open)
        self.closed = True
        self._stopping = True
        self._wake.set()
        for worker in self.workers:
            worker.stop()
        grace = time.monotonic() + (  # at least _STOP_GRACE: idle threads stop at once, busy ones are left
            0.5 if timeout is None else max(_STOP_GRACE, min(0.5, timeout - (time.monotonic() - started)))
        )
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(max(0.0, grace - time.monotonic()))
        for worker in self.workers:  # a worker stuck in a send (a black-holed backend) is left behind
            worker.join(max(0.0, grace - time.monotonic()))
        if successor is not None:
            self._successor = successor
            successor._predecessor = self
            self._hand_over(successor)
        kept = self._keep_leftovers()
        behind = [t for t in self._threads() if t.is_alive() and t is not threading.current_thread()]
        if behind:  # the store and sinks close once they are done with them, never under them
            threading.Thread(
                target=self._close_after, args=(behind,), name="usagetap-close", daemon=True
            ).start()
        else:
            self._close()
        self._report(result, kept)
        return result

    def _threads(self) -> list[threading.Thread]:
        threads = [w._thread for w in self.workers if w._thread is not None]
        return threads + ([self._thread] if self._thread is not None else [])

    def _close_after(self, threads: list[threading.Thread]) -> None:
        for thread in threads:
            thread.join()
        self._close()
        successor = self._successor
        if successor is not None:  # the rows this pipeline leased until now are the successor's
            successor.adopt()

    def _close(self) -> None:
        """Close the sinks and the store (its rows become the next pipeline's, or the next process's)."""
        for given, sink in zip(self.sinks, self.adapted, strict=False):
            if any(given is other for other in self._keep_open):
                continue
            try:
                sink.close()
            except Exception as exc:
                internal_error("sink.close", exc)
        # a commit in progress ends first (within a bound: never hang); later ones go to the successor
        locked = self._store_lock.acquire(timeout=_CLOSE_WAIT)
        try:
            self._store_closed = True
            if self.store is not None:
                try:
                    self.store.close()
                except Exception as exc:
                    internal_error("store.close", exc)
        finally:
            if locked:
                self._store_lock.release()
            self._closed_event.set()

    def _hand_over(self, successor: Pipeline) -> None:
        """Give records not yet committed to a store to the pipeline that replaces this one."""
        with self._cond:
            items: list[Captured] = [*self._held, *self.buffer.take(len(self.buffer))]
            self._held = []
        for item in items:
            successor.submit(item)

    def _pass_on(self, records: list[UsageRecord]) -> None:
        successor = self._successor
        if successor is None:
            _stats.incr("dropped.shutdown", len(records))
            log.warning(
                "usagetap: %d usage records not delivered at shutdown and not kept on disk", len(records)
            )
            return
        for record in records:
            successor.submit(record)

    def _keep_leftovers(self) -> int:
        """Spill what memory still holds to the spool; return how many records stay on disk."""
        store = self.store
        lost = len(self.buffer) + len(self._held)
        items = store.drain() if store is not None else []
        if store is not None and items:
            disk = store.disk()
            if disk is not None:
                try:
                    disk.keep_entries(items)
                except Exception as exc:
                    internal_error("spill", exc)
                    lost += len(items)
            else:
                lost += len(items)
        if lost:
            _stats.incr("dropped.shutdown", lost)
            log.warning("usagetap: %d usage records not delivered at shutdown and not kept on disk", lost)
        try:
            on_disk = self.pending()
        except Exception:
            on_disk = 0
        return on_disk

    def _report(self, result: FlushResult, kept: int) -> None:
        if kept:
            log.warning(
                "usagetap: %d usage records not yet delivered are kept in %s for the next start",
                kept,
                self.settings.spool_path,
            )
        counts = _stats.snapshot()
        dropped = {k: v for k, v in counts.items() if k.startswith("dropped.") and v}
        if dropped or counts.get("dead"):
            log.warning("usagetap: at shutdown: dead=%d dropped=%s", counts.get("dead", 0), dropped or {})

    # -- fork --------------------------------------------------------------

    def _after_fork(self) -> None:
        """In a forked child: fresh locks, queue, threads, connections; the parent keeps its records."""
        if self.store is not None:
            _inherited.append(self.store)  # never close the parent's SQLite connection from the child
        self._init_state()
        for sink in self.adapted:
            try:
                sink.after_fork()
            except Exception as exc:
                internal_error("sink.after_fork", exc)


def _reinit_after_fork() -> None:
    for pipeline in list(_pipelines):
        try:
            if pipeline._pid != os.getpid():
                pipeline._after_fork()
        except Exception:  # pragma: no cover - never break the child
            pass


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reinit_after_fork)
