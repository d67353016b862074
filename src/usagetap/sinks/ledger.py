"""The embedded default sink: a local SQLite ledger that ``usagetap report`` reads.

One row per event, keyed on ``event_id`` (a replayed event is a duplicate, not
a second row). Costs are stored as decimal strings so sums stay exact.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
from collections.abc import Iterator, Sequence
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any, Optional, Union, cast

from .._forksafe import SQLITE
from ..record import UsageRecord
from .base import Outcomes

__all__ = ["COLUMNS", "DEFAULT_PATH", "Ledger", "connect", "default_path", "iter_records"]

DEFAULT_PATH = os.path.join(".usagetap", "ledger.db")

COLUMNS = (
    "event_id",
    "timestamp",
    "customer",
    "provider",
    "model",
    "request_model",
    "operation",
    "input_tokens",
    "output_tokens",
    "cache_read_tokens",
    "cache_write_tokens",
    "reasoning_tokens",
    "cost",
    "dimensions",
    "status",
    "response_id",
    "run_id",
    "parent_run_id",
    "price_version",
    "billed_cost",
)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS usage (
    event_id TEXT PRIMARY KEY,
    timestamp TEXT NOT NULL,
    customer TEXT,
    provider TEXT NOT NULL,
    model TEXT NOT NULL,
    request_model TEXT,
    operation TEXT NOT NULL,
    input_tokens INTEGER NOT NULL,
    output_tokens INTEGER NOT NULL,
    cache_read_tokens INTEGER NOT NULL,
    cache_write_tokens INTEGER NOT NULL,
    reasoning_tokens INTEGER NOT NULL,
    cost TEXT,
    dimensions TEXT NOT NULL,
    status TEXT NOT NULL,
    response_id TEXT,
    run_id TEXT,
    parent_run_id TEXT,
    price_version TEXT,
    billed_cost TEXT
);
CREATE INDEX IF NOT EXISTS usage_customer_ts ON usage (customer, timestamp);
CREATE INDEX IF NOT EXISTS usage_ts ON usage (timestamp);
"""

_INSERT = f"INSERT OR IGNORE INTO usage ({', '.join(COLUMNS)}) VALUES ({', '.join('?' * len(COLUMNS))})"


def default_path() -> str:
    """``$USAGETAP_DB``, or ``./.usagetap/ledger.db`` (in a read-only working directory, the
    per-user data directory: see :mod:`usagetap._paths`)."""
    from .._paths import default_dir

    return os.environ.get("USAGETAP_DB") or os.path.join(default_dir(), "ledger.db")


def connect(path: Union[str, os.PathLike[str]], *, create: bool = True) -> sqlite3.Connection:
    """Open the ledger at ``path`` (WAL mode), creating it and its schema when ``create``.

    The file holds per-customer billing data: it is created readable by its owner only
    (mode 0600, which its -wal and -shm files inherit).
    """
    target = Path(path)
    if create:
        _create_private(target)
    elif not target.exists():
        raise FileNotFoundError(f"no ledger at {target}")
    conn = sqlite3.connect(str(target), timeout=30.0, check_same_thread=False, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    if create:
        conn.executescript(_SCHEMA)
    return conn


def _create_private(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if str(path) == ":memory:":
        return
    os.close(os.open(str(path), os.O_CREAT | os.O_RDWR, 0o600))
    with contextlib.suppress(OSError):  # another user's shared ledger is not ours to change
        os.chmod(str(path), 0o600)  # an older ledger of ours was created 0644


def _row(r: UsageRecord) -> tuple[object, ...]:
    return (
        r.event_id,
        r.timestamp.astimezone(timezone.utc).isoformat(),
        r.customer,
        r.provider,
        r.model,
        r.request_model,
        r.operation,
        r.input_tokens,
        r.output_tokens,
        r.cache_read_tokens,
        r.cache_write_tokens,
        r.reasoning_tokens,
        None if r.cost is None else str(r.cost),
        json.dumps(r.dimensions, sort_keys=True, separators=(",", ":")),
        r.status,
        r.response_id,
        r.run_id,
        r.parent_run_id,
        r.price_version,
        None if r.billed_cost is None else str(r.billed_cost),
    )


_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1
_COUNTS = ("input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens", "reasoning_tokens")


def _unstorable(r: UsageRecord) -> Optional[str]:
    """Why SQLite cannot store ``r`` exactly (a count outside 64-bit integers), or None."""
    for name in _COUNTS:
        value = getattr(r, name)
        if not _INT64_MIN <= value <= _INT64_MAX:
            return f"ledger: {name} {value} does not fit a 64-bit integer column"
    return None


def iter_records(
    conn: sqlite3.Connection, where: str = "", params: Sequence[object] = ()
) -> Iterator[UsageRecord]:
    """Yield the ledger's records (optionally filtered by a SQL ``where`` clause) as :class:`UsageRecord`."""
    sql = f"SELECT {', '.join(COLUMNS)} FROM usage {('WHERE ' + where) if where else ''} ORDER BY timestamp"
    for row in conn.execute(sql, tuple(params)):
        data = dict(zip(COLUMNS, row, strict=False))
        data["dimensions"] = json.loads(data["dimensions"])
        yield UsageRecord.from_dict(data)


class _DecimalSum:
    """SQLite aggregate: the exact sum of decimal strings (the ledger stores costs as text)."""

    def __init__(self) -> None:
        self.total = Decimal(0)

    def step(self, value: Optional[str]) -> None:
        if value is not None:
            self.total += Decimal(value)

    def finalize(self) -> str:
        return str(self.total)


class Ledger:
    """Write records to a local SQLite ledger (the default when nothing is configured).

    ``path`` defaults to ``$USAGETAP_DB`` or ``./.usagetap/ledger.db``.
    """

    name = "ledger"
    max_batch = 1000
    local = True

    def __init__(self, path: Optional[Union[str, os.PathLike[str]]] = None) -> None:
        self.path = str(path) if path is not None else default_path()
        self._conn: Optional[sqlite3.Connection] = None

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
        with SQLITE:
            conn = self._connection()
            before = conn.total_changes
            conn.execute("BEGIN")
            try:
                conn.executemany(_INSERT, [_row(r) for r in good])
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
            inserted = conn.total_changes - before
        outcomes = Outcomes.all_delivered(good, duplicates=len(good) - inserted)
        outcomes.dead = dead
        return outcomes

    def records(self) -> list[UsageRecord]:
        """Every record in the ledger, oldest first."""
        with SQLITE:
            return list(iter_records(self._connection()))

    def spent(
        self, customer: str, starts: Sequence[Optional[datetime]], until: datetime
    ) -> list[tuple[int, int, Decimal, int]]:
        """``customer``'s calls, tokens, cost and unpriced calls in each window ``[start, until)`` (a
        None start: from the first record), in one read-only query; the spend budget limits start from.
        """
        if not os.path.exists(self.path):
            return [(0, 0, Decimal(0), 0) for _ in starts]
        columns: list[str] = []
        params: list[object] = []
        for start in starts:
            columns += [
                "COALESCE(SUM(timestamp >= ?), 0)",
                "COALESCE(SUM(CASE WHEN timestamp >= ? THEN input_tokens + output_tokens END), 0)",
                "usagetap_dsum(CASE WHEN timestamp >= ? THEN cost END)",
                "COALESCE(SUM(timestamp >= ? AND cost IS NULL), 0)",
            ]
            params += ["" if start is None else start.isoformat()] * 4
        sql = f"SELECT {', '.join(columns)} FROM usage WHERE customer = ? AND timestamp < ?"
        params += [customer, until.isoformat()]
        uri = Path(self.path).resolve().as_uri() + "?mode=ro"
        with SQLITE:
            conn = sqlite3.connect(uri, uri=True, timeout=5.0)
            try:
                conn.create_aggregate("usagetap_dsum", 1, cast(Any, _DecimalSum))
                row = conn.execute(sql, params).fetchone()
            finally:
                conn.close()
        return [
            (int(row[i]), int(row[i + 1]), Decimal(row[i + 2]), int(row[i + 3]))
            for i in range(0, 4 * len(starts), 4)
        ]

    def close(self) -> None:
        """Close the SQLite connection (reopened on the next send)."""
        with SQLITE:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    def __repr__(self) -> str:
        return f"Ledger(path={self.path!r})"
