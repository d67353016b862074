"""The PostgreSQL ledger's queries against a real server: schema and migrations, writes, reads."""

from __future__ import annotations

import ast
import hashlib
import subprocess
import sys
import textwrap
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg
import pytest

from tests.helpers import make_record
from usagetap._ledger_source import open_ledger
from usagetap._record import UsageRecord
from usagetap._report import aggregate
from usagetap.db import ledger_pg, ledger_pg_schema
from usagetap.db.pg_migrate import applied_version


def _connect(url: str) -> psycopg.Connection[Any]:
    return psycopg.connect(url, autocommit=True)


def _indexes(conn: psycopg.Connection[Any]) -> set[str]:
    return {row[0] for row in conn.execute("SELECT indexname FROM pg_indexes WHERE tablename = 'usage'")}


def test_an_empty_database_gets_the_table_its_indexes_and_the_latest_version(postgres_url: str) -> None:
    with _connect(postgres_url) as conn:
        assert ledger_pg.ensure_schema(conn) == len(ledger_pg.MIGRATIONS)
        assert applied_version(conn, "ledger") == len(ledger_pg.MIGRATIONS)
        columns = [row[0] for row in conn.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_name = 'usage' "
            " ORDER BY ordinal_position"
        )]  # fmt: skip
        assert columns == list(ledger_pg.COLUMNS)
        assert {"usage_ts", "usage_customer_ts", "usage_day_customer"} <= _indexes(conn)


def test_a_ledger_at_an_older_version_is_migrated_and_keeps_its_rows(postgres_url: str) -> None:
    old = make_record(customer="org_old")
    with _connect(postgres_url) as conn:
        assert ledger_pg.ensure_schema(conn, upto=1) == 1
        conn.execute("ALTER TABLE usage DROP COLUMN billed_cost")  # a field the record gained later
        conn.execute(
            'INSERT INTO usage (event_id, "timestamp", provider, model, operation, input_tokens, '
            "output_tokens, cache_read_tokens, cache_write_tokens, reasoning_tokens, dimensions, status) "
            "VALUES (%s, %s, 'openai', 'gpt-4.1', 'chat', 100, 20, 0, 0, 0, '{}', 'ok')",
            (old.event_id, old.timestamp),
        )
        assert "usage_day_customer" not in _indexes(conn)
        assert ledger_pg.ensure_schema(conn) == len(ledger_pg.MIGRATIONS)
        assert "usage_day_customer" in _indexes(conn)
        assert [r.event_id for r in ledger_pg.records_between(conn, None, None)] == [old.event_id]
        new = make_record(billed_cost=Decimal("0.25"))
        assert ledger_pg.insert(conn, [new]) == 1
        assert [r.billed_cost for r in ledger_pg.records_between(conn, None, None)] == [None, Decimal("0.25")]
        [(calls, input_tokens, *_)] = ledger_pg.aggregate(conn, (), None, None)
        assert (calls, input_tokens) == (2, 200), "the old row is in the daily rollup"


_MIGRATE = """
import sys, psycopg
from usagetap.db import ledger_pg
with psycopg.connect(sys.argv[1], autocommit=True) as conn:
    sys.stdin.readline()
    print(ledger_pg.ensure_schema(conn))
"""


def test_processes_migrating_at_once_apply_each_migration_once(postgres_url: str) -> None:
    children = [
        subprocess.Popen(
            [sys.executable, "-c", textwrap.dedent(_MIGRATE), postgres_url],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(4)
    ]
    outs = [child.communicate("go\n", timeout=60) for child in children]
    assert [child.returncode for child in children] == [0] * 4, [err for _, err in outs]
    assert [out.strip() for out, _ in outs] == [str(len(ledger_pg.MIGRATIONS))] * 4
    with _connect(postgres_url) as conn:
        versions = [row[0] for row in conn.execute(
            "SELECT version FROM usagetap_migrations WHERE component = 'ledger' ORDER BY version"
        )]  # fmt: skip
    assert versions == list(range(1, len(ledger_pg.MIGRATIONS) + 1))


def test_an_event_id_inserted_twice_is_one_row(postgres_url: str) -> None:
    first, second = make_record(), make_record()
    with _connect(postgres_url) as conn:
        ledger_pg.ensure_schema(conn)
        assert ledger_pg.insert(conn, [first]) == 1
        assert ledger_pg.insert(conn, [first, second]) == 1
        assert ledger_pg.count(conn, None, None) == 2


def test_a_record_reads_back_equal_to_what_was_written(postgres_url: str) -> None:
    written = make_record(
        cost=Decimal("0.000150"), dimensions={"feature": "chat", "n": 3}, run_id="run_1", cache_read_tokens=7
    )
    with _connect(postgres_url) as conn:
        ledger_pg.ensure_schema(conn)
        ledger_pg.insert(conn, [written])
        assert list(ledger_pg.records_between(conn, None, None)) == [written]


def test_report_groups_by_day_and_customer_with_exact_costs_and_unpriced_calls(postgres_url: str) -> None:
    day = datetime(2026, 11, 3, 23, 59, tzinfo=timezone.utc)
    records = [
        make_record(customer="a", timestamp=day, cost=Decimal("0.1")),
        make_record(customer="a", timestamp=day, cost=Decimal("0.2")),
        make_record(customer="a", timestamp=day, cost=None),
        make_record(customer="b", timestamp=day + timedelta(minutes=2), cost=Decimal("1")),
    ]
    with _connect(postgres_url) as conn:
        ledger_pg.ensure_schema(conn)
        ledger_pg.insert(conn, records)
    source = open_ledger(postgres_url)
    try:
        rows = aggregate(source, ("day", "customer"))
        since = aggregate(source, ("customer",), since=date(2026, 11, 4))
    finally:
        source.close()
    assert [(r.keys, r.calls, r.input_tokens, r.cost, r.unpriced) for r in rows] == [
        ({"day": "2026-11-03", "customer": "a"}, 3, 300, Decimal("0.3"), 1),
        ({"day": "2026-11-04", "customer": "b"}, 1, 100, Decimal("1"), 0),
    ]
    assert [(r.keys, r.calls) for r in since] == [({"customer": "b"}, 1)]


def test_spent_in_windows_counts_each_window_from_its_start(postgres_url: str) -> None:
    now = datetime(2026, 11, 10, 12, tzinfo=timezone.utc)
    records = [
        make_record(customer="a", timestamp=now - timedelta(days=5), cost=Decimal("1.5")),
        make_record(customer="a", timestamp=now - timedelta(hours=1), cost=None),
        make_record(customer="b", timestamp=now - timedelta(hours=1), cost=Decimal("9")),
    ]
    with _connect(postgres_url) as conn:
        ledger_pg.ensure_schema(conn)
        ledger_pg.insert(conn, records)
        spent = ledger_pg.spent_in_windows(conn, "a", [None, now - timedelta(days=1)], now)
    assert spent == [(2, 240, Decimal("1.5"), 1), (1, 120, Decimal(0), 1)]


def test_a_password_is_not_shown_in_the_ledger_name() -> None:
    assert ledger_pg.redact("postgresql://app:s3cret@db.internal:5432/usage") == (
        "postgresql://app:***@db.internal:5432/usage"
    )


@pytest.mark.parametrize("target", ["postgresql://h/db", "postgres://h/db"])
def test_a_postgresql_url_is_not_a_file(target: str) -> None:
    assert ledger_pg.is_url(target)
    assert not ledger_pg.is_url("/var/lib/app/ledger.db")


def test_the_daily_rollup_sums_what_the_usage_table_holds_after_duplicates_updates_and_deletes(
    postgres_url: str,
) -> None:
    day = datetime(2026, 11, 3, 12, tzinfo=timezone.utc)
    records = [
        make_record(
            customer=customer,
            timestamp=day + timedelta(days=i % 3),
            model=("gpt-4.1", "o4-mini")[i % 2],
            dimensions={"feature": "chat"} if i % 4 else {},
            cost=None if i % 5 == 0 else Decimal(i) / 1000,
        )
        for i, customer in enumerate(["a", "b", None, "a", "c"] * 6)
    ]
    by = ("day", "customer", "model", "feature", "provider", "operation", "status")
    with _connect(postgres_url) as conn:
        ledger_pg.ensure_schema(conn)
        ledger_pg.insert(conn, records[:20])
        ledger_pg.insert(conn, records[10:])
        conn.execute("DELETE FROM usage WHERE event_id = %s", (records[3].event_id,))
        conn.execute(
            "UPDATE usage SET cost = 0.5, customer = 'z' WHERE event_id = %s", (records[7].event_id,)
        )
        conn.execute("UPDATE usage SET cost = NULL WHERE customer = 'c'")
        for keys in (by, ("day", "customer"), ("feature",), ()):
            for since, until in ((None, None), (date(2026, 11, 4), date(2026, 11, 4))):
                rolled = sorted(ledger_pg.aggregate(conn, keys, since, until), key=repr)
                direct = sorted(ledger_pg.aggregate(conn, keys, since, until, rollup=False), key=repr)
                assert rolled == direct, (keys, since)
        [total] = ledger_pg.aggregate(conn, (), None, None)
    assert total[0] == len(records) - 1


_REPORT_KEYS = (
    ("day", "customer", "model", "feature", "provider", "operation", "status"),
    ("month",),
    ("month", "customer"),
    ("month", "feature"),
    ("day", "feature"),
    ("customer",),
    (),
)


def _billed_records() -> list[UsageRecord]:
    """Records over a month's end, some billed, some unpriced, some with a ``feature`` dimension."""
    first = datetime(2026, 10, 30, 18, tzinfo=timezone.utc)
    return [
        make_record(
            customer=customer,
            timestamp=first + timedelta(days=i % 4),
            model=("gpt-4.1", "o4-mini")[i % 2],
            dimensions={"feature": ("chat", "search")[i % 2]} if i % 3 else {},
            cost=None if i % 5 == 0 else Decimal(i) / 1000,
            billed_cost=None if i % 4 == 0 else Decimal(i) / 400,
        )
        for i, customer in enumerate(["a", "b", None, "a", "c"] * 6)
    ]


def _rolled_and_direct(conn: psycopg.Connection[Any], keys: tuple[str, ...]) -> tuple[list[Any], list[Any]]:
    rolled = sorted(ledger_pg.aggregate(conn, keys, None, None), key=repr)
    direct = sorted(ledger_pg.aggregate(conn, keys, None, None, rollup=False), key=repr)
    return rolled, direct


def test_reports_from_the_rollup_equal_the_usage_table_with_billed_cost_by_month_and_feature(
    postgres_url: str,
) -> None:
    records = _billed_records()
    with _connect(postgres_url) as conn:
        ledger_pg.ensure_schema(conn)
        assert ledger_pg._has_rollup(conn, billed=True)
        ledger_pg.insert(conn, records[:20])
        ledger_pg.insert(conn, records[10:])  # ten duplicates
        conn.execute("DELETE FROM usage WHERE event_id = %s", (records[3].event_id,))
        conn.execute(
            "UPDATE usage SET billed_cost = 0.75, customer = 'z' WHERE event_id = %s", (records[7].event_id,)
        )
        conn.execute("UPDATE usage SET billed_cost = NULL WHERE customer = 'c'")
        conn.execute(
            'UPDATE usage SET "timestamp" = "timestamp" + interval \'3 days\', billed_cost = 2 '
            "WHERE event_id = %s",
            (records[1].event_id,),
        )
        for keys in _REPORT_KEYS:
            rolled, direct = _rolled_and_direct(conn, keys)
            assert rolled == direct, keys
        [total] = ledger_pg.aggregate(conn, (), None, None)
    expected = [r for r in records if r.event_id != records[3].event_id]
    billed = {r.event_id: r.billed_cost for r in expected if r.customer != "c"}
    billed[records[7].event_id], billed[records[1].event_id] = Decimal("0.75"), Decimal(2)
    assert total[0] == len(expected)
    assert total[-2:] == (
        sum(v is not None for v in billed.values()),
        sum(v for v in billed.values() if v is not None),
    )


def test_a_month_report_reads_the_daily_rollup(postgres_url: str) -> None:
    with _connect(postgres_url) as conn:
        ledger_pg.ensure_schema(conn)
        ledger_pg.insert(conn, [make_record(billed_cost=Decimal("0.5"))])
        conn.execute("ALTER TABLE usage DISABLE TRIGGER USER")  # rows the rollup does not see
        ledger_pg.insert(conn, [make_record(billed_cost=Decimal("0.25"))])
        [rolled] = ledger_pg.aggregate(conn, ("month",), None, None)
        [direct] = ledger_pg.aggregate(conn, ("month",), None, None, rollup=False)
    assert (rolled[1], rolled[-1]) == (1, Decimal("0.5"))
    assert (direct[1], direct[-1]) == (2, Decimal("0.75"))


def test_a_v3_ledger_migrated_to_v4_keeps_its_rows_and_its_totals(postgres_url: str) -> None:
    records = _billed_records()
    with _connect(postgres_url) as conn:
        assert ledger_pg.ensure_schema(conn, upto=3) == 3
        for statement in ledger_pg._added_columns():  # the columns a v3 release added after its migrations
            conn.execute(statement)
        ledger_pg.insert(conn, records[:25])
        conn.execute("DELETE FROM usage WHERE event_id = %s", (records[4].event_id,))
        before = {keys: _rolled_and_direct(conn, keys)[1] for keys in _REPORT_KEYS}
        assert ledger_pg.ensure_schema(conn) == 4
        assert applied_version(conn, "ledger") == 4
        assert list(ledger_pg.records_between(conn, None, None)) == sorted(
            (r for r in records[:25] if r.event_id != records[4].event_id),
            key=lambda r: (r.timestamp, r.event_id),
        )
        for keys in _REPORT_KEYS:
            rolled, direct = _rolled_and_direct(conn, keys)
            assert rolled == direct == before[keys], keys
        ledger_pg.insert(conn, records[20:])
        for keys in _REPORT_KEYS:
            rolled, direct = _rolled_and_direct(conn, keys)
            assert rolled == direct, keys


_RELEASED = {
    1: "2fbf25b782e53493",
    2: "e5ab7ad25c389c7c",
    3: "76646035fbd63eb5",
    4: "81f86802d37d667f",
}


@pytest.mark.parametrize("version", sorted(_RELEASED))
def test_a_released_migration_is_never_edited(version: int) -> None:
    text = "\n".join(ledger_pg.MIGRATIONS[version - 1])
    assert hashlib.sha256(text.encode()).hexdigest()[:16] == _RELEASED[version]


def test_the_migrations_do_not_follow_the_record_fields() -> None:
    source = Path(ledger_pg_schema.__file__).read_text()
    imports = [node for node in ast.walk(ast.parse(source)) if isinstance(node, ast.ImportFrom)]
    assert [node.module for node in imports] == ["__future__"]


def _wait_until_blocked(conn: psycopg.Connection[Any], pid: int) -> None:
    """Return once backend ``pid`` waits for a lock another one holds (fail after a minute)."""
    for _ in range(6000):
        row = conn.execute("SELECT cardinality(pg_blocking_pids(%s)) > 0", (pid,)).fetchone()
        if row is not None and row[0]:
            return
        time.sleep(0.01)
    pytest.fail(f"backend {pid} never waited for a lock")


def test_a_write_during_the_migration_to_v4_lands_in_the_billed_rollup(postgres_url: str) -> None:
    records = _billed_records()
    with (
        _connect(postgres_url) as admin,
        _connect(postgres_url) as migrator,
        _connect(postgres_url) as writer,
    ):
        ledger_pg.ensure_schema(admin, upto=3)
        for statement in ledger_pg._added_columns():
            admin.execute(statement)
        ledger_pg.insert(admin, records[:10])
        with _connect(postgres_url) as reader:
            reader.execute("BEGIN")
            reader.execute("SELECT count(*) FROM usage_daily")  # holds the migration at usage_daily
            with ThreadPoolExecutor(2) as pool:
                migrated = pool.submit(ledger_pg.ensure_schema, migrator)
                _wait_until_blocked(admin, migrator.info.backend_pid)
                written = pool.submit(ledger_pg.insert, writer, records[10:])
                _wait_until_blocked(admin, writer.info.backend_pid)
                reader.execute("COMMIT")
                assert (migrated.result(), written.result()) == (4, len(records) - 10)
        for keys in _REPORT_KEYS:
            rolled, direct = _rolled_and_direct(admin, keys)
            assert rolled == direct, keys
