"""One delivery thread per sink: lease due entries, send them, act on each event's outcome.

A failing sink never kills its worker: a transient exception from ``send()``
(a connection error, a timeout) means "retry every event of the batch", logged
once per kind; any other exception, like a batch the backend refuses as a
whole, is bisected down to the event(s) at fault, which are dead-lettered
with the reason. A 413 teaches the worker the batch size its backend takes.
A 429 (any answer with Retry-After) pauses the whole sink, so batches don't
storm; an auth failure (``halt``) pauses it longer and keeps every event.
A sink with ``max_in_flight`` > 1 gets that many batches at once, so one
slow answer does not hold up the others.

On a spool, each worker also keeps its counters and last error in the
spool's ``meta`` table (key ``sink:<key>``), for ``usagetap status``: written
from this thread only, when they changed, at most once a second (at once
for an error with a new reason).
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
import logging
import math
import os
import queue
import threading
import time
from collections.abc import Callable, Sequence
from typing import Optional

from .. import _stats
from .._cost import price_record
from .._log import internal_error, log, log_once
from .._record import MAX_TOKENS, TOKEN_FIELDS, UsageRecord
from ..sinks.base import BaseSink, Outcomes, Sink, as_sink
from .backoff import Backoff
from .decision import Action, decide
from .failures import exception_reason, is_transient
from .sizing import BatchSizes
from .store import Entry, Store
from .warmup import guarded, wait

__all__ = ["COUNTERS", "SinkWorker", "batch_limit", "in_flight_limit", "send_bisecting", "status_key"]

HALT_PAUSE = 60.0
# counter in the spool's meta -> the worker attribute it sums; "delivered" includes duplicates
COUNTERS = {"delivered": "sent", "duplicates": "duplicates", "retried": "retried", "dead": "dead"}


def batch_limit(sink: BaseSink, batch_size: int) -> int:
    """Records per batch for ``sink``: ``batch_size``, at most the sink's ``max_batch``."""
    return max(1, min(batch_size, sink.max_batch or batch_size))


def status_key(sink_key: str) -> str:
    """The spool ``meta`` key under which the worker of ``sink_key`` keeps its status."""
    return f"sink:{sink_key}"


def in_flight_limit(sink: BaseSink) -> int:
    """Batches sent to ``sink`` at once: its ``max_in_flight`` (1, in order, by default)."""
    return max(1, sink.max_in_flight)


def _out_of_range(record: UsageRecord, sink: str) -> Optional[str]:
    """Why ``record`` cannot be sent: a count outside ``0..MAX_TOKENS``; None when it can."""
    for name in TOKEN_FIELDS:
        value = getattr(record, name)
        if not 0 <= value <= MAX_TOKENS:
            return f"{sink}: {name} {value} is outside 0..{MAX_TOKENS}; no backend bills it"
    return None


def send_bisecting(
    sink: BaseSink,
    records: list[UsageRecord],
    on_error: Callable[[str, str], None],
    sizes: Optional[BatchSizes] = None,
) -> Outcomes:
    """One ``sink.send()``; the events of a batch the backend refuses as a whole (``SPLIT`` in
    :func:`~usagetap.delivery.decision.decide`) are bisected down to the event at fault, which is
    dead-lettered with the backend's reason; events it delivered or dead-lettered are not resent.

    A transient exception from the sink (see :mod:`.failures`) means "retry every event"; it, and a
    backend asking to retry, are reported as ``on_error(kind, reason)``. Any other exception refuses
    the batch as a whole, with the exception as reason. ``sizes`` learns from 413 answers: a batch
    refused as too large is resent in parts of a size known to fit, never again at a size refused.
    """
    unsendable = {r.event_id: why for r in records if (why := _out_of_range(r, sink.name)) is not None}
    if unsendable:  # a record no backend can bill (from a spool an older version wrote): dead at once
        rest = [r for r in records if r.event_id not in unsendable]
        sent = send_bisecting(sink, rest, on_error, sizes) if rest else Outcomes()
        return sent.merge(Outcomes(dead=unsendable))
    if sizes is not None and len(records) > 1 and sizes.known_too_large(len(records)):
        return _in_parts(sink, records, -(-len(records) // sizes.safe_size()), on_error, sizes)
    try:
        outcomes = sink.send(records)
    except Exception as exc:
        if is_transient(exc):
            on_error(type(exc).__name__, exception_reason(exc))
            return Outcomes.all_retry(records)
        outcomes = Outcomes.split_batch(records, exception_reason(exc, sink.name))
    if sizes is not None:
        if outcomes.too_large:
            sizes.was_refused(len(records))
        elif outcomes.delivered or outcomes.dead or outcomes.split:
            sizes.was_taken(len(records))
    if outcomes.retry and not outcomes.halt and not outcomes.split:
        count = len(outcomes.retry)
        reason = outcomes.retry_reason
        on_error(
            "retry",
            f"{reason}; retrying {count} event(s)"
            if reason
            else f"the backend asked to retry {count} event(s)",
        )
    if not outcomes.split or outcomes.halt:
        return outcomes
    decision = decide(outcomes, [r.event_id for r in records])
    refused = [r for r in records if decision.actions[r.event_id] is Action.SPLIT]
    if not refused:  # the only event refused with its batch: dead, with the refusal's reason
        dead = decision.of(Action.DEAD)
        return dataclasses.replace(
            outcomes,
            retry=[i for i in outcomes.retry if i not in dead],
            dead=decision.reasons,
            split=None,
            too_large=False,
        )
    parts = 2
    if decision.too_large and sizes is not None:
        parts = max(parts, -(-len(refused) // sizes.safe_size()))
    answered = Outcomes(
        delivered=decision.of(Action.ACK), dead=decision.reasons, duplicates=outcomes.duplicates
    )
    return answered.merge(_in_parts(sink, refused, parts, on_error, sizes))


def _in_parts(
    sink: BaseSink,
    records: list[UsageRecord],
    parts: int,
    on_error: Callable[[str, str], None],
    sizes: Optional[BatchSizes],
) -> Outcomes:
    """``records`` sent in ``parts`` (at least 2) of even size, their outcomes merged."""
    n = len(records)
    parts = max(2, min(parts, n))
    bounds = [i * n // parts for i in range(parts + 1)]
    return functools.reduce(
        Outcomes.merge,
        (send_bisecting(sink, records[a:b], on_error, sizes) for a, b in itertools.pairwise(bounds)),
    )


def _price(records: list[UsageRecord]) -> None:
    """Price the records committed before genai-prices was imported (a process's first moments)."""
    wait()  # the imports a send needs happen on the warm-up thread (a fork waits for it), not here
    for i, record in enumerate(records):
        if record.price_version is None:
            try:
                records[i] = price_record(record)
            except Exception as exc:
                internal_error("pricing", exc)


class SinkWorker:
    def __init__(
        self,
        sink: Sink,
        key: str,
        store: Store,
        *,
        batch_size: int,
        flush_interval: float,
        backoff: Backoff,
        on_batch_done: Callable[[], None],
    ) -> None:
        self.sink = as_sink(sink)
        self.key = key
        self.store = store
        self.batch_size = batch_limit(self.sink, batch_size)
        self.sizes = BatchSizes(self.batch_size)
        self.in_flight = in_flight_limit(self.sink)
        self.flush_interval = flush_interval
        self.backoff = backoff
        self.on_batch_done = on_batch_done
        self.wake = threading.Event()
        self.paused_until = 0.0
        self.halted: Optional[str] = None
        self.last_error: Optional[str] = None
        self.last_error_at: Optional[float] = None
        self._last_reason: Optional[str] = None
        self.stopped = False
        self.sent = 0
        self.dead = 0
        self.duplicates = 0
        self.retried = 0
        self.status_interval = 1.0
        self._published: dict[str, int] = dict.fromkeys(COUNTERS, 0)
        self._published_at = -math.inf
        self._error_unpublished = False
        self._published_reason: Optional[str] = None
        self._backlog = 0
        self._thread: Optional[threading.Thread] = None
        self._sent_once = False

    # -- control (any thread) --------------------------------------------

    def start(self) -> None:
        thread = threading.Thread(target=self._run, name=f"usagetap-sink-{self.key}", daemon=True)
        thread.start()
        self._thread = thread  # join() from another thread never sees a thread not yet started

    def added(self, n: int) -> None:
        self._backlog += n
        if self._backlog >= self.batch_size:
            self.wake.set()

    def hold(self, reason: str) -> None:
        """Start halted: the sink cannot deliver anything until someone acts (``reason``, logged by
        whoever found it)."""
        self.paused_until = time.time() + HALT_PAUSE
        self.halted = reason
        self._error("halt", f"halted: {reason}", quiet=True)
        self.wake.set()  # publish the halt at once

    def stuck(self, *, paused: bool) -> bool:
        """Whether delivery waits, for now, on someone to act (halted) or, with ``paused``, on a pause
        (after 429): not once the pause is over and the next try is due."""
        return (self.halted is not None or paused) and self.paused_until > time.time()

    def stop(self) -> None:
        self.stopped = True
        self.wake.set()

    def join(self, timeout: float) -> None:
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout)

    # -- the loop ------------------------------------------------------------

    def _timeout(self) -> float:
        now = time.time()
        if self.paused_until > now:
            return self.paused_until - now
        try:
            due = self.store.next_due(self.key)
        except Exception:
            return self.flush_interval
        if due is None:
            return self.flush_interval
        return min(self.flush_interval, max(0.0, due - now))

    def _stopped(self) -> bool:
        return self.stopped

    def _run(self) -> None:
        while not self._stopped():
            self.wake.wait(self._timeout())
            self.wake.clear()
            if self._stopped():
                break
            try:
                self.deliver_due()
            except Exception as exc:
                internal_error(f"worker:{self.key}", exc)
                self.wake.wait(1.0)
            self.publish_status()
        self.publish_status(force=True)

    def _lease(self) -> list[Entry]:
        if self.stopped or time.time() < self.paused_until:
            return []
        return self.store.lease(self.key, self.sizes.lease_size(), time.time())

    def deliver_due(self) -> None:
        """Send every due entry, batch by batch, until none is due, the sink pauses, or we stop.

        With ``in_flight`` > 1, that many batches are sent at once, each on a thread of its own;
        leases and outcomes are handled here, on the worker's thread, as each send returns.
        """
        self._backlog = 0
        if self.in_flight > 1:
            self._deliver_concurrently()
            return
        while True:
            entries = self._lease()
            if not entries:
                return
            try:
                self._finish_batch(entries, self._send([e.record for e in entries]))
            except Exception:
                self._release(entries)
                raise

    def _deliver_concurrently(self) -> None:
        done: queue.Queue[tuple[int, Optional[Outcomes], Optional[BaseException]]] = queue.Queue()
        flying: dict[int, list[Entry]] = {}
        serial = 0

        def send(token: int, records: list[UsageRecord]) -> None:
            try:
                done.put((token, self._send(records), None))
            except BaseException as exc:  # handed to the worker's thread, which releases the entries
                done.put((token, None, exc))

        while True:
            while len(flying) < self.in_flight:
                entries = self._lease()
                if not entries:
                    break
                serial += 1
                flying[serial] = entries
                records = [e.record for e in entries]
                threading.Thread(
                    target=send, args=(serial, records), name=f"usagetap-send-{self.key}", daemon=True
                ).start()
            if not flying:
                return
            try:
                token, outcomes, error = done.get(timeout=self.flush_interval)
            except queue.Empty:
                if self.stopped:
                    return  # a send stuck on a black-holed backend is left behind, its lease with it
                continue
            entries = flying.pop(token)
            try:
                if error is not None or outcomes is None:
                    raise error or RuntimeError("no outcome")
                self._finish_batch(entries, outcomes)
            except BaseException as exc:
                self._release(entries)
                internal_error(f"worker:{self.key}", exc)

    def _release(self, entries: Sequence[Entry]) -> None:
        """Something went wrong before the batch was finished: make the entries due again after a backoff."""
        attempts = max((e.attempts for e in entries), default=0) + 1
        due = time.time() + self.backoff.delay(attempts)  # one draw: the batch stays together
        for entry in entries:
            entry.attempts, entry.not_before = attempts, due
        try:
            self.store.retry(self.key, entries)
        except Exception as exc:
            internal_error(f"store:{self.key}", exc)

    # -- one batch -------------------------------------------------------------

    def _send(self, records: list[UsageRecord]) -> Outcomes:
        _price(records)
        if self._sent_once:
            return send_bisecting(self.sink, records, self._error, self.sizes)
        with guarded():  # the first send imports what the sink needs: a fork waits for it
            outcomes = send_bisecting(self.sink, records, self._error, self.sizes)
        self._sent_once = True
        return outcomes

    def _error(self, kind: str, reason: str, *, quiet: bool = False) -> None:
        """Remember the last delivery error (for ``usagetap status``); log each kind once."""
        self.last_error_at = time.time()
        self._last_reason = reason
        self.last_error = f"{time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime(self.last_error_at))} {reason}"
        self._error_unpublished = True
        if quiet:
            return
        log_once(
            logging.WARNING,
            f"sink-error:{self.key}:{kind}",
            "usagetap: sink %s: %s; the events are kept and retried",
            self.key,
            reason,
        )

    def _finish_batch(self, entries: Sequence[Entry], outcomes: Outcomes) -> None:
        """Acknowledge, dead-letter or reschedule each leased entry as :func:`decide` says."""
        now = time.time()
        decision = decide(outcomes, (e.record.event_id for e in entries))
        delivered: list[Entry] = []
        dead: list[Entry] = []
        reasons: list[str] = []
        retry: list[Entry] = []
        for entry in entries:
            action = decision.actions[entry.record.event_id]
            if action is Action.ACK:
                delivered.append(entry)
            elif action is Action.DEAD:
                dead.append(entry)
                reasons.append(decision.reasons[entry.record.event_id])
            else:  # RETRY, HALT; SPLIT never comes here: send_bisecting resends those
                retry.append(entry)
        if decision.unreported:
            log_once(
                logging.WARNING,
                f"unreported:{self.key}",
                "usagetap: sink %s reported no outcome for some events; they will be retried",
                self.key,
            )

        if decision.halt:
            self._halt(decision.halt, now)
            for entry in retry:  # the pause is the sink's: the events stay due for whoever delivers next
                entry.not_before = now
        else:
            if self.halted:
                log.warning("usagetap: sink %s accepts events again; delivery resumed", self.key)
                self.halted = None
            if decision.retry_after is not None:
                self.paused_until = max(self.paused_until, now + decision.retry_after)
            if retry:
                # one draw for the batch: events that failed together are retried together
                attempts = max(e.attempts for e in retry) + 1
                due = now + self.backoff.delay(attempts, decision.retry_after)
                for entry in retry:
                    entry.attempts += 1
                    entry.not_before = due

        self.sent += len(delivered)
        self.dead += len(dead)
        self.duplicates += decision.duplicates
        self.retried += len(retry)
        _stats.incr("sent", len(delivered))
        if decision.duplicates:
            _stats.incr("duplicate", decision.duplicates)
        if retry:
            _stats.incr("retried", len(retry))
        if dead:
            _stats.incr("dead", len(dead))
            for reason in dict.fromkeys(reasons):
                log_once(
                    logging.WARNING,
                    f"dead:{self.key}:{reason}",
                    "usagetap: %s refused an event for good: %s (kept as a dead letter; "
                    "more for this reason are counted, not logged)",
                    self.key,
                    reason,
                )
        # counted (and logged) before the store forgets them: flush() reads the counts once nothing is pending
        try:
            if delivered:
                self.store.ack(self.key, delivered)
            if dead:
                self.store.dead(self.key, dead, reasons, now)
            if retry:
                self.store.retry(self.key, retry)
        except Exception as exc:
            internal_error(f"store:{self.key}", exc)
        self.publish_status()
        self.on_batch_done()

    # -- status for ``usagetap status`` ------------------------------------------

    def publish_status(self, *, force: bool = False) -> None:
        """Add this worker's new counts (and a new last error) to the spool's ``meta`` table.

        Only on a store that keeps it (a spool), only when something changed, and at most once per
        ``status_interval`` unless an error with a new reason came, or ``force``. Call it from this
        worker's thread.
        """
        store = self.store
        if not store.keeps_meta:
            return
        counts = {name: int(getattr(self, attr)) for name, attr in COUNTERS.items()}
        added = {name: counts[name] - self._published[name] for name in COUNTERS}
        if not self._error_unpublished and not any(added.values()):
            return
        now = time.monotonic()
        new_error = self._error_unpublished and self._last_reason != self._published_reason
        if not (force or new_error) and now - self._published_at < self.status_interval:
            return
        put: dict[str, object] = {"updated": time.time(), "pid": os.getpid(), "halted": self.halted}
        if self._error_unpublished:
            put.update(last_error=self._last_reason, last_error_at=self.last_error_at)
        try:
            store.update_meta(status_key(self.key), add={k: v for k, v in added.items() if v}, put=put)
        except Exception as exc:
            if not self.stopped:  # at shutdown the store may already be closed: best effort
                internal_error(f"status:{self.key}", exc)
            return
        self._published = counts
        self._published_at = now
        if self._error_unpublished:
            self._published_reason = self._last_reason
        self._error_unpublished = False

    def _halt(self, reason: str, now: float) -> None:
        if self.halted is not None and now < self.paused_until:  # another batch in flight saw it too
            return
        pause = HALT_PAUSE if self.halted is None else min(self.backoff.cap, HALT_PAUSE * 5)
        self.paused_until = now + pause
        self._error("halt", f"halted: {reason}")
        if self.halted is None:
            log.error(
                "usagetap: sink %s cannot deliver (%s). Delivery to it is paused and every event is kept; "
                "it is retried every %.0f s",
                self.key,
                reason,
                pause,
            )
        self.halted = reason
