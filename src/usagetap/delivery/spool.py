"""The durable spool: SQLite in WAL mode, shared safely by every process that opens it.

A row is a chunk: up to one batch of records (``n`` of them, the sink's
batch size) waiting for one sink, written, leased, retried and deleted
together, so the database does one row's work per batch, not per event.
Leasing marks rows with this process (owner, pid, expiry) inside one
``BEGIN IMMEDIATE`` transaction, so two processes never send the same
records at once. When a batch's events have different outcomes, its row is
rewritten: what the backend took (or refused for good) leaves it, events to
retry move to a row of their own with their attempts and due time. Leases
of a process that died (SIGKILL, OOM) are void at the next start; other
expired leases are reclaimed as they expire.

Fresh rows are written through: they are inserted already leased to this
process, and their records stay in memory (up to ``hot_limit``), so the
worker delivers them without reading, decoding or re-leasing them. The
database is read back only for retries, for what did not fit in memory,
and for what an earlier process left.

A record added twice (the same event id) is kept once when its first copy is
among the last ``RECENT`` this process added; beyond that (or from another
process) it may wait twice, and the backend, which gets the event id as its
idempotency key, counts the second as a duplicate.
"""

from __future__ import annotations

import operator
import os
import sqlite3
import time
import uuid
from collections import deque
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, Optional

from .._forksafe import SQLITE
from .._liveness import pid_alive
from ..db import spool as db
from ..db.recover import text
from ..db.spool import SALVAGE_KEY, immediate
from .codec import decode, decode_chunk, encode, encode_chunk
from .salvage import Salvage, readable_records, salvage_spool
from .store import DeadLetter, Entry, SpoolUnavailable, Store, StoreFull

__all__ = ["Spool", "SpoolUnavailable", "open_spool"]

HOT_LIMIT = 10_000
CHUNK = 500
RECENT = 10_000


# owners of the spools open in this process: their leases are live whatever the pid says
_open_owners: set[str] = set()


def _create_private(path: Path) -> None:
    """Create the database file readable by its owner only (its -wal/-shm files inherit the mode)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(str(path), os.O_CREAT | os.O_RDWR, 0o600)
    os.close(fd)
    os.chmod(str(path), 0o600)


def open_spool(
    path: str,
    *,
    max_bytes: int,
    lease_seconds: float,
    hot_limit: int = HOT_LIMIT,
    chunks: Optional[Mapping[str, int]] = None,
) -> Spool:
    """Open (or create) the spool at ``path``. A corrupt file is moved aside and replaced by a fresh one
    holding every record still readable in it (:mod:`.salvage`); what is not is counted and logged.

    ``hot_limit`` bounds the fresh records kept in memory for delivery (0: every row waits on disk);
    ``chunks``: records per row for each sink (its batch size; :data:`CHUNK` otherwise).
    Raises :class:`SpoolUnavailable` when the path cannot be written.
    """
    target = Path(path)
    try:
        _create_private(target)
        return Spool(
            target, max_bytes=max_bytes, lease_seconds=lease_seconds, hot_limit=hot_limit, chunks=chunks
        )
    except sqlite3.DatabaseError as exc:
        if isinstance(exc, sqlite3.OperationalError) and not _looks_corrupt(exc):
            raise SpoolUnavailable(f"cannot open spool {target}: {exc}") from exc
        aside = target.with_name(f"{target.name}.corrupt-{int(time.time())}")
        for suffix in ("", "-wal", "-shm"):
            src = Path(str(target) + suffix)
            if src.exists():
                os.replace(src, Path(str(aside) + suffix))
        try:
            _create_private(target)
            spool = Spool(
                target, max_bytes=max_bytes, lease_seconds=lease_seconds, hot_limit=hot_limit, chunks=chunks
            )
        except (OSError, sqlite3.Error) as again:
            raise SpoolUnavailable(f"cannot create spool {target}: {again}") from again
        _salvage(spool, aside, exc)
        return spool
    except OSError as exc:
        raise SpoolUnavailable(f"cannot open spool {target}: {exc}") from exc


def _salvage(spool: Spool, aside: Path, exc: sqlite3.Error) -> None:
    """Move every readable record of the corrupt spool at ``aside`` into ``spool``, and count the rest."""
    from .. import _stats
    from .._log import internal_error, log

    try:
        conn = sqlite3.connect(str(aside), timeout=30.0, isolation_level=None)
        try:
            found = salvage_spool(conn)
        finally:
            conn.close()
        spool.restore(found, source=str(aside))
    except Exception as failed:
        internal_error("spool.salvage", failed)
        log.warning(
            "usagetap: spool %s was corrupt (%s); moved it to %s and started a fresh one; nothing could "
            "be salvaged from it (%s): replay it with 'usagetap replay --from %s'",
            spool.path,
            exc,
            aside,
            failed,
            aside,
        )
        return
    _stats.incr("spool_salvaged", found.records)
    _stats.incr("spool_unreadable", found.unreadable)
    _stats.incr("spool_unreadable_rows", found.lost_rows)
    log.warning(
        "usagetap: spool %s was corrupt (%s); moved it to %s and started a fresh one with the %d records "
        "and %d dead letters still readable; %d records could not be read, %d rows (of unknown size) "
        "and %d dead letters not at all",
        spool.path,
        exc,
        aside,
        found.records,
        len(found.dead),
        found.unreadable,
        found.lost_rows,
        found.lost_dead,
    )


def _chunked(items: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _looks_corrupt(exc: sqlite3.Error) -> bool:
    text = str(exc).lower()
    return "not a database" in text or "malformed" in text or "corrupt" in text


class Spool(Store):
    """A :class:`~usagetap.delivery.store.Store` on SQLite. Use :func:`open_spool`."""

    durable = True
    keeps_meta = True

    def __init__(
        self,
        path: Path,
        *,
        max_bytes: int,
        lease_seconds: float,
        hot_limit: int = HOT_LIMIT,
        chunks: Optional[Mapping[str, int]] = None,
    ) -> None:
        self.path = path
        self.max_bytes = max_bytes
        self.lease_seconds = lease_seconds
        self.hot_limit = hot_limit
        self.chunks = dict(chunks or {})
        self._hot: dict[str, deque[tuple[list[Entry], float]]] = {}  # sink -> (a row's entries, lease expiry)
        self._hot_count = 0
        self._leased: dict[int, list[Entry]] = {}  # seq -> the entries of a row leased here, still in it
        self._recent: set[str] = set()  # the event ids added last
        self._recent_order: deque[str] = deque()
        self.owner = uuid.uuid4().hex
        _open_owners.add(self.owner)
        with SQLITE:
            self._conn = sqlite3.connect(
                str(path), timeout=30.0, check_same_thread=False, isolation_level=None
            )
            self._setup()

    def _setup(self) -> None:
        try:
            self._page_size = db.setup(self._conn)
            self._void_dead_leases()
            self._adopt_orphans()
        except BaseException:
            self._conn.close()
            _open_owners.discard(self.owner)
            raise

    # -- helpers ---------------------------------------------------------

    def disk(self) -> Spool:
        return self

    def adopt(self) -> None:
        """Take over the rows of spools closed since this one was opened, and release their leases
        (to deliver and flush them)."""
        with SQLITE:
            self._void_dead_leases()
            self._adopt_orphans()

    def _void_dead_leases(self) -> None:
        """Release leases of a process that is gone, or of an earlier life of this pid (a restart)."""
        me = os.getpid()
        for pid, owner in db.lease_holders(self._conn):
            if owner in _open_owners:
                continue
            if pid == me or not pid_alive(int(pid)):
                db.release_owner(self._conn, owner)

    def _adopt_orphans(self) -> None:
        """Rows added by a process that is gone become this process's to deliver (and to flush)."""
        me = os.getpid()
        for origin, pid in db.origins(self._conn, self.owner):
            if origin in _open_owners:
                continue
            if pid == me or not pid or not pid_alive(int(pid)):
                db.take_over(self._conn, origin, self.owner, me)

    def _insert(self, rows: Sequence[db.Row]) -> None:
        with immediate(self._conn) as conn:
            db.insert(conn, rows)

    def _first_seen(self, records: Sequence[Any]) -> list[Any]:
        """``records`` less those added already (among the last ``RECENT``) or earlier in ``records``."""
        recent = self._recent
        fresh = {r.event_id: r for r in reversed(records) if r.event_id not in recent}
        return list(reversed(fresh.values()))

    def _remember(self, records: Sequence[Any]) -> None:
        for r in records:
            self._recent.add(r.event_id)
            self._recent_order.append(r.event_id)
        while len(self._recent_order) > RECENT:
            self._recent.discard(self._recent_order.popleft())

    def _chunk(self, sink: str) -> int:
        return max(1, self.chunks.get(sink, CHUNK))

    # -- Store -------------------------------------------------------------

    def add(self, sinks: Sequence[str], records: Sequence[Any]) -> None:
        now = time.time()
        me = os.getpid()
        with SQLITE:
            records = self._first_seen(records)
            if not records:
                return
            if self.max_bytes and db.used_bytes(self._conn, self._page_size) > self.max_bytes:
                raise StoreFull(f"spool {self.path} is over its {self.max_bytes} byte cap")
            hot = self._hot_count + len(sinks) * len(records) <= self.hot_limit
            try:
                if hot:
                    self._add_leased(sinks, records, now, me)
                else:  # memory is full (a backend that is slow or down): rows wait on disk only
                    rows = [  # due from now: leases take the earliest due first, in index order (no sort)
                        (sink, len(part), encode_chunk(part), now, 0, now, self.owner, me)
                        for sink in sinks
                        for part in _chunked(records, self._chunk(sink))
                    ]
                    self._insert(rows)
            except sqlite3.OperationalError as exc:
                raise SpoolUnavailable(f"cannot write spool {self.path}: {exc}") from exc
            self._remember(records)

    def _add_leased(self, sinks: Sequence[str], records: Sequence[Any], now: float, me: int) -> None:
        """Insert rows leased to this process with seqs chosen here, and keep their records in memory."""
        conn = self._conn
        until = now + self.lease_seconds
        rows = []
        chunks: list[tuple[str, list[Entry]]] = []
        with immediate(conn):
            seq = db.last_seq(conn)
            for sink in sinks:
                size = self._chunk(sink)
                for start in range(0, len(records), size):
                    seq += 1
                    part = records[start : start + size]
                    rows.append(
                        (
                            seq,
                            sink,
                            len(part),
                            encode_chunk(part),
                            now,
                            now,
                            self.owner,
                            me,
                            self.owner,
                            me,
                            until,
                        )
                    )
                    chunks.append((sink, [Entry(seq, r, 0, now) for r in part]))
            db.insert_leased(conn, rows)
        for sink, entries in chunks:
            self._hot.setdefault(sink, deque()).append((entries, until))
            self._hot_count += len(entries)

    def _take_hot(self, sink: str, limit: int, now: float) -> list[Entry]:
        """In-memory rows, up to ``limit`` records.

        A row whose lease has less than half its time left is renewed first, so nothing is sent on
        an expiring lease; one whose lease this process lost (it expired and another process took
        the row) is left to that process.
        """
        queue = self._hot.get(sink)
        out: list[Entry] = []
        margin = self.lease_seconds / 2
        while queue and (not out or len(out) + len(queue[0][0]) <= limit):
            entries, until = queue.popleft()
            if until - now < margin:
                renewed = self._renew(entries[0].key, now)
                if renewed is None:
                    self._hot_count -= len(entries)
                    continue
                until = renewed
            self._leased.setdefault(entries[0].key, entries)  # the whole row, until all of it leaves
            if len(entries) > limit:  # a row written for a larger batch: the rest waits its turn here
                queue.appendleft((entries[limit:], until))
                entries = entries[:limit]
            self._hot_count -= len(entries)
            out.extend(entries)
        return out

    def _renew(self, seq: int, now: float) -> Optional[float]:
        """Extend this process's lease of row ``seq``; None when it is no longer ours."""
        until = now + self.lease_seconds
        return until if db.renew(self._conn, seq, self.owner, until) else None

    def lease(self, sink: str, limit: int, now: float) -> list[Entry]:
        with SQLITE:
            hot = self._take_hot(sink, limit, now)
            if hot:
                return hot
            conn = self._conn
            picked: list[tuple[int, list[Any], int, float]] = []
            with immediate(conn):
                total = 0
                for seq, n, attempts, not_before in db.due(conn, sink, now, limit):
                    if picked and total + n > limit:
                        break
                    records = self._read(seq, n)
                    if not records:
                        continue
                    if len(records) > limit:  # written for a larger batch: the rest becomes a row of its own
                        self._split(seq, records, limit)
                        records = records[:limit]
                    picked.append((seq, records, attempts, not_before))
                    total += len(records)
                if picked:
                    db.lease(conn, [p[0] for p in picked], self.owner, os.getpid(), now + self.lease_seconds)
            out: list[Entry] = []
            for seq, records, attempts, not_before in picked:
                entries = [Entry(seq, r, attempts, not_before) for r in records]
                self._leased[seq] = entries
                out.extend(entries)
        return out

    def _read(self, seq: int, n: int) -> list[Any]:
        """The records of row ``seq`` (in a transaction). A damaged payload gives up the records still
        whole in it: the row is rewritten to hold those (deleted when none is left), the rest counted."""
        conn = self._conn
        try:
            return decode_chunk(db.payload(conn, seq))
        except (sqlite3.OperationalError, ValueError, TypeError, IndexError, KeyError, AttributeError):
            pass
        raw = db.payload_bytes(conn, seq)
        records = readable_records(text(raw)) if isinstance(raw, bytes) else []
        if records:
            db.rewrite(conn, seq, len(records), encode_chunk(records))
        else:
            db.delete(conn, seq)
        lost = max(0, n - len(records))
        db.merge_meta(conn, SALVAGE_KEY, add={"unreadable": lost}, put={"at": time.time()})
        self._unreadable(seq, lost, len(records))
        return records

    def _unreadable(self, seq: int, lost: int, kept: int) -> None:
        from .. import _stats
        from .._log import log

        _stats.incr("spool_unreadable", lost)
        log.warning(
            "usagetap: spool %s: row %d was damaged; %d records could not be read, %d still could",
            self.path,
            seq,
            lost,
            kept,
        )

    def restore(self, found: Salvage, *, source: str) -> None:
        """Keep what was salvaged from another spool (``source``): its rows wait here, unleased, for this
        process to deliver; dead letters and meta rows are copied; ``meta[SALVAGE_KEY]`` counts it all."""
        me = os.getpid()
        rows = [
            (
                row.sink,
                len(part),
                encode_chunk(part),
                row.created,
                row.attempts,
                row.not_before,
                self.owner,
                me,
            )
            for row in found.rows
            for part in _chunked(row.records, self._chunk(row.sink))
        ]
        with SQLITE, immediate(self._conn) as conn:
            db.insert(conn, rows)
            db.insert_dead(conn, found.dead)
            db.put_meta(conn, found.meta)
            db.merge_meta(
                conn,
                SALVAGE_KEY,
                add={
                    "salvaged": found.records,
                    "unreadable": found.unreadable,
                    "unreadable_rows": found.lost_rows,
                    "unreadable_dead": found.lost_dead,
                },
                put={"from": source, "at": time.time()},
            )

    def _split(self, seq: int, records: list[Any], size: int) -> None:
        """Keep the first ``size`` records in row ``seq``; the others move to rows of ``size`` (unleased)."""
        conn = self._conn
        head = records[:size]
        db.rewrite(conn, seq, len(head), encode_chunk(head))
        for part in _chunked(records[size:], size):
            db.copy_schedule(conn, seq, len(part), encode_chunk(part))

    def _leave(
        self,
        entries: Sequence[Entry],
        *,
        moved: bool = False,
        dead: Optional[Sequence[tuple[str, str]]] = None,
        now: float = 0.0,
    ) -> None:
        """These entries leave their rows: delivered, ``dead`` (sink, reason each) or ``moved`` to rows of
        their own, to be retried (each with its attempts and due time).

        A row left empty is deleted (or, when all of it is retried alike, released in place); a row
        with records left is rewritten to hold only those. Rows whose lease this process lost are
        left alone: the process that holds them now delivers them.
        """
        groups: dict[int, list[int]] = {}
        for i, entry in enumerate(entries):
            groups.setdefault(entry.key, []).append(i)
        owner = self.owner
        left: list[tuple[int, list[Entry]]] = []
        with SQLITE, immediate(self._conn) as conn:
            if dead is not None:
                db.bury(
                    conn,
                    [
                        (sink, e.record.event_id, encode(e.record), reason, now, e.key, owner)
                        for e, (sink, reason) in zip(entries, dead, strict=False)
                    ],
                )
            for seq, indexes in groups.items():
                row = self._leased.get(seq)
                if row is None:  # not leased here: nothing to do
                    continue
                taken = [entries[i] for i in indexes]
                if len(taken) == len(row) and all(map(operator.is_, taken, row)):
                    rest, leaving = [], row  # the whole row, as leased (the usual case): no sets
                else:
                    gone = {id(e) for e in taken}
                    rest = [e for e in row if id(e) not in gone]
                    leaving = [e for e in row if id(e) in gone]
                if moved:
                    alike = {(e.attempts, e.not_before) for e in leaving}
                    if not rest and len(alike) == 1:
                        attempts, not_before = alike.pop()
                        db.release(conn, seq, owner, attempts, not_before)
                        left.append((seq, rest))
                        continue
                    by_due: dict[tuple[int, float], list[Any]] = {}
                    for e in leaving:
                        by_due.setdefault((e.attempts, e.not_before), []).append(e.record)
                    db.move(
                        conn,
                        [
                            (len(p), encode_chunk(p), attempts, not_before, seq, owner)
                            for (attempts, not_before), p in by_due.items()
                        ],
                    )
                if rest:
                    db.rewrite(conn, seq, len(rest), encode_chunk(e.record for e in rest), owner)
                else:
                    db.delete(conn, seq, owner)
                left.append((seq, rest))
        for seq, rest in left:
            if rest:
                self._leased[seq] = rest
            else:
                self._leased.pop(seq, None)

    def ack(self, sink: str, entries: Sequence[Entry]) -> None:
        self._leave(entries)

    def retry(self, sink: str, entries: Sequence[Entry]) -> None:
        self._leave(entries, moved=True)

    def dead(self, sink: str, entries: Sequence[Entry], reasons: Sequence[str], now: float) -> None:
        self._leave(entries, dead=[(sink, reason) for reason in reasons], now=now)

    def pending(self, sink: Optional[str] = None, *, mine: bool = False) -> int:
        """Records not yet acknowledged; with ``mine``, only those this process added."""
        with SQLITE:
            return db.pending(self._conn, sink, self.owner if mine else None)

    def has_pending(self) -> bool:
        """Whether any row this process added is unacknowledged (stops at the first: no count)."""
        with SQLITE:
            return db.has_rows(self._conn, self.owner)

    def next_due(self, sink: str) -> Optional[float]:
        with SQLITE:
            queue = self._hot.get(sink)
            if queue:
                return queue[0][0][0].not_before
            return db.next_due(self._conn, sink, self.owner)

    def keep_entries(self, items: Sequence[tuple[str, Entry]]) -> None:
        """Keep entries drained from memory, with their attempts and due times."""
        now = time.time()
        groups: dict[tuple[str, int, float], list[Any]] = {}
        for sink, e in items:
            groups.setdefault((sink, e.attempts, e.not_before), []).append(e.record)
        rows = [
            (sink, len(part), encode_chunk(part), now, attempts, not_before, self.owner, os.getpid())
            for (sink, attempts, not_before), records in groups.items()
            for part in _chunked(records, self._chunk(sink))
        ]
        with SQLITE:
            self._insert(rows)

    # -- dead letters and status -------------------------------------------

    def dead_letters(self, sink: Optional[str] = None, limit: int = 1000) -> list[DeadLetter]:
        with SQLITE:
            rows = db.dead_letters(self._conn, sink, limit)
        return [DeadLetter(s, decode(p), reason, died) for s, p, reason, died in rows]

    def update_meta(self, key: str, *, add: Mapping[str, int], put: Mapping[str, Any]) -> None:
        """Merge into the JSON object at ``key``: counters in ``add`` are summed, fields in ``put`` replaced.

        One transaction, so processes sharing the spool add up their counters.
        """
        with SQLITE, immediate(self._conn) as conn:
            db.merge_meta(conn, key, add=add, put=put)

    def close(self) -> None:
        """Release the rows kept in memory for delivery and not sent yet, then close the connection."""
        with SQLITE:
            unsent = {entries[0].key for queue in self._hot.values() for entries, _ in queue} - set(
                self._leased
            )
            if unsent:
                try:
                    with immediate(self._conn) as conn:
                        db.release_all(conn, unsent, self.owner)
                except sqlite3.Error:
                    pass  # the next process that opens the spool releases them
            self._hot.clear()
            self._hot_count = 0
            self._conn.close()
        _open_owners.discard(self.owner)
