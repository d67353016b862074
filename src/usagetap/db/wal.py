"""WAL mode for a SQLite file several processes may open at once."""

from __future__ import annotations

import sqlite3
import time

__all__ = ["use_wal"]

_PAUSE = 0.01


def use_wal(conn: sqlite3.Connection, timeout: float) -> None:
    """Put the database behind ``conn`` in WAL mode (``synchronous=NORMAL``), waiting up to ``timeout``
    seconds while another process holds it: switching the journal mode of a file another connection is
    setting up fails at once with "database is locked" (SQLite's busy handler does not wait for it)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            break
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() >= deadline:
                raise
            time.sleep(_PAUSE)
    conn.execute("PRAGMA synchronous=NORMAL")
