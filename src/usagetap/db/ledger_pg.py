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
from .ledger_pg_schema import MIGRATIONS, ROLLUP_KEYS
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
_MONTH = "to_char(\"timestamp\" AT TIME ZONE 'UTC', 'YYYY-MM')"

_ROLLUP_GROUP = {key: key for key in ROLLUP_KEYS} | {"month": "to_char(day, 'YYYY-MM')"}
"""What each report key reads in ``usage_daily``: a report grouped by these alone reads it, not ``usage``."""

GROUP_KEYS: dict[str, str] = {
    "customer": "customer",
    "model": "model",
    "provider": "provider",
    "operation": "operation",
    "feature": "dimensions->>'feature'",
    "day": _DAY,
    "month": _MONTH,
    "run": "run_id",
    "status": "status",
}

_QUOTED = {name: f'"{name}"' if name == "timestamp" else name for name in COLUMNS}
_SELECT = ", ".join(_QUOTED[name] for name in COLUMNS)
_ARRAYS = ", ".join(f"%s::{_TYPES[FIELD_KINDS[name][0]]}[]" for name in COLUMNS)
_INSERT = f"INSERT INTO usage ({_SELECT}) SELECT * FROM unnest({_ARRAYS}) ON CONFLICT (event_id) DO NOTHING"
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
    """Insert ``records`` in one statement (so ``usage_daily`` is updated once); return how many were new
    (an event id already there is a duplicate, left as it is)."""
    if not records:
        return 0
    columns = [list(column) for column in zip(*(_row(r) for r in records), strict=True)]
    with conn.cursor() as cur:
        cur.execute(_INSERT, columns)
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
    conn: psycopg.Connection[Any],
    by: Sequence[str],
    since: Optional[date],
    until: Optional[date],
    *,
    rollup: bool = True,
) -> Iterator[tuple[Any, ...]]:
    """One row per group of ``by`` (keys of :data:`GROUP_KEYS`, or else names of dimensions) within
    the UTC days: the keys (as text), the number of calls, the sums of the token columns, the cost of
    the priced calls (None when none is), the number of unpriced calls, the number of calls with a
    billed cost and their billed cost (None when none has). Summed by the server, from
    ``usage_daily`` when every key is one of its own or ``month`` and ``rollup`` is true."""
    if rollup and set(by) <= _ROLLUP_GROUP.keys() and _has_rollup(conn, billed=True):
        keys = [_text(key, _ROLLUP_GROUP[key]) for key in by]
        key_params: list[object] = []
        sums = [f"SUM({name})::bigint" for name in ("calls", *TOKEN_FIELDS)]
        tail = [
            "CASE WHEN SUM(unpriced) < SUM(calls) THEN SUM(cost) END",
            "SUM(unpriced)::bigint",
            "SUM(billed)::bigint",
            "CASE WHEN SUM(billed) > 0 THEN SUM(billed_cost) END",
        ]
        where, params = _days(since, until)
        source = "usage_daily"
        having = " HAVING SUM(calls) > 0"
    else:
        keys, key_params = [], []
        for key in by:
            if key in GROUP_KEYS:
                keys.append(_text(key, GROUP_KEYS[key]))
            else:
                keys.append("(dimensions ->> %s)")
                key_params.append(key)
        sums = ["COUNT(*)", *(f"SUM({name})::bigint" for name in TOKEN_FIELDS)]
        tail = [
            "SUM(cost)",
            "COUNT(*) FILTER (WHERE cost IS NULL)",
            "COUNT(billed_cost)",
            "SUM(billed_cost)",
        ]
        where, params = _window(since, until)
        source = "usage"
        having = ""
    group = f" GROUP BY {', '.join(str(i + 1) for i in range(len(keys)))}" if keys else ""
    sql = f"SELECT {', '.join([*keys, *sums, *tail])} FROM {source}{where}{group}{having}"
    yield from conn.execute(sql, [*key_params, *params])


def reconcile_rows(
    conn: psycopg.Connection[Any], provider: str, since: date, until: date
) -> list[tuple[str, str, dict[str, Any], int, int, Optional[Decimal]]]:
    """``provider``'s records within the UTC days ``since`` .. ``until``: day, model, dimensions,
    input tokens, output tokens and cost, one row per record."""
    where, params = _window(since, until)
    sql = (
        f"SELECT {_text('day', _DAY)}, model, dimensions, input_tokens, output_tokens, cost FROM usage"
        f"{where}{' AND' if where else ' WHERE'} provider = %s"
    )
    rows = conn.execute(sql, [*params, provider]).fetchall()
    return [
        (str(d), str(m), dict(dims or {}), int(i), int(o), None if c is None else Decimal(c))
        for d, m, dims, i, o, c in rows
    ]


def dimension_names(conn: psycopg.Connection[Any]) -> list[str]:
    """The names of the dimensions the ledger's records carry, sorted."""
    sql = "SELECT DISTINCT jsonb_object_keys(dimensions) AS key FROM usage ORDER BY key"
    return [str(name) for (name,) in conn.execute(sql)]


def _text(key: str, expr: str) -> str:
    """``expr`` as the report's text: a day as ``YYYY-MM-DD`` whatever the session's DateStyle."""
    return f"to_char({expr}, 'YYYY-MM-DD')" if key == "day" else f"({expr})::text"


def _has_rollup(conn: psycopg.Connection[Any], *, billed: bool = False) -> bool:
    """Whether ``usage_daily`` exists (with its billed-cost columns, when ``billed``)."""
    sql = "SELECT to_regclass('usage_daily') IS NOT NULL"
    if billed:
        sql = (
            "SELECT count(*) = 2 FROM information_schema.columns WHERE table_schema = current_schema() "
            "AND table_name = 'usage_daily' AND column_name IN ('billed', 'billed_cost')"
        )
    row = conn.execute(sql).fetchone()
    return bool(row and row[0])


def _days(since: Optional[date], until: Optional[date]) -> tuple[str, list[object]]:
    """A ``WHERE`` clause over ``usage_daily.day`` for the UTC days ``since`` .. ``until``."""
    clauses: list[str] = []
    params: list[object] = []
    if since is not None:
        clauses.append("day >= %s")
        params.append(since)
    if until is not None:
        clauses.append("day <= %s")
        params.append(until)
    return (" WHERE " + " AND ".join(clauses)) if clauses else "", params


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
