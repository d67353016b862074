"""The ledger's read side, one interface with two implementations: a SQLite file or PostgreSQL.

``usagetap report``, ``replay`` and ``status``, and the spend limits start from, read a
:class:`LedgerSource`; :func:`open_ledger` picks the implementation from the target
(``--db`` or ``$USAGETAP_DB``): a ``postgresql://`` URL is the shared ledger of a fleet,
anything else a file.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Optional, Protocol

from ._record import TOKEN_FIELDS, UsageRecord
from .db import ledger as sqlite_ledger
from .db import ledger_pg
from .errors import ConfigurationError

if TYPE_CHECKING:
    import psycopg

__all__ = ["LedgerError", "LedgerSource", "PostgresLedger", "SqliteLedger", "open_ledger", "postgres"]

PastSpend = tuple[int, int, Decimal, int]
ReconcileRow = tuple[str, str, dict[str, Any], int, int, Optional[Decimal]]

INSTALL_HINT = "PostgreSQL ledgers need psycopg: pip install 'usagetap[postgres]'"


class LedgerError(Exception):
    """The ledger could not be opened or read (the database's own error, as text)."""


class LedgerSource(Protocol):
    """What reads a ledger. ``name`` says which one, with no secret in it."""

    name: str

    def count(self, since: Optional[date], until: Optional[date]) -> int:
        """How many records fall within the UTC days ``since`` .. ``until``."""

    def records_between(self, since: Optional[date], until: Optional[date]) -> Iterator[UsageRecord]:
        """The records within the UTC days ``since`` .. ``until``, oldest first."""

    def aggregate(
        self, by: Sequence[str], since: Optional[date], until: Optional[date]
    ) -> Iterator[tuple[Any, ...]]:
        """Rows of: the ``by`` keys (group keys or dimension names), calls, the token sums
        (:data:`TOKEN_FIELDS`), the cost of the priced calls (None or a decimal string/Decimal),
        unpriced calls, calls with a billed cost, their billed cost (None or a decimal). A group may
        come in parts."""

    def dimension_names(self) -> list[str]:
        """The names of the dimensions the ledger's records carry, sorted."""

    def reconcile_rows(self, provider: str, since: date, until: date) -> list[ReconcileRow]:
        """``provider``'s records within the UTC days ``since`` .. ``until``, one row per record (see
        :func:`usagetap.db.ledger.reconcile_rows`)."""

    def spent(self, customer: str, starts: Sequence[Optional[datetime]], until: datetime) -> list[PastSpend]:
        """``customer``'s calls, tokens, cost and unpriced calls in each window ``[start, until)``."""

    def close(self) -> None:
        """Release the connection."""


def postgres() -> Any:
    """The psycopg module, or :class:`ConfigurationError` saying how to install it."""
    try:
        import psycopg
    except ImportError:
        raise ConfigurationError(INSTALL_HINT) from None
    return psycopg


class SqliteLedger:
    """A ledger file (:mod:`usagetap.db.ledger`)."""

    def __init__(self, conn: sqlite3.Connection, name: str) -> None:
        self.conn = conn
        self.name = name

    def count(self, since: Optional[date], until: Optional[date]) -> int:
        return sqlite_ledger.count(self.conn, since, until)

    def records_between(self, since: Optional[date], until: Optional[date]) -> Iterator[UsageRecord]:
        return sqlite_ledger.records_between(self.conn, since, until)

    def aggregate(
        self, by: Sequence[str], since: Optional[date], until: Optional[date]
    ) -> Iterator[tuple[Any, ...]]:
        width = len(by)
        for values in sqlite_ledger.grouped(self.conn, by, (*TOKEN_FIELDS, "billed_cost"), since, until):
            billed, cost = values[-2], values[-1]
            yield (
                *values[:width],
                1,
                *values[width:-2],
                cost,
                int(cost is None),
                int(billed is not None),
                billed,
            )

    def dimension_names(self) -> list[str]:
        return sqlite_ledger.dimension_names(self.conn)

    def reconcile_rows(self, provider: str, since: date, until: date) -> list[ReconcileRow]:
        return sqlite_ledger.reconcile_rows(self.conn, provider, since, until)

    def spent(self, customer: str, starts: Sequence[Optional[datetime]], until: datetime) -> list[PastSpend]:
        return sqlite_ledger.spent_in_windows(self.name, customer, starts, until)

    def close(self) -> None:
        self.conn.close()


class PostgresLedger:
    """A PostgreSQL ledger (:mod:`usagetap.db.ledger_pg`); its errors are raised as :class:`LedgerError`."""

    def __init__(self, conn: psycopg.Connection[Any], url: str) -> None:
        self.conn = conn
        self.name = ledger_pg.redact(url)

    def count(self, since: Optional[date], until: Optional[date]) -> int:
        with _translated():
            return ledger_pg.count(self.conn, since, until)

    def records_between(self, since: Optional[date], until: Optional[date]) -> Iterator[UsageRecord]:
        with _translated():
            yield from ledger_pg.records_between(self.conn, since, until)

    def aggregate(
        self, by: Sequence[str], since: Optional[date], until: Optional[date]
    ) -> Iterator[tuple[Any, ...]]:
        with _translated():
            yield from ledger_pg.aggregate(self.conn, by, since, until)

    def dimension_names(self) -> list[str]:
        with _translated():
            return ledger_pg.dimension_names(self.conn)

    def reconcile_rows(self, provider: str, since: date, until: date) -> list[ReconcileRow]:
        with _translated():
            return ledger_pg.reconcile_rows(self.conn, provider, since, until)

    def spent(self, customer: str, starts: Sequence[Optional[datetime]], until: datetime) -> list[PastSpend]:
        with _translated():
            return ledger_pg.spent_in_windows(self.conn, customer, starts, until)

    def close(self) -> None:
        self.conn.close()


class _translated:
    """Raise psycopg's errors as :class:`LedgerError` (their text: no password is in it)."""

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: Optional[type[BaseException]], exc: Optional[BaseException], tb: Any) -> None:
        if exc is not None and isinstance(exc, postgres().Error):
            raise LedgerError(" ".join(str(exc).split()) or type(exc).__name__) from None


def open_ledger(target: str, *, connect_timeout: float = 10.0) -> LedgerSource:
    """The existing ledger ``target`` names, for reading.

    Raises FileNotFoundError when there is none (no file; no ``usage`` table in the database),
    :class:`LedgerError` when it cannot be opened, :class:`ConfigurationError` without psycopg.
    """
    if not ledger_pg.is_url(target):
        try:
            return SqliteLedger(sqlite_ledger.connect(target, create=False), target)
        except sqlite3.Error as exc:
            raise LedgerError(str(exc)) from None
    psycopg = postgres()
    with _translated():
        conn = psycopg.connect(target, autocommit=True, connect_timeout=max(1, round(connect_timeout)))
    source = PostgresLedger(conn, target)
    with _translated():
        present = ledger_pg.exists(conn)
    if not present:
        conn.close()
        raise FileNotFoundError(f"no ledger (no usage table) in {source.name}")
    return source
