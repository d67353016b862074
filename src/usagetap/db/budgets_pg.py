"""The PostgreSQL budget store: reservations and settled usage shared by every machine using the database.

A reservation is one transaction that first takes a transaction-level advisory lock on the
customer (``pg_advisory_xact_lock(hashtextextended(customer, 0))``): reservations for one customer
are serialised across the fleet, other customers' run in parallel. Time is the server's clock, so
machines with skewed clocks agree on when a reservation expires. Connect, statement and lock waits
are bounded by ``timeout``. The tables are created or migrated on first use, versioned like the
ledger's (:mod:`.pg_migrate`, component ``budgets``). psycopg 3 is imported when the store is made
(``usagetap[postgres]``).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Optional

from ..budgets.base import Charge, Refusal, StoreUnavailable, Used, distinct, passes
from .pg_migrate import migrate

if TYPE_CHECKING:
    import psycopg

__all__ = ["COMPONENT", "MIGRATIONS", "PostgresBudgets"]

COMPONENT = "budgets"
"""The budget store's name in ``usagetap_migrations`` (:mod:`.pg_migrate`)."""

MIGRATIONS: tuple[tuple[str, ...], ...] = (
    (
        "CREATE TABLE IF NOT EXISTS usagetap_budget_used (bucket TEXT PRIMARY KEY, "
        "calls BIGINT NOT NULL DEFAULT 0, tokens BIGINT NOT NULL DEFAULT 0, nanos BIGINT NOT NULL DEFAULT 0, "
        "unpriced BIGINT NOT NULL DEFAULT 0, expires DOUBLE PRECISION)",
        "CREATE TABLE IF NOT EXISTS usagetap_budget_holds (hold TEXT NOT NULL, bucket TEXT NOT NULL, "
        "tokens BIGINT NOT NULL, nanos BIGINT NOT NULL, expires DOUBLE PRECISION NOT NULL, "
        "PRIMARY KEY (hold, bucket))",
        "CREATE INDEX IF NOT EXISTS usagetap_budget_holds_bucket ON usagetap_budget_holds (bucket)",
        "CREATE INDEX IF NOT EXISTS usagetap_budget_holds_expires ON usagetap_budget_holds (expires)",
    ),
)
"""The budget store's migrations: version ``i + 1`` is ``MIGRATIONS[i]``. Append; never edit one.
Version 1 is idempotent: it adopts the tables of a store made before migrations were recorded."""

_NOW = "extract(epoch from clock_timestamp())"
_MAX_IDLE = 8


class PostgresBudgets:
    """A :class:`~usagetap.budgets.base.BudgetStore` in the PostgreSQL database at ``url``.

    Connections are pooled (up to 8 idle); ``timeout`` (seconds) bounds connecting, each
    statement and each lock wait; past it the store is unavailable.
    """

    def __init__(self, url: str, *, timeout: float = 2.0) -> None:
        import psycopg  # noqa: F401  (usagetap[postgres]: fail here, when the store is made)

        self._url = url
        self.timeout = timeout
        self._lock = threading.Lock()
        self._idle: list[psycopg.Connection[Any]] = []
        self._schema_ready = False
        self._pid = os.getpid()

    def __repr__(self) -> str:
        return "PostgresBudgets(<url>)"

    @contextmanager
    def _connection(self) -> Iterator[psycopg.Connection[Any]]:
        import psycopg

        if self._pid != os.getpid():  # a forked child: the parent's connections and lock are not its own
            self._lock, self._idle, self._pid = threading.Lock(), [], os.getpid()
        with self._lock:
            conn = self._idle.pop() if self._idle else None
        try:
            if conn is None or conn.closed:
                ms = max(1, int(self.timeout * 1000))
                conn = psycopg.connect(
                    self._url,
                    autocommit=True,
                    connect_timeout=max(1, round(self.timeout)),
                    options=f"-c statement_timeout={ms} -c lock_timeout={ms}",
                )
                if not self._schema_ready:
                    migrate(conn, COMPONENT, MIGRATIONS)
                    self._schema_ready = True
            yield conn
        except psycopg.Error as exc:
            if conn is not None:
                conn.close()
            raise StoreUnavailable(f"PostgreSQL budget store: {type(exc).__name__}: {exc}") from exc
        else:
            with self._lock:
                if len(self._idle) < _MAX_IDLE:
                    self._idle.append(conn)
                    conn = None
            if conn is not None:
                conn.close()

    def reserve(self, hold: str, charges: tuple[Charge, ...], ttl: float) -> Optional[Refusal]:
        with self._connection() as conn, conn.transaction():
            _lock_customer(conn, charges)
            conn.execute(f"DELETE FROM usagetap_budget_holds WHERE expires <= {_NOW}")
            for index, charge in enumerate(charges):
                used = _used(conn, charge.window)
                if passes(charge, used):
                    return Refusal(index, used)
            with conn.cursor() as cursor:
                cursor.executemany(
                    "INSERT INTO usagetap_budget_holds (hold, bucket, tokens, nanos, expires) "
                    f"VALUES (%s, %s, %s, %s, {_NOW} + %s) ON CONFLICT (hold, bucket) DO UPDATE SET "
                    "tokens = usagetap_budget_holds.tokens + excluded.tokens, "
                    "nanos = usagetap_budget_holds.nanos + excluded.nanos",
                    [(hold, c.bucket, c.tokens, c.nanos, ttl) for c in charges],
                )
        return None

    def settle(self, hold: str, charges: tuple[Charge, ...], actual: Used) -> None:
        with self._connection() as conn, conn.transaction():
            _lock_customer(conn, charges)
            conn.execute("DELETE FROM usagetap_budget_holds WHERE hold = %s", (hold,))
            with conn.cursor() as cursor:
                cursor.executemany(
                    "INSERT INTO usagetap_budget_used (bucket, calls, tokens, nanos, unpriced, expires) "
                    "VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (bucket) DO UPDATE SET "
                    "calls = usagetap_budget_used.calls + excluded.calls, "
                    "tokens = usagetap_budget_used.tokens + excluded.tokens, "
                    "nanos = usagetap_budget_used.nanos + excluded.nanos, "
                    "unpriced = usagetap_budget_used.unpriced + excluded.unpriced",
                    [
                        (c.bucket, actual.calls, actual.tokens, actual.nanos, actual.unpriced, c.expires)
                        for c in distinct(charges)
                    ],
                )
            conn.execute(f"DELETE FROM usagetap_budget_used WHERE expires <= {_NOW}")

    def release(self, hold: str, charges: tuple[Charge, ...]) -> None:
        with self._connection() as conn:
            conn.execute("DELETE FROM usagetap_budget_holds WHERE hold = %s", (hold,))

    def used(self, window: tuple[str, ...]) -> Used:
        with self._connection() as conn:
            return _used(conn, window)

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
        if self._pid == os.getpid():
            for conn in idle:
                conn.close()


def _lock_customer(conn: psycopg.Connection[Any], charges: tuple[Charge, ...]) -> None:
    """Serialise this transaction with every other one on the same customer (the buckets' hash tag)."""
    tag = charges[0].bucket.split("|", 1)[0]
    conn.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", (tag,))


def _used(conn: psycopg.Connection[Any], window: tuple[str, ...]) -> Used:
    buckets = list(window)
    row = conn.execute(
        "SELECT coalesce(sum(calls), 0), coalesce(sum(tokens), 0), coalesce(sum(nanos), 0), "
        "coalesce(sum(unpriced), 0) FROM usagetap_budget_used WHERE bucket = ANY(%s)",
        (buckets,),
    ).fetchone()
    held = conn.execute(
        "SELECT coalesce(sum(tokens), 0), coalesce(sum(nanos), 0) FROM usagetap_budget_holds "
        f"WHERE bucket = ANY(%s) AND expires > {_NOW}",
        (buckets,),
    ).fetchone()
    assert row is not None and held is not None
    return Used(*(int(v) for v in row), *(int(v) for v in held))
