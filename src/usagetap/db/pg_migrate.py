"""Versioned schema migrations for PostgreSQL: a ``usagetap_migrations`` table and an advisory lock.

Each component (``ledger``, ...) has an ordered list of migrations, each a list of statements.
:func:`migrate` applies the ones a database has not seen, in one transaction that holds a
transaction-level advisory lock: processes starting at once wait for each other, and only the
first applies anything.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Optional

if TYPE_CHECKING:
    import psycopg

__all__ = ["LOCK_KEY", "applied_version", "migrate"]

LOCK_KEY = "usagetap:migrations"
"""Hashed (``hashtext``) into the advisory lock every usagetap migration holds."""

_TABLE = """CREATE TABLE IF NOT EXISTS usagetap_migrations (
    component TEXT NOT NULL,
    version INTEGER NOT NULL,
    applied_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (component, version)
)"""


def applied_version(conn: psycopg.Connection[Any], component: str) -> int:
    """The highest migration of ``component`` applied to the database (0: none, or no table yet)."""
    row = conn.execute("SELECT to_regclass('usagetap_migrations') IS NOT NULL").fetchone()
    if row is None or not row[0]:
        return 0
    row = conn.execute(
        "SELECT COALESCE(MAX(version), 0) FROM usagetap_migrations WHERE component = %s", (component,)
    ).fetchone()
    return int(row[0]) if row is not None else 0


def migrate(
    conn: psycopg.Connection[Any],
    component: str,
    migrations: Sequence[Sequence[str]],
    *,
    upto: Optional[int] = None,
    after: Sequence[str] = (),
) -> int:
    """Apply ``component``'s migrations not applied yet (version ``i + 1`` is ``migrations[i]``, up to
    ``upto``), then the idempotent statements ``after``; return the version the database is at."""
    target = len(migrations) if upto is None else upto
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (LOCK_KEY,))
        conn.execute(_TABLE)
        current = applied_version(conn, component)
        for version in range(current + 1, target + 1):
            for statement in migrations[version - 1]:
                conn.execute(statement)
            conn.execute(
                "INSERT INTO usagetap_migrations (component, version) VALUES (%s, %s)", (component, version)
            )
        for statement in after:
            conn.execute(statement)
    return max(current, target)
