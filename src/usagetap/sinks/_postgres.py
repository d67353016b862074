"""The Ledger sink's PostgreSQL side: a psycopg_pool pool, the schema on first use, loud failures.

A database that cannot be reached, or refuses a statement for a reason that is not the records'
(a lost connection, a dropped table, a deadlock), raises ``ConnectionError``: the delivery worker
takes it as transient, so the records wait in the spool, and logs and counts it (``usagetap
status`` shows it). Only a record PostgreSQL finds bad itself (a data or integrity error) is
the batch's fault. Nothing is ever written to a local file instead.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Optional, TypeVar

from .._record import UsageRecord
from ..db import ledger_pg
from ..errors import ConfigurationError

if TYPE_CHECKING:
    from collections.abc import Callable

    import psycopg
    from psycopg_pool import ConnectionPool

__all__ = ["CONNECT_TIMEOUT", "POOL_TIMEOUT", "PostgresStore"]

POOL_TIMEOUT = 5.0
"""Seconds a send waits for a pooled connection before the batch is retried later."""
CONNECT_TIMEOUT = 5
"""Seconds one connection attempt may take (libpq's ``connect_timeout``)."""
POOL_SIZE = 2
"""Connections per process: the worker's sends are one at a time; the second serves reads."""

_T = TypeVar("_T")


def _modules() -> tuple[Any, Any]:
    try:
        import psycopg
        import psycopg_pool
    except ImportError:
        raise ConfigurationError(
            "USAGETAP_DB is a PostgreSQL URL but psycopg is not installed: pip install 'usagetap[postgres]'"
        ) from None
    return psycopg, psycopg_pool


class PostgresStore:
    """The records of one PostgreSQL ledger, through a small pool (opened on first use)."""

    def __init__(self, url: str, *, timeout: float = POOL_TIMEOUT) -> None:
        self._psycopg, self._pools = _modules()
        self._url = url
        self.name = ledger_pg.redact(url)
        self.timeout = timeout
        self._lock = threading.Lock()
        self._pool: Optional[ConnectionPool[Any]] = None
        self._migrated = False

    def _get_pool(self) -> ConnectionPool[Any]:
        with self._lock:
            if self._pool is None:
                pool = self._pools.ConnectionPool(
                    self._url,
                    min_size=1,
                    max_size=POOL_SIZE,
                    open=False,
                    timeout=self.timeout,
                    kwargs={"autocommit": True, "connect_timeout": CONNECT_TIMEOUT},
                    name="usagetap-ledger",
                )
                pool.open(wait=False)
                self._pool = pool
            return self._pool

    def _run(self, work: Callable[[psycopg.Connection[Any]], _T]) -> _T:
        """``work(conn)`` on a pooled connection, the schema created or migrated first (once)."""
        try:
            with self._get_pool().connection() as conn:
                if not self._migrated:
                    ledger_pg.ensure_schema(conn)
                    self._migrated = True
                return work(conn)
        except (self._psycopg.DataError, self._psycopg.IntegrityError):
            raise
        except (self._psycopg.Error, self._pools.PoolTimeout) as exc:
            if isinstance(exc, self._psycopg.errors.UndefinedTable):
                self._migrated = False
            reason = " ".join(str(exc).split()) or type(exc).__name__
            raise ConnectionError(f"PostgreSQL ledger {self.name}: {type(exc).__name__}: {reason}") from None

    def insert(self, records: Sequence[UsageRecord]) -> int:
        """Insert ``records`` in one transaction; how many were new (the rest: duplicate event ids)."""
        if not records:
            return 0
        return self._run(lambda conn: ledger_pg.insert(conn, records))

    def records(self) -> list[UsageRecord]:
        """Every record, oldest first."""
        return self._run(lambda conn: list(ledger_pg.records_between(conn, None, None)))

    def spent(
        self, customer: str, starts: Sequence[Optional[datetime]], until: datetime
    ) -> list[tuple[int, int, Decimal, int]]:
        """``customer``'s calls, tokens, cost and unpriced calls in each window ``[start, until)``."""
        return self._run(lambda conn: ledger_pg.spent_in_windows(conn, customer, starts, until))

    def close(self) -> None:
        """Close the pool (a new one opens on the next use)."""
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.close(timeout=self.timeout)

    def after_fork(self) -> None:
        """Drop the parent's pool unclosed: its sockets are the parent's."""
        self._lock = threading.Lock()
        self._pool = None
