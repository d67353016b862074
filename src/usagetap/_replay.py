"""Re-send records to a sink, for ``usagetap replay``: dead letters from the spool, a ledger range, or
what a spool or ledger file holds (a corrupt spool moved aside, read around its damaged pages).

Records keep their event ids, so the backend deduplicates what it already
has: a replay never bills twice. Records are sent through the sink directly,
``sink.max_batch`` at a time, following the :class:`~usagetap.sinks.Outcomes`
contract: events to retry are retried with backoff a bounded number of times,
a batch refused as a whole is bisected, and a ``halt`` stops the replay.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Optional

from ._record import UsageRecord
from ._status import NotASpool, check_spool
from .db import ledger as ledger_db
from .db import spool as spool_db
from .db.recover import text
from .delivery.backoff import Backoff
from .delivery.codec import decode
from .delivery.decision import Action, decide
from .delivery.salvage import salvage_spool
from .delivery.worker import send_bisecting
from .sinks.base import Outcomes, Sink, as_sink

if TYPE_CHECKING:
    from ._ledger_source import LedgerSource

__all__ = [
    "DeadLetters",
    "FileRecords",
    "ReplayResult",
    "Replayer",
    "count_ledger",
    "ledger_records",
    "load_dead_letters",
    "open_spool_file",
    "read_file",
    "update_dead_letters",
]


@dataclass
class ReplayResult:
    """What a replay did. ``sent``: newly accepted; ``duplicates``: the backend had them already.

    ``dead``: event id -> the backend's reason, never deliverable as is. ``failed``: event id ->
    why it was not delivered this time (retries exhausted, the sink halted, unreadable).
    """

    selected: int = 0
    sent: int = 0
    duplicates: int = 0
    dead: dict[str, str] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)
    halted: Optional[str] = None

    @property
    def delivered(self) -> int:
        return self.sent + self.duplicates

    @property
    def complete(self) -> bool:
        """Every selected event reached the backend."""
        return not self.dead and not self.failed

    def summary(self) -> str:
        return (
            f"{self.selected:,} selected: {self.sent:,} sent, {self.duplicates:,} duplicates, "
            f"{len(self.dead):,} dead, {len(self.failed):,} failed"
        )


class Replayer:
    """Send records through ``sink`` in batches and account for every event's outcome.

    ``retries``: how many more times a batch's retryable events are sent, with
    ``backoff`` between attempts (the backend's Retry-After is the minimum).
    ``on_batch(records, result)`` runs after each batch is done;
    ``on_wait(seconds, reason)`` before each backoff.
    """

    def __init__(
        self,
        sink: Sink,
        *,
        retries: int = 5,
        backoff: Optional[Backoff] = None,
        on_batch: Optional[Callable[[Sequence[UsageRecord], ReplayResult], None]] = None,
        on_wait: Optional[Callable[[float, str], None]] = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.sink = as_sink(sink)
        self.retries = max(0, retries)
        self.backoff = backoff or Backoff()
        self.batch_size = max(1, self.sink.max_batch or 100)
        self.on_batch = on_batch
        self.on_wait = on_wait
        self.sleep = sleep
        self.result = ReplayResult()

    def replay(self, records: Iterable[UsageRecord]) -> ReplayResult:
        """Send ``records`` (already deduplicated on event id); stop early if the sink halts."""
        batch: list[UsageRecord] = []
        for record in records:
            batch.append(record)
            if len(batch) >= self.batch_size:
                self._batch(batch)
                batch = []
        if batch:
            self._batch(batch)
        return self.result

    def _batch(self, batch: list[UsageRecord]) -> None:
        result = self.result
        result.selected += len(batch)
        if result.halted is not None:
            result.failed.update((r.event_id, f"not sent: {result.halted}") for r in batch)
        else:
            self._deliver(batch)
        if self.on_batch is not None:
            self.on_batch(batch, result)

    def _deliver(self, batch: list[UsageRecord]) -> None:
        result = self.result
        todo = batch
        attempt = 0
        while True:
            outcomes, error = self._send(todo)
            decision = decide(outcomes, (r.event_id for r in todo))
            delivered = len(decision.of(Action.ACK))
            duplicates = min(decision.duplicates, delivered)
            result.sent += delivered - duplicates
            result.duplicates += duplicates
            result.dead.update(decision.reasons)
            if decision.halt:
                result.halted = decision.halt
                result.failed.update((i, f"halted: {decision.halt}") for i in decision.of(Action.HALT))
                return
            left = decision.of(Action.RETRY)
            if not left:
                return
            reason = error or "the backend asked to retry"
            attempt += 1
            if attempt > self.retries:
                result.failed.update((i, f"{reason} (gave up after {attempt} attempts)") for i in left)
                return
            delay = self.backoff.delay(attempt, decision.retry_after)
            if self.on_wait is not None:
                self.on_wait(delay, reason)
            self.sleep(delay)
            again = set(left)
            todo = list({r.event_id: r for r in todo if r.event_id in again}.values())

    def _send(self, records: list[UsageRecord]) -> tuple[Outcomes, Optional[str]]:
        """One send, bisecting batches the backend refuses as a whole (as the delivery worker does)."""
        errors: list[str] = []

        def failed(kind: str, reason: str) -> None:
            if kind != "retry":
                errors.append(reason)

        return send_bisecting(self.sink, records, failed), (errors[0] if errors else None)


# -- sources -----------------------------------------------------------------------


def _in_window(record: UsageRecord, since: Optional[date], until: Optional[date]) -> bool:
    day = record.timestamp.astimezone(timezone.utc).date()
    return (since is None or day >= since) and (until is None or day <= until)


def count_ledger(source: LedgerSource, since: Optional[date], until: Optional[date]) -> int:
    """How many ledger records fall within the UTC days ``since`` .. ``until``."""
    return source.count(since, until)


def ledger_records(
    source: LedgerSource, since: Optional[date], until: Optional[date]
) -> Iterator[UsageRecord]:
    """The ledger's records within the UTC days ``since`` .. ``until``, oldest first."""
    return source.records_between(since, until)


@dataclass
class DeadLetters:
    """Dead letters selected from a spool, by event id, with the rows that hold them."""

    records: dict[str, UsageRecord] = field(default_factory=dict)
    rows: dict[str, list[int]] = field(default_factory=dict)
    reasons: dict[str, str] = field(default_factory=dict)
    unreadable: dict[int, str] = field(default_factory=dict)


def open_spool_file(path: str) -> sqlite3.Connection:
    """A plain connection to an existing spool: no lease or ownership bookkeeping, unlike the pipeline's.

    Raises FileNotFoundError when there is none, :class:`NotASpool` or sqlite3.Error when it is no spool.
    """
    if not Path(path).is_file():
        raise FileNotFoundError(path)
    conn = sqlite3.connect(path, timeout=30.0, isolation_level=None)
    try:
        check_spool(conn)
    except (sqlite3.Error, NotASpool):
        conn.close()
        raise
    return conn


def load_dead_letters(
    conn: sqlite3.Connection,
    *,
    sink: Optional[str] = None,
    reason: Optional[str] = None,
    since: Optional[date] = None,
    until: Optional[date] = None,
) -> DeadLetters:
    """Dead letters of ``sink`` whose reason contains ``reason`` (any case), used within the UTC days."""
    out = DeadLetters()
    for seq, payload, why in spool_db.dead_matching(conn, sink, reason):
        try:
            record = decode(payload)
        except (ValueError, TypeError, IndexError, KeyError) as exc:
            out.unreadable[seq] = f"unreadable dead letter #{seq}: {exc}"
            continue
        if not _in_window(record, since, until):
            continue
        out.records.setdefault(record.event_id, record)
        out.rows.setdefault(record.event_id, []).append(seq)
        out.reasons[record.event_id] = why
    return out


def update_dead_letters(
    conn: sqlite3.Connection,
    letters: DeadLetters,
    records: Sequence[UsageRecord],
    result: ReplayResult,
    now: Optional[float] = None,
) -> None:
    """After a batch: forget the dead letters now delivered; give those refused again the new reason."""
    died = time.time() if now is None else now
    delivered: list[int] = []
    refused: list[tuple[str, float, int]] = []
    for record in records:
        event_id = record.event_id
        seqs = letters.rows.get(event_id, [])
        if event_id in result.dead:
            refused.extend((result.dead[event_id], died, seq) for seq in seqs)
        elif event_id not in result.failed:
            delivered.extend(seqs)
    if not delivered and not refused:
        return
    with spool_db.immediate(conn):
        spool_db.forget_dead(conn, delivered)
        spool_db.refuse_again(conn, refused)


@dataclass
class FileRecords:
    """The records of a spool or ledger file (``kind``), once each, and what could not be read.

    ``unreadable``: records known lost; ``unreadable_rows``: rows not readable at all (how many
    records they held is unknown); ``sinks``: a spool's sinks, ``sink`` the one whose rows were taken
    (None: all of them).
    """

    kind: str
    records: list[UsageRecord] = field(default_factory=list)
    unreadable: int = 0
    unreadable_rows: int = 0
    sinks: tuple[str, ...] = ()
    sink: Optional[str] = None


def read_file(
    path: str, *, sink: Optional[str] = None, since: Optional[date] = None, until: Optional[date] = None
) -> FileRecords:
    """Every readable record of the spool (waiting rows) or ledger at ``path``, used within the UTC days.

    Damaged pages are read around. Of a spool, the rows of ``sink`` when it has any, else every row.
    Raises FileNotFoundError, :class:`NotASpool` (neither a spool nor a ledger) or sqlite3.Error.
    """
    if not Path(path).is_file():
        raise FileNotFoundError(path)
    conn = sqlite3.connect(path, timeout=30.0, isolation_level=None)
    try:
        conn.text_factory = text
        tables = spool_db.table_names(conn)
        if "usage" in tables:
            out = _ledger_file(conn)
        elif "spool" in tables:
            out = _spool_file(conn, sink)
        else:
            raise NotASpool("neither a usagetap spool nor a ledger (no spool or usage table)")
    finally:
        conn.close()
    out.records = [r for r in out.records if _in_window(r, since, until)]
    return out


def _spool_file(conn: sqlite3.Connection, sink: Optional[str]) -> FileRecords:
    found = salvage_spool(conn)
    sinks = tuple(sorted({row.sink for row in found.rows}))
    taken = sink if sink in sinks else None
    out = FileRecords("spool", unreadable=found.unreadable, unreadable_rows=found.lost_rows, sinks=sinks)
    out.sink = taken
    seen: set[str] = set()
    for row in found.rows:
        if taken is None or row.sink == taken:
            fresh = [r for r in row.records if r.event_id not in seen]
            seen.update(r.event_id for r in fresh)
            out.records.extend(fresh)
    return out


def _ledger_file(conn: sqlite3.Connection) -> FileRecords:
    records, unreadable, lost = ledger_db.read_around_damage(conn)
    return FileRecords("ledger", records, unreadable=unreadable, unreadable_rows=lost)
