"""The embedded default sink: a local SQLite ledger that ``usagetap report`` reads, or a PostgreSQL
ledger a fleet shares (``USAGETAP_DB=postgresql://...``).

One row per event, keyed on ``event_id`` (a replayed event is a duplicate, not
a second row). Costs are stored as decimal strings (SQLite) or ``numeric``
(PostgreSQL) so sums stay exact.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Optional, Union

from .._forksafe import SQLITE
from .._record import TOKEN_FIELDS, UsageRecord
from ..db.ledger import COLUMNS, connect, insert, iter_records, spent_in_windows
from .base import BaseSink, Outcomes

if TYPE_CHECKING:
    from ._postgres import PostgresStore

__all__ = ["COLUMNS", "DEFAULT_PATH", "Ledger", "connect", "default_path", "iter_records"]

DEFAULT_PATH = os.path.join(".usagetap", "ledger.db")


def default_path() -> str:
    """``$USAGETAP_DB``, or ``./.usagetap/ledger.db`` (in a read-only working directory, the
    per-user data directory: see :mod:`usagetap._paths`)."""
    from .._paths import default_dir

    return os.environ.get("USAGETAP_DB") or os.path.join(default_dir(), "ledger.db")


_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1


def _unstorable(r: UsageRecord) -> Optional[str]:
    """Why SQLite cannot store ``r`` exactly (a count outside 64-bit integers), or None."""
    for name in TOKEN_FIELDS:
        value = getattr(r, name)
        if not _INT64_MIN <= value <= _INT64_MAX:
            return f"ledger: {name} {value} does not fit a 64-bit integer column"
    return None


class Ledger(BaseSink):
    """Write records to a local SQLite ledger (the default when nothing is configured), or to the
    PostgreSQL database ``path`` names when it is a ``postgresql://`` URL.

    ``path`` defaults to ``$USAGETAP_DB`` or ``./.usagetap/ledger.db``. A PostgreSQL ledger is
    never replaced by a file: while it cannot be reached, records wait in the spool.
    """

    name = "ledger"
    max_batch = 1000
    local = True

    def __init__(self, path: Optional[Union[str, os.PathLike[str]]] = None) -> None:
        self.path = str(path) if path is not None else default_path()
        self._conn: Optional[sqlite3.Connection] = None
        self._postgres: Optional[PostgresStore] = None
        if self.path.startswith(("postgresql://", "postgres://")):
            from ._postgres import PostgresStore

            self._postgres = PostgresStore(self.path)
            self.local = False

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            self._conn = connect(self.path)
        return self._conn

    def send(self, records: Sequence[UsageRecord]) -> Outcomes:
        """Insert the records in one transaction; an event id already in the ledger is a duplicate.

        A record SQLite cannot store exactly (a count beyond 64 bits) is dead-lettered, the others written.
        """
        dead = {r.event_id: why for r in records if (why := _unstorable(r)) is not None}
        good = [r for r in records if r.event_id not in dead]
        if self._postgres is not None:
            inserted = self._postgres.insert(good)
        else:
            with SQLITE:
                inserted = insert(self._connection(), good)
        outcomes = Outcomes.all_delivered(good, duplicates=len(good) - inserted)
        outcomes.dead = dead
        return outcomes

    def records(self) -> list[UsageRecord]:
        """Every record in the ledger, oldest first."""
        if self._postgres is not None:
            return self._postgres.records()
        with SQLITE:
            return list(iter_records(self._connection()))

    def spent(
        self, customer: str, starts: Sequence[Optional[datetime]], until: datetime
    ) -> list[tuple[int, int, Decimal, int]]:
        """``customer``'s calls, tokens, cost and unpriced calls in each window ``[start, until)`` (a
        None start: from the first record), in one read-only query; the spend budget limits start from.
        """
        if self._postgres is not None:
            return self._postgres.spent(customer, starts, until)
        if not os.path.exists(self.path):
            return [(0, 0, Decimal(0), 0) for _ in starts]
        with SQLITE:
            return spent_in_windows(self.path, customer, starts, until)

    def close(self) -> None:
        """Close the connection(s) (reopened on the next send)."""
        if self._postgres is not None:
            self._postgres.close()
        with SQLITE:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    def after_fork(self) -> None:
        """In a forked child: forget the parent's PostgreSQL connections (they stay the parent's)."""
        if self._postgres is not None:
            self._postgres.after_fork()

    def __repr__(self) -> str:
        if self._postgres is not None:
            return f"Ledger(path={self._postgres.name!r})"
        return f"Ledger(path={self.path!r})"
