"""The ledger's queries: a schema derived from the record's fields, and ledgers written before a field."""

from __future__ import annotations

import sqlite3
from datetime import date, datetime, timezone
from decimal import Decimal
from pathlib import Path

from tests.helpers import make_record
from usagetap.db import ledger as ledger_db

# the ledger's table as usagetap 0.1 created it
_FIRST_SCHEMA = """
CREATE TABLE usage (
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
CREATE INDEX usage_customer_ts ON usage (customer, timestamp);
CREATE INDEX usage_ts ON usage (timestamp);
"""


def _tables(script: str) -> list[tuple[object, ...]]:
    conn = sqlite3.connect(":memory:")
    conn.executescript(script)
    try:
        return [*conn.execute("PRAGMA table_info(usage)"), *conn.execute("PRAGMA index_list(usage)")]
    finally:
        conn.close()


# the columns added since, at the end of the table (issue 21: fees, cost line items, price provenance)
_ADDED_COLUMNS = (
    ("fees", "TEXT NOT NULL"),
    ("cost_items", "TEXT NOT NULL"),
    ("price_source", "TEXT"),
    ("price_issue", "TEXT"),
)


def test_the_derived_schema_is_the_first_releases_with_the_columns_added_since() -> None:
    added = "".join(f",\n    {name} {kind}" for name, kind in _ADDED_COLUMNS)
    current = _FIRST_SCHEMA.replace("    billed_cost TEXT\n", f"    billed_cost TEXT{added}\n")
    assert _tables(ledger_db.schema()) == _tables(current)


def test_a_ledger_missing_a_newer_column_gains_it_on_connect(tmp_path: Path) -> None:
    path = tmp_path / "ledger.db"
    conn = sqlite3.connect(str(path))
    conn.executescript(_FIRST_SCHEMA.replace(",\n    billed_cost TEXT", ""))
    old = make_record(timestamp=datetime(2026, 1, 2, tzinfo=timezone.utc))
    added = {"billed_cost", *(name for name, _ in _ADDED_COLUMNS)}
    names = [n for n in ledger_db.COLUMNS if n not in added]
    values = dict(zip(ledger_db.COLUMNS, ledger_db.row(old), strict=True))
    conn.execute(
        f"INSERT INTO usage ({', '.join(names)}) VALUES ({', '.join('?' * len(names))})",
        [values[n] for n in names],
    )
    conn.commit()
    conn.close()
    ledger = ledger_db.connect(path)
    new = make_record(billed_cost=Decimal("0.01"))
    assert ledger_db.insert(ledger, [new]) == 1
    assert list(ledger_db.iter_records(ledger)) == [old, new]
    ledger.close()


def test_a_duplicate_event_id_is_not_inserted_again(tmp_path: Path) -> None:
    ledger = ledger_db.connect(tmp_path / "ledger.db")
    record = make_record()
    assert (ledger_db.insert(ledger, [record]), ledger_db.insert(ledger, [record])) == (1, 0)
    ledger.close()


def test_count_and_records_between_take_whole_utc_days(tmp_path: Path) -> None:
    ledger = ledger_db.connect(tmp_path / "ledger.db")
    days = [make_record(timestamp=datetime(2026, 5, d, 23, 59, tzinfo=timezone.utc)) for d in (1, 2, 3)]
    ledger_db.insert(ledger, days)
    since, until = date(2026, 5, 2), date(2026, 5, 3)
    assert ledger_db.count(ledger, since, until) == 2
    assert list(ledger_db.records_between(ledger, since, None)) == days[1:]
    assert list(ledger_db.records_between(ledger, None, date(2026, 5, 1))) == days[:1]
    ledger.close()


def test_spend_of_a_customer_with_no_rows_in_an_existing_ledger_is_zero(tmp_path: Path) -> None:
    from usagetap.sinks import Ledger

    ledger = Ledger(tmp_path / "ledger.db")
    ledger.send([make_record(customer="someone_else")])
    ledger.close()
    now = datetime.now(timezone.utc)
    assert (
        ledger_db.spent_in_windows(tmp_path / "ledger.db", "nobody", [None, now], now)
        == [(0, 0, Decimal(0), 0)] * 2
    )
