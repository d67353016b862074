"""Every query against the delivery spool: its schema and upgrade, rows, leases, dead letters and meta.

Three tables: ``spool`` (a row is a chunk of records waiting for one sink:
``n`` of them, with their attempts, due time, lease and origin), ``dead``
(one row per dead letter) and ``meta`` (JSON objects by key: each sink's
delivery status, what was salvaged from a corrupt spool). The callers
(:mod:`usagetap.delivery.spool`, :mod:`usagetap._status`, :mod:`usagetap._replay`,
:mod:`usagetap.delivery.salvage`) hold the logic; each statement lives here, once.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any, Optional

from .recover import file_of, readable_rows, scan_pages
from .wal import use_wal

__all__ = ["SALVAGE_KEY", "TABLES", "Row", "immediate", "missing_tables", "setup", "snapshot", "table_names"]

SALVAGE_KEY = "salvage"  # meta: what was salvaged from a corrupt spool, and what could not be read
TABLES = ("spool", "dead", "meta")

_CREATE = (
    """CREATE TABLE IF NOT EXISTS spool (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    sink TEXT NOT NULL,
    n INTEGER NOT NULL,
    payload TEXT NOT NULL,
    created REAL NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    not_before REAL NOT NULL DEFAULT 0,
    lease_owner TEXT,
    lease_pid INTEGER,
    lease_until REAL,
    origin TEXT NOT NULL DEFAULT '',
    origin_pid INTEGER NOT NULL DEFAULT 0
)""",
    "CREATE INDEX IF NOT EXISTS spool_due ON spool (sink, not_before, seq)",
    """CREATE TABLE IF NOT EXISTS dead (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    sink TEXT NOT NULL,
    event_id TEXT NOT NULL,
    payload TEXT NOT NULL,
    reason TEXT NOT NULL,
    created REAL NOT NULL,
    died REAL NOT NULL
)""",
    "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
)
# a spool written before chunks (one row per record): its rows become chunks of one
_UPGRADE = (
    "ALTER TABLE spool RENAME TO spool_rows",
    "DROP INDEX IF EXISTS spool_due",
    _CREATE[0],
    _CREATE[1],
    "INSERT INTO spool (sink, n, payload, created, attempts, not_before, lease_owner, lease_pid, "
    "lease_until, origin, origin_pid) SELECT sink, 1, '[' || payload || ']', created, attempts, not_before, "
    "lease_owner, lease_pid, lease_until, origin, origin_pid FROM spool_rows ORDER BY seq",
    "DROP TABLE spool_rows",
    *_CREATE[2:],
)

_INSERT = """
INSERT INTO spool (sink, n, payload, created, attempts, not_before, origin, origin_pid)
VALUES (?, ?, ?, ?, ?, ?, ?, ?)
"""
_INSERT_LEASED = """
INSERT INTO spool (seq, sink, n, payload, created, attempts, not_before, origin, origin_pid,
                   lease_owner, lease_pid, lease_until)
VALUES (?, ?, ?, ?, ?, 0, ?, ?, ?, ?, ?, ?)
"""
# a part of a leased row moved to a row of its own (events to retry), unleased
_MOVE = """
INSERT INTO spool (sink, n, payload, created, attempts, not_before, origin, origin_pid)
SELECT sink, ?, ?, created, ?, ?, origin, origin_pid FROM spool WHERE seq=? AND lease_owner=?
"""
# when the earliest row not in flight here is due: unleased rows at not_before, rows leased by
# another process when that lease expires
_NEXT_DUE = """
SELECT MIN(CASE WHEN lease_until IS NULL THEN not_before ELSE MAX(not_before, lease_until) END)
FROM spool WHERE sink=? AND (lease_owner IS NULL OR lease_owner<>?)
"""
_INSERT_DEAD = "INSERT INTO dead (sink, event_id, payload, reason, created, died) VALUES (?, ?, ?, ?, ?, ?)"
# spool rows on a leaf page: (sink, n, payload, created, attempts, not_before) of the table's 12 columns
_ROW_CELLS = (12, (1, 2, 3, 4, 5, 6))

Row = tuple[str, int, str, float, int, float, str, int]
"""A new, unleased row: (sink, n, payload, created, attempts, not_before, origin, origin_pid)."""


# -- connection and schema -------------------------------------------------------


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


@contextlib.contextmanager
def snapshot(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """One read transaction: every query inside sees the same state."""
    conn.execute("BEGIN")
    try:
        yield conn
    finally:
        conn.execute("COMMIT")


def setup(conn: sqlite3.Connection) -> int:
    """WAL mode; the tables created, or a spool of one row per record upgraded to chunks; an integrity
    check (raises :class:`sqlite3.DatabaseError` on a damaged file). Returns the page size."""
    use_wal(conn, 30.0)
    with immediate(conn):
        columns = {row[1] for row in conn.execute("PRAGMA table_info(spool)")}
        for sql in _UPGRADE if "event_id" in columns else _CREATE:
            conn.execute(sql)
    (check,) = conn.execute("PRAGMA quick_check").fetchone()
    if check != "ok":
        first = str(check).replace("*** in database main ***", "").strip().splitlines()[:1]
        raise sqlite3.DatabaseError(f"database disk image is malformed: {' '.join(first)[:200]}")
    return int(conn.execute("PRAGMA page_size").fetchone()[0])


def missing_tables(conn: sqlite3.Connection) -> list[str]:
    """The spool's tables missing from the database behind ``conn`` (none: it is a spool)."""
    tables = table_names(conn)
    return sorted(t for t in TABLES if t not in tables)


def table_names(conn: sqlite3.Connection) -> set[str]:
    """The names of the tables in the database behind ``conn``."""
    return {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}


def used_bytes(conn: sqlite3.Connection, page_size: int) -> int:
    """Bytes in use (free pages not counted)."""
    pages = int(conn.execute("PRAGMA page_count").fetchone()[0])
    free = int(conn.execute("PRAGMA freelist_count").fetchone()[0])
    return (pages - free) * page_size


def file_bytes(conn: sqlite3.Connection) -> int:
    """The database's size in pages, in bytes (free pages counted)."""
    pages = int(conn.execute("PRAGMA page_count").fetchone()[0])
    size = int(conn.execute("PRAGMA page_size").fetchone()[0])
    return pages * size


# -- owners ----------------------------------------------------------------------


def lease_holders(conn: sqlite3.Connection) -> list[tuple[int, str]]:
    """(pid, owner) of every process holding a lease."""
    return conn.execute(
        "SELECT DISTINCT lease_pid, lease_owner FROM spool WHERE lease_until IS NOT NULL"
    ).fetchall()


def release_owner(conn: sqlite3.Connection, owner: str) -> None:
    """Void every lease of ``owner``."""
    conn.execute(
        "UPDATE spool SET lease_owner=NULL, lease_pid=NULL, lease_until=NULL WHERE lease_owner=?", (owner,)
    )


def origins(conn: sqlite3.Connection, besides: str) -> list[tuple[str, int]]:
    """(origin, pid) of every process but ``besides`` that added rows still waiting."""
    return conn.execute(
        "SELECT DISTINCT origin, origin_pid FROM spool WHERE origin<>?", (besides,)
    ).fetchall()


def take_over(conn: sqlite3.Connection, origin: str, owner: str, pid: int) -> None:
    """The rows ``origin`` added become ``owner``'s (process ``pid``)."""
    conn.execute("UPDATE spool SET origin=?, origin_pid=? WHERE origin=?", (owner, pid, origin))


# -- rows --------------------------------------------------------------------------


def insert(conn: sqlite3.Connection, rows: Iterable[Row]) -> None:
    """Insert new rows, unleased (in the caller's transaction)."""
    conn.executemany(_INSERT, rows)


def last_seq(conn: sqlite3.Connection) -> int:
    """The largest row number ever used (deleted rows included)."""
    found = conn.execute("SELECT seq FROM sqlite_sequence WHERE name='spool'").fetchone()
    return max(
        int(found[0]) if found else 0,
        int(conn.execute("SELECT COALESCE(MAX(seq), 0) FROM spool").fetchone()[0]),
    )


def insert_leased(conn: sqlite3.Connection, rows: Sequence[tuple[Any, ...]]) -> None:
    """Insert rows already leased: (seq, sink, n, payload, created, not_before, origin, origin_pid,
    lease_owner, lease_pid, lease_until) each."""
    conn.executemany(_INSERT_LEASED, rows)


def renew(conn: sqlite3.Connection, seq: int, owner: str, until: float) -> bool:
    """Extend ``owner``'s lease of row ``seq`` to ``until``; False when it is no longer ``owner``'s."""
    cursor = conn.execute("UPDATE spool SET lease_until=? WHERE seq=? AND lease_owner=?", (until, seq, owner))
    return bool(cursor.rowcount)


def due(conn: sqlite3.Connection, sink: str, now: float, limit: int) -> list[tuple[int, int, int, float]]:
    """(seq, n, attempts, not_before) of up to ``limit`` unleased rows of ``sink`` due at ``now``,
    earliest due first, then oldest (no payload: it is read only for the rows taken)."""
    return conn.execute(
        "SELECT seq, n, attempts, not_before FROM spool WHERE sink=? AND not_before<=? "
        "AND (lease_until IS NULL OR lease_until<?) ORDER BY not_before, seq LIMIT ?",
        (sink, now, now, limit),
    ).fetchall()


def lease(conn: sqlite3.Connection, seqs: Iterable[int], owner: str, pid: int, until: float) -> None:
    """Rows ``seqs`` become leased to ``owner`` (process ``pid``) until ``until``."""
    conn.executemany(
        "UPDATE spool SET lease_owner=?, lease_pid=?, lease_until=? WHERE seq=?",
        [(owner, pid, until, seq) for seq in seqs],
    )


def payload(conn: sqlite3.Connection, seq: int) -> Any:
    """Row ``seq``'s payload (a chunk of encoded records) as stored."""
    return conn.execute("SELECT payload FROM spool WHERE seq=?", (seq,)).fetchone()[0]


def payload_bytes(conn: sqlite3.Connection, seq: int) -> Any:
    """Row ``seq``'s payload as stored bytes (for a payload that is no valid text)."""
    return conn.execute("SELECT CAST(payload AS BLOB) FROM spool WHERE seq=?", (seq,)).fetchone()[0]


def rewrite(conn: sqlite3.Connection, seq: int, n: int, chunk: str, owner: Optional[str] = None) -> None:
    """Row ``seq`` now holds ``n`` records, ``chunk`` (only while ``owner`` leases it, when given)."""
    if owner is None:
        conn.execute("UPDATE spool SET n=?, payload=? WHERE seq=?", (n, chunk, seq))
    else:
        conn.execute("UPDATE spool SET n=?, payload=? WHERE seq=? AND lease_owner=?", (n, chunk, seq, owner))


def delete(conn: sqlite3.Connection, seq: int, owner: Optional[str] = None) -> None:
    """Delete row ``seq`` (only while ``owner`` leases it, when given)."""
    if owner is None:
        conn.execute("DELETE FROM spool WHERE seq=?", (seq,))
    else:
        conn.execute("DELETE FROM spool WHERE seq=? AND lease_owner=?", (seq, owner))


def copy_schedule(conn: sqlite3.Connection, seq: int, n: int, chunk: str) -> None:
    """A new unleased row of ``n`` records, ``chunk``, with row ``seq``'s sink, age, attempts and due time."""
    conn.execute(
        "INSERT INTO spool (sink, n, payload, created, attempts, not_before, origin, origin_pid) "
        "SELECT sink, ?, ?, created, attempts, not_before, origin, origin_pid FROM spool WHERE seq=?",
        (n, chunk, seq),
    )


def move(conn: sqlite3.Connection, parts: Iterable[tuple[int, str, int, float, int, str]]) -> None:
    """New unleased rows cut from rows leased here: (n, payload, attempts, not_before, seq, owner) each."""
    conn.executemany(_MOVE, parts)


def release(conn: sqlite3.Connection, seq: int, owner: str, attempts: int, not_before: float) -> None:
    """``owner``'s lease of row ``seq`` ends; the row is due again at ``not_before``."""
    conn.execute(
        "UPDATE spool SET attempts=?, not_before=?, lease_owner=NULL, lease_pid=NULL, lease_until=NULL "
        "WHERE seq=? AND lease_owner=?",
        (attempts, not_before, seq, owner),
    )


def release_all(conn: sqlite3.Connection, seqs: Iterable[int], owner: str) -> None:
    """``owner``'s leases of rows ``seqs`` end; the rows keep their due times."""
    conn.executemany(
        "UPDATE spool SET lease_owner=NULL, lease_pid=NULL, lease_until=NULL WHERE seq=? AND lease_owner=?",
        [(seq, owner) for seq in seqs],
    )


def pending(conn: sqlite3.Connection, sink: Optional[str] = None, origin: Optional[str] = None) -> int:
    """Records waiting, of one sink or all, added by ``origin`` or anyone."""
    clauses, params = [], []
    if sink is not None:
        clauses.append("sink=?")
        params.append(sink)
    if origin is not None:
        clauses.append("origin=?")
        params.append(origin)
    where = f" WHERE {' AND '.join(clauses)}" if clauses else ""
    return int(conn.execute(f"SELECT COALESCE(SUM(n), 0) FROM spool{where}", params).fetchone()[0])


def has_rows(conn: sqlite3.Connection, origin: str) -> bool:
    """Whether any row ``origin`` added is waiting (stops at the first: no count)."""
    return conn.execute("SELECT 1 FROM spool WHERE origin=? LIMIT 1", (origin,)).fetchone() is not None


def next_due(conn: sqlite3.Connection, sink: str, owner: str) -> Optional[float]:
    """When the earliest row of ``sink`` not leased by ``owner`` is due; None when there is none."""
    (when,) = conn.execute(_NEXT_DUE, (sink, owner)).fetchone()
    return None if when is None else float(when)


# -- dead letters ------------------------------------------------------------------


def bury(conn: sqlite3.Connection, letters: Iterable[tuple[str, str, str, str, float, int, str]]) -> None:
    """Dead letters of rows leased by their owner: (sink, event_id, payload, reason, died, seq, owner)
    each; a letter keeps its row's age."""
    conn.executemany(
        "INSERT INTO dead (sink, event_id, payload, reason, created, died) "
        "SELECT ?, ?, ?, ?, created, ? FROM spool WHERE seq=? AND lease_owner=?",
        letters,
    )


def insert_dead(conn: sqlite3.Connection, rows: Iterable[tuple[Any, ...]]) -> None:
    """Dead letters as (sink, event_id, payload, reason, created, died) each."""
    conn.executemany(_INSERT_DEAD, rows)


def dead_letters(
    conn: sqlite3.Connection, sink: Optional[str], limit: int
) -> list[tuple[str, str, str, float]]:
    """(sink, payload, reason, died) of the first ``limit`` dead letters, of one sink or all."""
    if sink is None:
        sql, params = "SELECT sink, payload, reason, died FROM dead ORDER BY seq LIMIT ?", (limit,)
    else:
        sql = "SELECT sink, payload, reason, died FROM dead WHERE sink=? ORDER BY seq LIMIT ?"
        params = (sink, limit)  # type: ignore[assignment]
    return conn.execute(sql, params).fetchall()


def dead_matching(
    conn: sqlite3.Connection, sink: Optional[str], reason: Optional[str]
) -> Iterator[tuple[int, str, str]]:
    """(seq, payload, reason) of the dead letters of ``sink`` whose reason contains ``reason`` (any case)."""
    clauses: list[str] = []
    params: list[object] = []
    if sink is not None:
        clauses.append("sink = ?")
        params.append(sink)
    if reason:
        clauses.append("instr(lower(reason), lower(?)) > 0")
        params.append(reason)
    where = f" WHERE {' AND '.join(clauses)}" if clauses else ""
    yield from conn.execute(f"SELECT seq, payload, reason FROM dead{where} ORDER BY seq", params)


def forget_dead(conn: sqlite3.Connection, seqs: Iterable[int]) -> None:
    """Delete dead letters ``seqs`` (delivered at last)."""
    conn.executemany("DELETE FROM dead WHERE seq = ?", [(seq,) for seq in seqs])


def refuse_again(conn: sqlite3.Connection, letters: Iterable[tuple[str, float, int]]) -> None:
    """Dead letters refused again: (reason, died, seq) each."""
    conn.executemany("UPDATE dead SET reason = ?, died = ? WHERE seq = ?", letters)


# -- meta --------------------------------------------------------------------------


def merge_meta(conn: sqlite3.Connection, key: str, *, add: Mapping[str, int], put: Mapping[str, Any]) -> None:
    """Merge into the JSON object at ``key`` (in the caller's transaction): counters in ``add`` summed,
    fields in ``put`` replaced."""
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


def put_meta(conn: sqlite3.Connection, rows: Iterable[tuple[Any, ...]]) -> None:
    """Meta rows as (key, value) each, replacing those there."""
    conn.executemany("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", rows)


def meta(conn: sqlite3.Connection, key: str) -> Optional[str]:
    """The meta value at ``key``; None when there is none."""
    row = conn.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
    return None if row is None else str(row[0])


def meta_under(conn: sqlite3.Connection, prefix: str) -> list[tuple[str, str]]:
    """(key, value) of the meta rows whose key starts with ``prefix``."""
    return conn.execute(
        "SELECT key, value FROM meta WHERE substr(key, 1, ?) = ?", (len(prefix), prefix)
    ).fetchall()


# -- status (``usagetap status``) --------------------------------------------------


def waiting_by_sink(conn: sqlite3.Connection) -> list[tuple[str, int, float, int]]:
    """(sink, records, oldest created, most attempts) per sink."""
    return conn.execute(
        "SELECT sink, SUM(n), MIN(created), MAX(attempts) FROM spool GROUP BY sink"
    ).fetchall()


def due_by_sink(conn: sqlite3.Connection, now: float) -> list[tuple[str, int, int, Optional[float]]]:
    """(sink, records due, records in backoff, next due time) per sink, of rows not leased at ``now``."""
    return conn.execute(
        "SELECT sink, SUM(CASE WHEN not_before <= :now THEN n ELSE 0 END), "
        "SUM(CASE WHEN not_before > :now THEN n ELSE 0 END), "
        "MIN(CASE WHEN not_before > :now THEN not_before END) "
        "FROM spool WHERE lease_until IS NULL OR lease_until < :now GROUP BY sink",
        {"now": now},
    ).fetchall()


def leases_by_sink(conn: sqlite3.Connection, now: float) -> list[tuple[str, Any, int, float]]:
    """(sink, pid, records, lease expiry) per sink and leasing process, of leases live at ``now``."""
    return conn.execute(
        "SELECT sink, lease_pid, SUM(n), MAX(lease_until) FROM spool "
        "WHERE lease_until >= ? GROUP BY sink, lease_pid ORDER BY sink, lease_pid",
        (now,),
    ).fetchall()


def stale_by_sink(conn: sqlite3.Connection, now: float) -> list[tuple[str, int]]:
    """(sink, records) of leases expired at ``now``."""
    return conn.execute(
        "SELECT sink, SUM(n) FROM spool WHERE lease_until < ? GROUP BY sink", (now,)
    ).fetchall()


def dead_by_reason(conn: sqlite3.Connection) -> list[tuple[str, str, int, float]]:
    """(sink, reason, count, latest death) per sink and reason, the most frequent first."""
    return conn.execute(
        "SELECT sink, reason, COUNT(*), MAX(died) FROM dead GROUP BY sink, reason "
        "ORDER BY sink, COUNT(*) DESC, reason"
    ).fetchall()


# -- a damaged spool ---------------------------------------------------------------


def damaged_rows(conn: sqlite3.Connection) -> tuple[list[tuple[Any, ...]], int]:
    """(rowid, sink, n, payload bytes, created, attempts, not_before) of every readable spool row, the
    b-tree read around damaged pages and intact leaf pages scanned for the rest; and how many rows
    could not be read at all."""
    found, lost = readable_rows(
        conn,
        "spool",
        ("sink", "n", "CAST(payload AS BLOB)", "created", "attempts", "not_before"),
        index="spool_due",
    )
    if lost:
        scanned = scan_pages(file_of(conn), set(lost), _ROW_CELLS)
        found.extend((rowid, *scanned[rowid]) for rowid in lost if rowid in scanned)
        lost = [rowid for rowid in lost if rowid not in scanned]
    return found, len(lost)


def damaged_dead(conn: sqlite3.Connection) -> tuple[list[tuple[Any, ...]], int]:
    """(rowid, sink, event_id, payload, reason, created, died) of every readable dead letter, and how
    many could not be read."""
    rows, lost = readable_rows(conn, "dead", ("sink", "event_id", "payload", "reason", "created", "died"))
    return rows, len(lost)


def damaged_meta(conn: sqlite3.Connection) -> list[tuple[Any, ...]]:
    """(key, value) of every readable meta row."""
    rows, _ = readable_rows(conn, "meta", ("key", "value"))
    return [row[1:] for row in rows]
