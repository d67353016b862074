"""The PostgreSQL budget store's schema: versioned by the ledger's migration machinery."""

from __future__ import annotations

from typing import Any

import psycopg

from usagetap.budgets.base import Charge
from usagetap.db.budgets_pg import PostgresBudgets
from usagetap.db.pg_migrate import applied_version

_BUCKET = "{org_1}||day|UTC|2026-01-01"


def _charge(tokens: int) -> Charge:
    return Charge(_BUCKET, (_BUCKET,), tokens, 0, 100, None, None)


def _connect(url: str) -> psycopg.Connection[Any]:
    return psycopg.connect(url, autocommit=True)


def test_a_new_budget_store_records_its_schema_version_as_the_budgets_component(postgres_url: str) -> None:
    store = PostgresBudgets(postgres_url)
    try:
        assert store.reserve("hold_1", (_charge(10),), ttl=60) is None
    finally:
        store.close()
    with _connect(postgres_url) as conn:
        assert applied_version(conn, "budgets") == 1
        assert applied_version(conn, "ledger") == 0


def test_a_store_made_before_schema_versions_is_adopted_with_its_usage(postgres_url: str) -> None:
    with _connect(postgres_url) as conn:  # the tables as the unversioned store created them
        conn.execute(
            "CREATE TABLE usagetap_budget_used (bucket TEXT PRIMARY KEY, calls BIGINT NOT NULL DEFAULT 0, "
            "tokens BIGINT NOT NULL DEFAULT 0, nanos BIGINT NOT NULL DEFAULT 0, "
            "unpriced BIGINT NOT NULL DEFAULT 0, expires DOUBLE PRECISION)"
        )
        conn.execute(
            "CREATE TABLE usagetap_budget_holds (hold TEXT NOT NULL, bucket TEXT NOT NULL, "
            "tokens BIGINT NOT NULL, nanos BIGINT NOT NULL, expires DOUBLE PRECISION NOT NULL, "
            "PRIMARY KEY (hold, bucket))"
        )
        conn.execute("INSERT INTO usagetap_budget_used (bucket, calls, tokens) VALUES (%s, 3, 70)", [_BUCKET])
    store = PostgresBudgets(postgres_url)
    try:
        used = store.used((_BUCKET,))
    finally:
        store.close()
    assert (used.calls, used.tokens) == (3, 70)
    with _connect(postgres_url) as conn:
        assert applied_version(conn, "budgets") == 1
