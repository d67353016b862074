"""Every query against a PostgreSQL ledger (``USAGETAP_DB=postgresql://...``): schema, writes, reads.

The ``usage`` table has the SQLite ledger's columns (:data:`~usagetap.db.ledger.COLUMNS`) with
PostgreSQL's types: ``timestamp`` a ``timestamptz``, costs ``numeric`` (sums stay exact),
``dimensions`` ``jsonb``. Its schema is created or migrated on first use (versioned migrations,
see :mod:`.pg_migrate`); a column the record gained since is added by the same step. psycopg is
imported by the caller (lazily): this module only types against it.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import date, datetime, time, timedelta, timezone
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Optional
from urllib.parse import urlsplit, urlunsplit

from .._record import FIELD_KINDS, TOKEN_FIELDS, UsageRecord, field_values
from .ledger import COLUMNS
from .pg_migrate import migrate

if TYPE_CHECKING:
    import psycopg

__all__ = [
    "COMPONENT",
    "GROUP_KEYS",
    "MIGRATIONS",
    "aggregate",
    "count",
    "ensure_schema",
    "exists",
    "insert",
    "is_url",
    "records_between",
    "redact",
    "spent_in_windows",
]

COMPONENT = "ledger"

_TYPES = {"count": "BIGINT", "text": "TEXT", "time": "TIMESTAMPTZ", "decimal": "NUMERIC", "mapping": "JSONB"}
_DAY = "((\"timestamp\" AT TIME ZONE 'UTC')::date)"

MIGRATIONS: tuple[tuple[str, ...], ...] = (
    (
        """CREATE TABLE IF NOT EXISTS usage (
    event_id TEXT PRIMARY KEY,
    "timestamp" TIMESTAMPTZ NOT NULL,
    customer TEXT,
    provider TEXT NOT NULL,
    model TEXT NOT NULL,
    request_model TEXT,
    operation TEXT NOT NULL,
    input_tokens BIGINT NOT NULL,
    output_tokens BIGINT NOT NULL,
    cache_read_tokens BIGINT NOT NULL,
    cache_write_tokens BIGINT NOT NULL,
    reasoning_tokens BIGINT NOT NULL,
    cost NUMERIC,
    dimensions JSONB NOT NULL,
    status TEXT NOT NULL,
    response_id TEXT,
    run_id TEXT,
    parent_run_id TEXT,
    price_version TEXT,
    billed_cost NUMERIC
)""",
    ),
    (
        'CREATE INDEX IF NOT EXISTS usage_ts ON usage ("timestamp")',
        'CREATE INDEX IF NOT EXISTS usage_customer_ts ON usage (customer, "timestamp")',
        # report --by day,customer (and budgets' spend) read this index alone
        f"CREATE INDEX IF NOT EXISTS usage_day_customer ON usage ({_DAY}, customer) INCLUDE "
        f"({', '.join(TOKEN_FIELDS)}, cost)",
    ),
)
"""The ledger's migrations: version ``i + 1`` is ``MIGRATIONS[i]``. Append; never edit one."""

GROUP_KEYS: dict[str, str] = {
    "customer": "customer",
    "model": "model",
    "provider": "provider",
    "operation": "operation",
    "feature": "dimensions->>'feature'",
    "day": _DAY,
    "run": "run_id",
    "status": "status",
}

_QUOTED = {name: f'"{name}"' if name == "timestamp" else name for name in COLUMNS}
_SELECT = ", ".join(_QUOTED[name] for name in COLUMNS)
_INSERT = (
    f"INSERT INTO usage ({_SELECT}) VALUES ({', '.join(['%s'] * len(COLUMNS))}) "
    "ON CONFLICT (event_id) DO NOTHING"
)
_MAPPINGS = tuple(i for i, name in enumerate(COLUMNS) if FIELD_KINDS[name][0] == "mapping")
_TIMES = tuple(i for i, name in enumerate(COLUMNS) if FIELD_KINDS[name][0] == "time")
_DECIMALS = tuple(i for i, name in enumerate(COLUMNS) if FIELD_KINDS[name][0] == "decimal")


def is_url(target: str) -> bool:
    """Whether ``target`` (``USAGETAP_DB``, ``--db``) names a PostgreSQL database, not a file."""
    return target.startswith(("postgresql://", "postgres://"))


def redact(url: str) -> str:
    """``url`` without its password (for logs, reprs, status and report titles)."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.netloc.rsplit("@", 1)[1]
    user = parts.username or ""
    return urlunsplit(parts._replace(netloc=f"{user}:***@{host}"))


def exists(conn: psycopg.Connection[Any]) -> bool:
    """Whether the database (its search path) has a ``usage`` table."""
    row = conn.execute("SELECT to_regclass('usage') IS NOT NULL").fetchone()
    return bool(row and row[0])


def _added_columns() -> list[str]:
    """``ADD COLUMN IF NOT EXISTS`` for every record field: a field added after the last migration
    gets its column (NULL in old rows; a NOT NULL one takes its field's default)."""
    statements = []
    for name in COLUMNS:
        kind, optional = FIELD_KINDS[name]
        default = UsageRecord.__dataclass_fields__[name].default
        column = f"{_QUOTED[name]} {_TYPES[kind]}"
        if not optional and isinstance(default, (int, str)) and not isinstance(default, bool):
            literal = str(default) if isinstance(default, int) else "'" + default.replace("'", "''") + "'"
            column += f" NOT NULL DEFAULT {literal}"
        statements.append(f"ALTER TABLE usage ADD COLUMN IF NOT EXISTS {column}")
    return statements


def ensure_schema(conn: psycopg.Connection[Any], *, upto: Optional[int] = None) -> int:
    """Create or migrate the ledger's schema (all migrations, or those up to ``upto``); its version."""
    return migrate(conn, COMPONENT, MIGRATIONS, upto=upto, after=() if upto is not None else _added_columns())


def _row(r: UsageRecord) -> list[Any]:
    from psycopg.types.json import Jsonb

    values = list(field_values(r))
    for i in _MAPPINGS:
        values[i] = Jsonb(values[i])
    return values


def insert(conn: psycopg.Connection[Any], records: Sequence[UsageRecord]) -> int:
    """Insert ``records`` in one transaction; return how many were new (an event id already there is a
    duplicate, left as it is)."""
    if not records:
        return 0
    with conn.transaction(), conn.cursor() as cur:
        cur.executemany(_INSERT, [_row(r) for r in records])
        return max(cur.rowcount, 0)


def _record(values: Sequence[Any]) -> UsageRecord:
    data = dict(zip(COLUMNS, values, strict=False))
    for i in _TIMES:
        data[COLUMNS[i]] = data[COLUMNS[i]].astimezone(timezone.utc).isoformat()
    for i in _DECIMALS:
        if data[COLUMNS[i]] is not None:
            data[COLUMNS[i]] = str(data[COLUMNS[i]])
    return UsageRecord.from_dict(data)


def _midnight(day: date) -> datetime:
    return datetime.combine(day, time(), tzinfo=timezone.utc)


def _window(since: Optional[date], until: Optional[date]) -> tuple[str, list[object]]:
    """A ``WHERE`` clause for the UTC days ``since`` .. ``until`` (empty when neither is given)."""
    clauses: list[str] = []
    params: list[object] = []
    if since is not None:
        clauses.append('"timestamp" >= %s')
        params.append(_midnight(since))
    if until is not None:
        clauses.append('"timestamp" < %s')
        params.append(_midnight(until + timedelta(days=1)))
    return (" WHERE " + " AND ".join(clauses)) if clauses else "", params


def count(conn: psycopg.Connection[Any], since: Optional[date], until: Optional[date]) -> int:
    """How many records fall within the UTC days ``since`` .. ``until``."""
    where, params = _window(since, until)
    row = conn.execute("SELECT COUNT(*) FROM usage" + where, params).fetchone()
    return int(row[0]) if row is not None else 0


def records_between(
    conn: psycopg.Connection[Any], since: Optional[date], until: Optional[date]
) -> Iterator[UsageRecord]:
    """The records within the UTC days ``since`` .. ``until``, oldest first (read with a server-side
    cursor, a batch at a time)."""
    where, params = _window(since, until)
    with conn.transaction(), conn.cursor(name="usagetap_records") as cur:
        cur.execute(f'SELECT {_SELECT} FROM usage{where} ORDER BY "timestamp", event_id', params)
        for values in cur:
            yield _record(values)


def aggregate(
    conn: psycopg.Connection[Any], by: Sequence[str], since: Optional[date], until: Optional[date]
) -> Iterator[tuple[Any, ...]]:
    """One row per group of :data:`GROUP_KEYS` ``by`` within the UTC days: the keys (as text), the
    number of calls, the sums of the token columns, the cost of the priced calls (None when none
    is) and the number of unpriced calls. Summed by the server."""
    where, params = _window(since, until)
    keys = [GROUP_KEYS[key] for key in by]
    sums = [f"SUM({name})" for name in TOKEN_FIELDS]
    columns = [*keys, "COUNT(*)", *sums, "SUM(cost)", "COUNT(*) FILTER (WHERE cost IS NULL)"]
    group = f" GROUP BY {', '.join(str(i + 1) for i in range(len(keys)))}" if keys else ""
    for values in conn.execute(f"SELECT {', '.join(columns)} FROM usage{where}{group}", params):
        width = len(keys)
        yield (
            *(None if v is None else str(v) for v in values[:width]),
            *(int(v or 0) for v in values[width : width + 1 + len(sums)]),
            values[-2],
            int(values[-1]),
        )


def spent_in_windows(
    conn: psycopg.Connection[Any], customer: str, starts: Sequence[Optional[datetime]], until: datetime
) -> list[tuple[int, int, Decimal, int]]:
    """``customer``'s calls, tokens, cost and unpriced calls in each window ``[start, until)`` (a None
    start: from the first record), in one query."""
    columns: list[str] = []
    params: list[object] = []
    for start in starts:
        since = '"timestamp" >= %s'
        columns += [
            f"COUNT(*) FILTER (WHERE {since})",
            f"COALESCE(SUM(input_tokens + output_tokens) FILTER (WHERE {since}), 0)",
            f"COALESCE(SUM(cost) FILTER (WHERE {since}), 0)",
            f"COUNT(*) FILTER (WHERE {since} AND cost IS NULL)",
        ]
        params += [start or datetime.min.replace(tzinfo=timezone.utc)] * 4
    sql = f'SELECT {", ".join(columns)} FROM usage WHERE customer = %s AND "timestamp" < %s'
    row = conn.execute(sql, [*params, customer, until]).fetchone()
    assert row is not None
    return [
        (int(row[i]), int(row[i + 1]), Decimal(row[i + 2]), int(row[i + 3]))
        for i in range(0, 4 * len(starts), 4)
    ]
