"""The durable spool: SQLite in WAL mode, shared safely by every process that opens it.

A row is one record waiting for one sink. Leasing a batch marks its rows
with this process (owner, pid, expiry) inside one ``BEGIN IMMEDIATE``
transaction, so two processes never send the same row at once; a row is
deleted only when its sink acknowledged it. Leases of a process that died
(SIGKILL, OOM) are void at the next start; other expired leases are
reclaimed as they expire.

Fresh rows are written through: they are inserted already leased to this
process, and their records stay in memory (up to ``hot_limit``), so the
worker delivers them without reading, decoding or re-leasing them, and
acknowledges them by seq range. The database is read back only for retries,
for what did not fit in memory, and for what an earlier process left.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import time
import uuid
from collections import deque
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, Optional

from .._forksafe import SQLITE
from .codec import decode, encode
from .store import DeadLetter, Entry, SpoolUnavailable, StoreFull

__all__ = ["Spool", "SpoolUnavailable", "immediate", "open_spool"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS spool (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    sink TEXT NOT NULL,
    event_id TEXT NOT NULL,
    payload TEXT NOT NULL,
    created REAL NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    not_before REAL NOT NULL DEFAULT 0,
    lease_owner TEXT,
    lease_pid INTEGER,
    lease_until REAL,
    origin TEXT NOT NULL DEFAULT '',
    origin_pid INTEGER NOT NULL DEFAULT 0,
    UNIQUE (sink, event_id)
);
CREATE INDEX IF NOT EXISTS spool_due ON spool (sink, not_before, seq);
CREATE TABLE IF NOT EXISTS dead (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    sink TEXT NOT NULL,
    event_id TEXT NOT NULL,
    payload TEXT NOT NULL,
    reason TEXT NOT NULL,
    created REAL NOT NULL,
    died REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""


# when the earliest row not in flight here is due: unleased rows at not_before, rows leased by
# another process when that lease expires
_NEXT_DUE = """
SELECT MIN(CASE WHEN lease_until IS NULL THEN not_before ELSE MAX(not_before, lease_until) END)
FROM spool WHERE sink=? AND (lease_owner IS NULL OR lease_owner<>?)
"""
_INSERT = """
INSERT OR IGNORE INTO spool (sink, event_id, payload, created, attempts, not_before, origin, origin_pid)
VALUES (?, ?, ?, ?, ?, ?, ?, ?)
"""
_INSERT_LEASED = """
INSERT OR IGNORE INTO spool (seq, sink, event_id, payload, created, attempts, not_before, origin, origin_pid,
                             lease_owner, lease_pid, lease_until)
VALUES (?, ?, ?, ?, ?, 0, ?, ?, ?, ?, ?, ?)
"""
HOT_LIMIT = 10_000


# owners of the spools open in this process: their leases are live whatever the pid says
_open_owners: set[str] = set()


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _create_private(path: Path) -> None:
    """Create the database file readable by its owner only (its -wal/-shm files inherit the mode)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(str(path), os.O_CREAT | os.O_RDWR, 0o600)
    os.close(fd)
    os.chmod(str(path), 0o600)


def open_spool(path: str, *, max_bytes: int, lease_seconds: float, hot_limit: int = HOT_LIMIT) -> Spool:
    """Open (or create) the spool at ``path``. A corrupt file is moved aside and replaced.

    ``hot_limit`` bounds the fresh records kept in memory for delivery (0: every row waits on disk).
    Raises :class:`SpoolUnavailable` when the path cannot be written.
    """
    from .._log import log

    target = Path(path)
    try:
        _create_private(target)
        return Spool(target, max_bytes=max_bytes, lease_seconds=lease_seconds, hot_limit=hot_limit)
    except sqlite3.DatabaseError as exc:
        if isinstance(exc, sqlite3.OperationalError) and not _looks_corrupt(exc):
            raise SpoolUnavailable(f"cannot open spool {target}: {exc}") from exc
        aside = target.with_name(f"{target.name}.corrupt-{int(time.time())}")
        for suffix in ("", "-wal", "-shm"):
            src = Path(str(target) + suffix)
            if src.exists():
                os.replace(src, Path(str(aside) + suffix))
        log.warning(
            "usagetap: spool %s was corrupt (%s); moved it to %s and started a fresh one", target, exc, aside
        )
        try:
            _create_private(target)
            return Spool(target, max_bytes=max_bytes, lease_seconds=lease_seconds, hot_limit=hot_limit)
        except (OSError, sqlite3.Error) as again:
            raise SpoolUnavailable(f"cannot create spool {target}: {again}") from again
    except OSError as exc:
        raise SpoolUnavailable(f"cannot open spool {target}: {exc}") from exc


def _runs(keys: Iterable[int]) -> list[tuple[int, int]]:
    """Consecutive integers as ``(first, last)`` ranges: a batch written together is one range."""
    runs: list[tuple[int, int]] = []
    for key in sorted(keys):
        if runs and key == runs[-1][1] + 1:
            runs[-1] = (runs[-1][0], key)
        else:
            runs.append((key, key))
    return runs


@contextlib.contextmanager
def immediate(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """One write transaction (``BEGIN IMMEDIATE``), committed on exit, rolled back on any exception."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def _looks_corrupt(exc: sqlite3.Error) -> bool:
    text = str(exc).lower()
    return "not a database" in text or "malformed" in text or "corrupt" in text


class Spool:
    """A :class:`~usagetap.delivery.store.Store` on SQLite. Use :func:`open_spool`."""

    def __init__(
        self, path: Path, *, max_bytes: int, lease_seconds: float, hot_limit: int = HOT_LIMIT
    ) -> None:
        self.path = path
        self.max_bytes = max_bytes
        self.lease_seconds = lease_seconds
        self.hot_limit = hot_limit
        self._hot: dict[str, deque[tuple[Entry, float]]] = {}  # sink -> (entry, lease expiry)
        self._hot_count = 0
        self.owner = uuid.uuid4().hex
        _open_owners.add(self.owner)
        with SQLITE:
            self._conn = sqlite3.connect(
                str(path), timeout=30.0, check_same_thread=False, isolation_level=None
            )
            self._setup()

    def _setup(self) -> None:
        try:
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute("PRAGMA synchronous=NORMAL")
            self._conn.executescript(_SCHEMA)
            self._conn.execute("PRAGMA quick_check").fetchone()
            self._page_size = int(self._conn.execute("PRAGMA page_size").fetchone()[0])
            self._void_dead_leases()
            self._adopt_orphans()
        except BaseException:
            self._conn.close()
            _open_owners.discard(self.owner)
            raise

    # -- helpers ---------------------------------------------------------

    def _void_dead_leases(self) -> None:
        """Release leases of a process that is gone, or of an earlier life of this pid (a restart)."""
        me = os.getpid()
        rows = self._conn.execute(
            "SELECT DISTINCT lease_pid, lease_owner FROM spool WHERE lease_until IS NOT NULL"
        ).fetchall()
        for pid, owner in rows:
            if owner in _open_owners:
                continue
            if pid == me or not _pid_alive(int(pid)):
                self._conn.execute(
                    "UPDATE spool SET lease_owner=NULL, lease_pid=NULL, lease_until=NULL WHERE lease_owner=?",
                    (owner,),
                )

    def _adopt_orphans(self) -> None:
        """Rows added by a process that is gone become this process's to deliver (and to flush)."""
        me = os.getpid()
        rows = self._conn.execute(
            "SELECT DISTINCT origin, origin_pid FROM spool WHERE origin<>?", (self.owner,)
        )
        for origin, pid in rows.fetchall():
            if origin in _open_owners:
                continue
            if pid == me or not pid or not _pid_alive(int(pid)):
                self._conn.execute(
                    "UPDATE spool SET origin=?, origin_pid=? WHERE origin=?", (self.owner, me, origin)
                )

    def _size(self) -> int:
        pages = int(self._conn.execute("PRAGMA page_count").fetchone()[0])
        free = int(self._conn.execute("PRAGMA freelist_count").fetchone()[0])
        return (pages - free) * self._page_size

    def _write(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        with immediate(self._conn) as conn:
            conn.executemany(sql, rows)

    # -- Store -------------------------------------------------------------

    def add(self, sinks: Sequence[str], records: Sequence[Any]) -> None:
        now = time.time()
        payloads = [(r.event_id, encode(r)) for r in records]
        me = os.getpid()
        with SQLITE:
            if self.max_bytes and self._size() > self.max_bytes:
                raise StoreFull(f"spool {self.path} is over its {self.max_bytes} byte cap")
            hot = self._hot_count + len(sinks) * len(records) <= self.hot_limit
            try:
                if hot:
                    self._add_leased(sinks, records, payloads, now, me)
                else:  # memory is full (a backend that is slow or down): rows wait on disk only
                    rows = [  # due from now: leases take the earliest due first, in index order (no sort)
                        (sink, event_id, payload, now, 0, now, self.owner, me)
                        for sink in sinks
                        for event_id, payload in payloads
                    ]
                    self._write(_INSERT, rows)
            except sqlite3.OperationalError as exc:
                raise SpoolUnavailable(f"cannot write spool {self.path}: {exc}") from exc

    def _add_leased(
        self,
        sinks: Sequence[str],
        records: Sequence[Any],
        payloads: list[tuple[str, str]],
        now: float,
        me: int,
    ) -> None:
        """Insert rows leased to this process with seqs chosen here, and keep their records in memory."""
        conn = self._conn
        until = now + self.lease_seconds
        with immediate(conn):
            found = conn.execute("SELECT seq FROM sqlite_sequence WHERE name='spool'").fetchone()
            last = max(
                int(found[0]) if found else 0,
                int(conn.execute("SELECT COALESCE(MAX(seq), 0) FROM spool").fetchone()[0]),
            )
            rows = []
            entries: list[tuple[str, Entry]] = []
            seq = last
            for sink in sinks:
                for record, (event_id, payload) in zip(records, payloads):
                    seq += 1
                    rows.append(
                        (seq, sink, event_id, payload, now, now, self.owner, me, self.owner, me, until)
                    )
                    entries.append((sink, Entry(seq, record, 0, now)))
            before = conn.total_changes
            conn.executemany(_INSERT_LEASED, rows)
            if conn.total_changes - before != len(rows):  # some were already waiting (the same event)
                stored = {
                    r[0]
                    for r in conn.execute("SELECT seq FROM spool WHERE seq > ? AND seq <= ?", (last, seq))
                }
                entries = [(s, e) for s, e in entries if e.key in stored]
        for sink, entry in entries:
            self._hot.setdefault(sink, deque()).append((entry, until))
        self._hot_count += len(entries)

    def _take_hot(self, sink: str, limit: int, now: float) -> list[Entry]:
        """Up to ``limit`` in-memory entries whose lease has at least half its time left.

        One closer to expiry is left to the database: when its lease runs out, it is leased again
        from there (by this process or another), so nothing is sent on an expired lease.
        """
        queue = self._hot.get(sink)
        out: list[Entry] = []
        margin = self.lease_seconds / 2
        while queue and len(out) < limit:
            entry, until = queue.popleft()
            self._hot_count -= 1
            if until - now >= margin:
                out.append(entry)
        return out

    def lease(self, sink: str, limit: int, now: float) -> list[Entry]:
        with SQLITE:
            hot = self._take_hot(sink, limit, now)
            if hot:
                return hot
            conn = self._conn
            with immediate(conn):
                rows = conn.execute(
                    "SELECT seq, payload, attempts, not_before FROM spool WHERE sink=? AND not_before<=? "
                    "AND (lease_until IS NULL OR lease_until<?) ORDER BY not_before, seq LIMIT ?",
                    (sink, now, now, limit),
                ).fetchall()
                if rows:
                    conn.executemany(
                        "UPDATE spool SET lease_owner=?, lease_pid=?, lease_until=? WHERE seq=?",
                        [(self.owner, os.getpid(), now + self.lease_seconds, row[0]) for row in rows],
                    )
        return [
            Entry(seq, decode(payload), attempts, not_before) for seq, payload, attempts, not_before in rows
        ]

    def ack(self, sink: str, entries: Sequence[Entry]) -> None:
        with SQLITE:
            self._write(
                "DELETE FROM spool WHERE seq BETWEEN ? AND ? AND lease_owner=?",
                [(first, last, self.owner) for first, last in _runs(e.key for e in entries)],
            )

    def retry(self, sink: str, entries: Sequence[Entry]) -> None:
        with SQLITE:
            self._write(
                "UPDATE spool SET attempts=?, not_before=?, lease_owner=NULL, lease_pid=NULL, "
                "lease_until=NULL WHERE seq=? AND lease_owner=?",
                [(e.attempts, e.not_before, e.key, self.owner) for e in entries],
            )

    def dead(self, sink: str, entries: Sequence[Entry], reasons: Sequence[str], now: float) -> None:
        with SQLITE:
            conn = self._conn
            with immediate(conn):
                conn.executemany(
                    "INSERT INTO dead (sink, event_id, payload, reason, created, died) "
                    "SELECT sink, event_id, payload, ?, created, ? FROM spool WHERE seq=? AND lease_owner=?",
                    [(reason, now, e.key, self.owner) for e, reason in zip(entries, reasons)],
                )
                conn.executemany(
                    "DELETE FROM spool WHERE seq=? AND lease_owner=?", [(e.key, self.owner) for e in entries]
                )

    def pending(self, sink: Optional[str] = None, *, mine: bool = False) -> int:
        """Rows not yet acknowledged; with ``mine``, only those this process added."""
        clauses, params = [], []
        if sink is not None:
            clauses.append("sink=?")
            params.append(sink)
        if mine:
            clauses.append("origin=?")
            params.append(self.owner)
        where = f" WHERE {' AND '.join(clauses)}" if clauses else ""
        with SQLITE:
            return int(self._conn.execute(f"SELECT COUNT(*) FROM spool{where}", params).fetchone()[0])

    def has_pending(self) -> bool:
        """Whether any row this process added is unacknowledged (stops at the first: no count)."""
        with SQLITE:
            return (
                self._conn.execute("SELECT 1 FROM spool WHERE origin=? LIMIT 1", (self.owner,)).fetchone()
                is not None
            )

    def next_due(self, sink: str) -> Optional[float]:
        with SQLITE:
            queue = self._hot.get(sink)
            if queue:
                return queue[0][0].not_before
            row = self._conn.execute(_NEXT_DUE, (sink, self.owner)).fetchone()
        return None if row[0] is None else float(row[0])

    def add_entries(self, items: Sequence[tuple[str, Entry]]) -> None:
        """Keep entries spilled from memory, with their attempts and due times."""
        now = time.time()
        rows = [
            (s, e.record.event_id, encode(e.record), now, e.attempts, e.not_before, self.owner, os.getpid())
            for s, e in items
        ]
        with SQLITE:
            self._write(_INSERT, rows)

    # -- dead letters and status -------------------------------------------

    def dead_letters(self, sink: Optional[str] = None, limit: int = 1000) -> list[DeadLetter]:
        sql = "SELECT sink, payload, reason, died FROM dead"
        params: tuple[Any, ...] = ()
        if sink is not None:
            sql += " WHERE sink=?"
            params = (sink,)
        with SQLITE:
            rows = self._conn.execute(sql + " ORDER BY seq LIMIT ?", (*params, limit)).fetchall()
        return [DeadLetter(s, decode(p), reason, died) for s, p, reason, died in rows]

    def set_meta(self, key: str, value: str) -> None:
        with SQLITE:
            self._conn.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, value))

    def update_meta(self, key: str, *, add: Mapping[str, int], put: Mapping[str, Any]) -> None:
        """Merge into the JSON object at ``key``: counters in ``add`` are summed, fields in ``put`` replaced.

        One transaction, so processes sharing the spool add up their counters.
        """
        with SQLITE:
            conn = self._conn
            with immediate(conn):
                row = conn.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
                try:
                    value = json.loads(row[0]) if row else {}
                except ValueError:
                    value = {}
                if not isinstance(value, dict):
                    value = {}
                for name, n in add.items():
                    value[name] = int(value.get(name) or 0) + n
                value.update(put)
                conn.execute(
                    "INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)",
                    (key, json.dumps(value, separators=(",", ":"))),
                )

    def close(self) -> None:
        with SQLITE:
            self._conn.close()
        _open_owners.discard(self.owner)
