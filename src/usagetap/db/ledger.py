"""Every query against the local ledger: its schema (derived from the record's fields), writes and reads.

The ``usage`` table has one column per field of :class:`~usagetap._record.UsageRecord`, in
declaration order, keyed on ``event_id``; costs are decimal strings (sums stay exact),
``dimensions`` a JSON object, ``timestamp`` ISO 8601 UTC.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
from collections.abc import Iterator, Sequence
from datetime import date, datetime, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any, Optional, Union, cast

from .._record import FIELD_KINDS, FIELDS, UsageRecord, field_values
from .recover import readable_rows
from .wal import use_wal

__all__ = [
    "COLUMNS",
    "GROUP_KEYS",
    "connect",
    "count",
    "dimension_names",
    "grouped",
    "insert",
    "iter_records",
    "read_around_damage",
    "reconcile_rows",
    "records_between",
    "schema",
]

COLUMNS = FIELDS
"""The ``usage`` table's columns: the record's fields."""

# group key -> SQL expression over the usage table
GROUP_KEYS: dict[str, str] = {
    "customer": "customer",
    "model": "model",
    "provider": "provider",
    "operation": "operation",
    "feature": "json_extract(dimensions, '$.feature')",
    "day": "substr(timestamp, 1, 10)",
    "month": "substr(timestamp, 1, 7)",
    "run": "run_id",
    "status": "status",
}

_SQL_TYPES = {"count": "INTEGER", "text": "TEXT", "time": "TEXT", "decimal": "TEXT", "mapping": "TEXT"}
_INDEXES = (
    "CREATE INDEX IF NOT EXISTS usage_customer_ts ON usage (customer, timestamp)",
    "CREATE INDEX IF NOT EXISTS usage_ts ON usage (timestamp)",
)


def _column(name: str) -> str:
    kind, optional = FIELD_KINDS[name]
    if name == "event_id":
        return f"{name} TEXT PRIMARY KEY"
    return f"{name} {_SQL_TYPES[kind]}{'' if optional else ' NOT NULL'}"


def schema() -> str:
    """The ledger's DDL: the ``usage`` table, one column per record field, and its indexes."""
    columns = ",\n".join(f"    {_column(name)}" for name in COLUMNS)
    return f"CREATE TABLE IF NOT EXISTS usage (\n{columns}\n);\n" + "".join(f"{sql};\n" for sql in _INDEXES)


_INSERT = f"INSERT OR IGNORE INTO usage ({', '.join(COLUMNS)}) VALUES ({', '.join('?' * len(COLUMNS))})"
_TIMES = tuple(i for i, name in enumerate(COLUMNS) if FIELD_KINDS[name][0] == "time")
_DECIMALS = tuple(i for i, name in enumerate(COLUMNS) if FIELD_KINDS[name][0] == "decimal")
_MAPPINGS = tuple(i for i, name in enumerate(COLUMNS) if FIELD_KINDS[name][0] == "mapping")


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
    use_wal(conn, 30.0)
    if create:
        conn.executescript(schema())
        _add_missing_columns(conn)
    return conn


def _add_missing_columns(conn: sqlite3.Connection) -> None:
    """Migrate a ledger written before the record gained fields: each missing column is added (NULL in
    its old rows; a NOT NULL one takes its field's default)."""
    have = {row[1] for row in conn.execute("PRAGMA table_info(usage)")}
    for name in COLUMNS:
        if name in have:
            continue
        kind, optional = FIELD_KINDS[name]
        default = UsageRecord.__dataclass_fields__[name].default
        if optional or not isinstance(default, (int, str)):
            conn.execute(f"ALTER TABLE usage ADD COLUMN {name} {_SQL_TYPES[kind]}")
        else:
            conn.execute(
                f"ALTER TABLE usage ADD COLUMN {name} {_SQL_TYPES[kind]} NOT NULL DEFAULT {default!r}"
            )


def _create_private(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if str(path) == ":memory:":
        return
    os.close(os.open(str(path), os.O_CREAT | os.O_RDWR, 0o600))
    with contextlib.suppress(OSError):  # another user's shared ledger is not ours to change
        os.chmod(str(path), 0o600)  # an older ledger of ours was created 0644


def row(r: UsageRecord) -> list[Any]:
    """The ledger row of ``r``, in :data:`COLUMNS` order."""
    values = list(field_values(r))
    for i in _TIMES:
        values[i] = values[i].astimezone(timezone.utc).isoformat()
    for i in _DECIMALS:
        if values[i] is not None:
            values[i] = str(values[i])
    for i in _MAPPINGS:
        values[i] = json.dumps(values[i], sort_keys=True, separators=(",", ":"))
    return values


def record(values: Sequence[Any]) -> UsageRecord:
    """The record of a ledger row (in :data:`COLUMNS` order)."""
    data = dict(zip(COLUMNS, values, strict=False))
    for i in _MAPPINGS:
        text = data.get(COLUMNS[i])
        data[COLUMNS[i]] = {} if text is None else json.loads(text)  # None: a row from before the column
    return UsageRecord.from_dict(data)


def insert(conn: sqlite3.Connection, records: Sequence[UsageRecord]) -> int:
    """Insert ``records`` in one transaction; return how many were new (an event id already there is
    a duplicate, left as it is)."""
    before = conn.total_changes
    conn.execute("BEGIN")
    try:
        conn.executemany(_INSERT, [row(r) for r in records])
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")
    return conn.total_changes - before


def iter_records(
    conn: sqlite3.Connection, where: str = "", params: Sequence[object] = ()
) -> Iterator[UsageRecord]:
    """Yield the ledger's records (optionally filtered by a SQL ``where`` clause) as :class:`UsageRecord`."""
    sql = f"SELECT {', '.join(COLUMNS)} FROM usage {('WHERE ' + where) if where else ''} ORDER BY timestamp"
    for values in conn.execute(sql, tuple(params)):
        yield record(values)


def _window(since: Optional[date], until: Optional[date]) -> tuple[str, list[object]]:
    """A ``where`` clause for the UTC days ``since`` .. ``until`` (empty when neither is given)."""
    clauses: list[str] = []
    params: list[object] = []
    if since is not None:
        clauses.append("substr(timestamp, 1, 10) >= ?")
        params.append(since.isoformat())
    if until is not None:
        clauses.append("substr(timestamp, 1, 10) <= ?")
        params.append(until.isoformat())
    return " AND ".join(clauses), params


def count(conn: sqlite3.Connection, since: Optional[date], until: Optional[date]) -> int:
    """How many records fall within the UTC days ``since`` .. ``until``."""
    where, params = _window(since, until)
    sql = "SELECT COUNT(*) FROM usage" + (f" WHERE {where}" if where else "")
    return int(conn.execute(sql, params).fetchone()[0])


def records_between(
    conn: sqlite3.Connection, since: Optional[date], until: Optional[date]
) -> Iterator[UsageRecord]:
    """The records within the UTC days ``since`` .. ``until``, oldest first."""
    where, params = _window(since, until)
    return iter_records(conn, where, params)


def grouped(
    conn: sqlite3.Connection,
    by: Sequence[str],
    sums: Sequence[str],
    since: Optional[date],
    until: Optional[date],
) -> Iterator[tuple[Any, ...]]:
    """One row per record within the UTC days: the values of ``by`` (keys of :data:`GROUP_KEYS`, or else
    names of dimensions), then the columns ``sums``, then ``cost``."""
    where, params = _window(since, until)
    named = [key for key in by if key not in GROUP_KEYS]
    exprs = [GROUP_KEYS.get(key, "NULL") for key in by]
    extra = ["dimensions"] if named else []
    sql = f"SELECT {', '.join([*exprs, *sums, 'cost', *extra])} FROM usage" + (
        f" WHERE {where}" if where else ""
    )
    if not named:
        yield from conn.execute(sql, params)
        return
    for values in conn.execute(sql, params):
        dimensions = json.loads(values[-1])
        yield (
            *(dimensions.get(key) if key in named else value for key, value in zip(by, values, strict=False)),
            *values[len(by) : -1],
        )


def dimension_names(conn: sqlite3.Connection) -> list[str]:
    """The names of the dimensions the ledger's records carry, sorted."""
    sql = "SELECT DISTINCT key FROM usage, json_each(usage.dimensions) ORDER BY key"
    return [str(name) for (name,) in conn.execute(sql)]


# -- usagetap reconcile -------------------------------------------------------------------------

_RECONCILE = (
    "SELECT substr(timestamp, 1, 10), model, dimensions, input_tokens, output_tokens, cost FROM usage "
    "WHERE provider = ? AND substr(timestamp, 1, 10) >= ? AND substr(timestamp, 1, 10) <= ?"
)


def reconcile_rows(
    conn: sqlite3.Connection, provider: str, since: date, until: date
) -> list[tuple[str, str, dict[str, Any], int, int, Optional[Decimal]]]:
    """``provider``'s records within the UTC days ``since`` .. ``until``: day, model, dimensions,
    input tokens, output tokens and cost, one row per record."""
    rows = conn.execute(_RECONCILE, (provider, since.isoformat(), until.isoformat())).fetchall()
    return [
        (str(d), str(m), json.loads(dims or "{}"), int(i), int(o), None if c is None else Decimal(c))
        for d, m, dims, i, o, c in rows
    ]


# ------------------------------------------------------------------------------------------------


def read_around_damage(conn: sqlite3.Connection) -> tuple[list[UsageRecord], int, int]:
    """Every readable record of a possibly damaged ledger, oldest first; how many rows were readable
    but held no valid record; how many rows could not be read at all."""
    rows, lost = readable_rows(conn, "usage", COLUMNS, index="usage_ts")
    records: list[UsageRecord] = []
    bad = 0
    for values in rows:
        try:
            records.append(record(values[1:]))
        except (ValueError, TypeError, KeyError, AttributeError, ArithmeticError):
            bad += 1
    records.sort(key=lambda r: r.timestamp)
    return records, bad, len(lost)


class _DecimalSum:
    """SQLite aggregate: the exact sum of decimal strings (the ledger stores costs as text)."""

    def __init__(self) -> None:
        self.total = Decimal(0)

    def step(self, value: Optional[str]) -> None:
        if value is not None:
            self.total += Decimal(value)

    def finalize(self) -> str:
        return str(self.total)


def spent_in_windows(
    path: Union[str, os.PathLike[str]], customer: str, starts: Sequence[Optional[datetime]], until: datetime
) -> list[tuple[int, int, Decimal, int]]:
    """``customer``'s calls, tokens, cost and unpriced calls in each window ``[start, until)`` (a None
    start: from the first record), read in one query on a read-only connection.
    """
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
    conn = sqlite3.connect(Path(path).resolve().as_uri() + "?mode=ro", uri=True, timeout=5.0)
    try:
        conn.create_aggregate("usagetap_dsum", 1, cast(Any, _DecimalSum))
        row = conn.execute(sql, params).fetchone()
    finally:
        conn.close()
    return [
        (int(row[i]), int(row[i + 1]), Decimal(row[i + 2] or 0), int(row[i + 3]))  # no rows: NULL
        for i in range(0, 4 * len(starts), 4)
    ]
