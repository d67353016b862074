"""The SQLite budget store: reservations and settled usage in one file, shared by one machine's processes.

Each reservation is one transaction opened with ``BEGIN IMMEDIATE`` (the file's write lock, taken
before anything is read), so processes and threads reserving at once are serialised; WAL mode lets
readers go on meanwhile. ``budget_holds`` holds live reservations (dropped on settle or release,
ignored and purged once expired); ``budget_used`` the settled usage per bucket; ``budget_seeds``
the buckets already seeded with the spend a ledger held before the store first saw them.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Optional, Union

from ..budgets.base import Charge, Refusal, Seed, StoreUnavailable, Used, distinct, passes
from .spool import immediate
from .wal import use_wal

__all__ = ["SQLiteBudgets"]

_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS budget_used (bucket TEXT PRIMARY KEY, calls INTEGER NOT NULL DEFAULT 0, "
    "tokens INTEGER NOT NULL DEFAULT 0, nanos INTEGER NOT NULL DEFAULT 0, "
    "unpriced INTEGER NOT NULL DEFAULT 0, expires REAL)",
    "CREATE TABLE IF NOT EXISTS budget_holds (hold TEXT NOT NULL, bucket TEXT NOT NULL, "
    "tokens INTEGER NOT NULL, nanos INTEGER NOT NULL, expires REAL NOT NULL, PRIMARY KEY (hold, bucket))",
    "CREATE INDEX IF NOT EXISTS budget_holds_bucket ON budget_holds (bucket)",
    "CREATE INDEX IF NOT EXISTS budget_holds_expires ON budget_holds (expires)",
    "CREATE INDEX IF NOT EXISTS budget_used_expires ON budget_used (expires)",
    "CREATE TABLE IF NOT EXISTS budget_seeds (bucket TEXT PRIMARY KEY, expires REAL)",
)
_ADD_USED = (
    "INSERT INTO budget_used (bucket, calls, tokens, nanos, unpriced, expires) "
    "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (bucket) DO UPDATE SET "
    "calls = calls + excluded.calls, tokens = tokens + excluded.tokens, "
    "nanos = nanos + excluded.nanos, unpriced = unpriced + excluded.unpriced"
)


def _marks(n: int) -> str:
    return ",".join("?" * n)


class SQLiteBudgets:
    """A :class:`~usagetap.budgets.base.BudgetStore` in the SQLite file at ``path``.

    ``timeout`` bounds the wait for the file's lock (seconds); past it the store is unavailable.
    """

    def __init__(self, path: Union[str, os.PathLike[str]], *, timeout: float = 2.0) -> None:
        self.path = Path(path)
        self.timeout = timeout
        self._pid = -1
        self._lock = threading.Lock()
        self._conn: Optional[sqlite3.Connection] = None

    def __repr__(self) -> str:
        return f"SQLiteBudgets({str(self.path)!r})"

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None or self._pid != os.getpid():
            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(
                str(self.path), timeout=self.timeout, check_same_thread=False, isolation_level=None
            )
            use_wal(conn, self.timeout)
            for statement in _SCHEMA:
                conn.execute(statement)
            self._conn, self._pid = conn, os.getpid()
        return self._conn

    def _locked(self) -> threading.Lock:
        if self._pid != os.getpid():  # a forked child: the parent's lock may be held
            self._lock = threading.Lock()
        return self._lock

    def open(self) -> None:
        """Open the file now (making it and its directory); :class:`StoreUnavailable` if it cannot be."""
        with self._locked():
            try:
                self._connection()
            except (sqlite3.Error, OSError) as exc:
                raise StoreUnavailable(f"SQLite budget store {self.path}: {exc}") from exc

    @contextlib.contextmanager
    def _open(self) -> Iterator[sqlite3.Connection]:
        """The connection, under this store's lock; SQLite's errors raised as :class:`StoreUnavailable`."""
        with self._locked():
            try:
                yield self._connection()
            except sqlite3.Error as exc:
                raise StoreUnavailable(f"SQLite budget store {self.path}: {exc}") from exc

    def seed(self, seeds: Sequence[Seed]) -> None:
        """Add each seed's usage to its bucket unless that bucket was seeded before, by any process."""
        with self._open() as conn, immediate(conn):
            conn.execute("DELETE FROM budget_seeds WHERE expires <= ?", (time.time(),))
            for seed in seeds:
                new = conn.execute(
                    "INSERT OR IGNORE INTO budget_seeds (bucket, expires) VALUES (?, ?)",
                    (seed.bucket, seed.expires),
                ).rowcount
                if new:
                    u = seed.used
                    conn.execute(
                        _ADD_USED, (seed.bucket, u.calls, u.tokens, u.nanos, u.unpriced, seed.expires)
                    )

    def reserve(self, hold: str, charges: tuple[Charge, ...], ttl: float) -> Optional[Refusal]:
        with self._open() as conn, immediate(conn):
            now = time.time()
            conn.execute("DELETE FROM budget_holds WHERE expires <= ?", (now,))
            for index, charge in enumerate(charges):
                used = _used(conn, charge.window)
                if passes(charge, used):
                    return Refusal(index, used)
            conn.executemany(
                "INSERT INTO budget_holds (hold, bucket, tokens, nanos, expires) "
                "VALUES (?, ?, ?, ?, ?) "
                "ON CONFLICT (hold, bucket) DO UPDATE SET tokens = tokens + excluded.tokens, "
                "nanos = nanos + excluded.nanos",
                [(hold, c.bucket, c.tokens, c.nanos, now + ttl) for c in charges],
            )
        return None

    def settle(self, hold: str, charges: tuple[Charge, ...], actual: Used) -> None:
        with self._open() as conn, immediate(conn):
            conn.execute("DELETE FROM budget_holds WHERE hold = ?", (hold,))
            conn.executemany(
                _ADD_USED,
                [
                    (c.bucket, actual.calls, actual.tokens, actual.nanos, actual.unpriced, c.expires)
                    for c in distinct(charges)
                ],
            )
            conn.execute("DELETE FROM budget_used WHERE expires <= ?", (time.time(),))

    def release(self, hold: str, charges: tuple[Charge, ...]) -> None:
        with self._open() as conn:
            conn.execute("DELETE FROM budget_holds WHERE hold = ?", (hold,))

    def used(self, window: tuple[str, ...]) -> Used:
        with self._open() as conn:
            conn.execute("DELETE FROM budget_holds WHERE expires <= ?", (time.time(),))
            return _used(conn, window)

    def close(self) -> None:
        with self._locked():
            if self._conn is not None and self._pid == os.getpid():
                self._conn.close()
            self._conn = None


def _used(conn: sqlite3.Connection, window: tuple[str, ...]) -> Used:
    marks = _marks(len(window))
    calls, tokens, nanos, unpriced = conn.execute(
        "SELECT coalesce(sum(calls), 0), coalesce(sum(tokens), 0), coalesce(sum(nanos), 0), "
        f"coalesce(sum(unpriced), 0) FROM budget_used WHERE bucket IN ({marks})",
        window,
    ).fetchone()
    held_tokens, held_nanos = conn.execute(
        "SELECT coalesce(sum(tokens), 0), coalesce(sum(nanos), 0) FROM budget_holds "
        f"WHERE bucket IN ({marks}) AND expires > ?",
        (*window, time.time()),
    ).fetchone()
    return Used(calls, tokens, nanos, unpriced, held_tokens, held_nanos)
