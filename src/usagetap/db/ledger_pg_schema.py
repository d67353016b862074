"""The PostgreSQL ledger's migrations, frozen: the SQL each version applies, independent of the record.

A migration once released is never edited, so nothing here reads the record's fields: the token
columns and the rollup's keys are spelled out as they were when each version was written. A field
the record gains later is added by :func:`usagetap.db.ledger_pg.ensure_schema`'s ``ADD COLUMN``
step, and a change to ``usage_daily`` by a new migration appended to :data:`MIGRATIONS`.
"""

from __future__ import annotations

__all__ = ["MIGRATIONS", "ROLLUP_KEYS"]

ROLLUP_KEYS = ("day", "customer", "model", "provider", "operation", "feature", "status")
"""The keys ``usage_daily`` sums by, in its column order."""

_DAY = "((\"timestamp\" AT TIME ZONE 'UTC')::date)"
_TOKENS = ("input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens", "reasoning_tokens")
_SOURCE = f"{_DAY}, customer, model, provider, operation, dimensions->>'feature', status"
_CONFLICT = (
    "day, (COALESCE(customer, '')), (customer IS NULL), model, provider, operation, "
    "(COALESCE(feature, '')), (feature IS NULL), status"
)
_V3_SUMS = ("calls", *_TOKENS, "cost", "unpriced")
_V4_SUMS = (*_V3_SUMS, "billed", "billed_cost")


def _rollup_select(table: str, sign: int, *, billed: bool) -> str:
    """The ``usage_daily`` rows of the ``usage`` rows in ``table``, each sum times ``sign`` (v3 columns,
    or v4's with the billed calls and billed cost)."""
    sums = [
        f"{sign} * COUNT(*)",
        *(f"{sign} * SUM({name})" for name in _TOKENS),
        f"{sign} * COALESCE(SUM(cost), 0)",
        f"{sign} * COUNT(*) FILTER (WHERE cost IS NULL)",
    ]
    if billed:
        sums += [f"{sign} * COUNT(billed_cost)", f"{sign} * COALESCE(SUM(billed_cost), 0)"]
    positions = ", ".join(str(i + 1) for i in range(len(ROLLUP_KEYS)))
    return f"SELECT {_SOURCE}, {', '.join(sums)} FROM {table} GROUP BY {positions} ORDER BY {positions}"


def _rollup_function(*, billed: bool) -> str:
    """The trigger function that keeps ``usage_daily`` equal to the sums of ``usage``."""
    add = ", ".join(f"{name} = d.{name} + EXCLUDED.{name}" for name in (_V4_SUMS if billed else _V3_SUMS))
    return f"""CREATE OR REPLACE FUNCTION usagetap_usage_daily() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP IN ('DELETE', 'UPDATE') THEN
        INSERT INTO usage_daily AS d {_rollup_select("old_rows", -1, billed=billed)}
        ON CONFLICT ({_CONFLICT}) DO UPDATE SET {add};
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        INSERT INTO usage_daily AS d {_rollup_select("new_rows", 1, billed=billed)}
        ON CONFLICT ({_CONFLICT}) DO UPDATE SET {add};
    END IF;
    IF TG_OP = 'TRUNCATE' THEN
        DELETE FROM usage_daily;
    END IF;
    RETURN NULL;
END
$$"""


_LOCK_USAGE = "LOCK TABLE usage IN SHARE ROW EXCLUSIVE MODE"
"""Taken first by a migration that backfills ``usage_daily``: no write between the backfill and the
trigger function that continues it (writers wait, readers do not)."""

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
        f"({', '.join(_TOKENS)}, cost)",
    ),
    (
        _LOCK_USAGE,
        f"""CREATE TABLE IF NOT EXISTS usage_daily (
    day DATE NOT NULL,
    customer TEXT,
    model TEXT NOT NULL,
    provider TEXT NOT NULL,
    operation TEXT NOT NULL,
    feature TEXT,
    status TEXT NOT NULL,
    calls BIGINT NOT NULL,
{"".join(f"    {name} BIGINT NOT NULL,{chr(10)}" for name in _TOKENS)}    cost NUMERIC NOT NULL,
    unpriced BIGINT NOT NULL
)""",
        f"CREATE UNIQUE INDEX IF NOT EXISTS usage_daily_key ON usage_daily ({_CONFLICT})",
        f"INSERT INTO usage_daily {_rollup_select('usage', 1, billed=False)}",
        _rollup_function(billed=False),
        "CREATE TRIGGER usage_daily_insert AFTER INSERT ON usage REFERENCING NEW TABLE AS new_rows "
        "FOR EACH STATEMENT EXECUTE FUNCTION usagetap_usage_daily()",
        "CREATE TRIGGER usage_daily_delete AFTER DELETE ON usage REFERENCING OLD TABLE AS old_rows "
        "FOR EACH STATEMENT EXECUTE FUNCTION usagetap_usage_daily()",
        "CREATE TRIGGER usage_daily_update AFTER UPDATE ON usage "
        "REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows "
        "FOR EACH STATEMENT EXECUTE FUNCTION usagetap_usage_daily()",
        "CREATE TRIGGER usage_daily_truncate AFTER TRUNCATE ON usage "
        "FOR EACH STATEMENT EXECUTE FUNCTION usagetap_usage_daily()",
    ),
    (
        # usage_daily gains the billed calls and their billed cost: rebuilt from usage, under the lock
        _LOCK_USAGE,
        # the backfill reads usage.billed_cost: added first if missing (ALTER would lock out readers)
        """DO $$
BEGIN
    IF NOT EXISTS (
        SELECT FROM pg_attribute
        WHERE attrelid = 'usage'::regclass AND attname = 'billed_cost' AND NOT attisdropped
    ) THEN
        ALTER TABLE usage ADD COLUMN billed_cost NUMERIC;
    END IF;
END
$$""",
        "ALTER TABLE usage_daily ADD COLUMN billed BIGINT NOT NULL DEFAULT 0, "
        "ADD COLUMN billed_cost NUMERIC NOT NULL DEFAULT 0",
        _rollup_function(billed=True),
        "DELETE FROM usage_daily",
        f"INSERT INTO usage_daily {_rollup_select('usage', 1, billed=True)}",
    ),
)
"""The ledger's migrations: version ``i + 1`` is ``MIGRATIONS[i]``. Append; never edit one."""
