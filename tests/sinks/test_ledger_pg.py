"""The Ledger sink on a real PostgreSQL: USAGETAP_DB=postgresql://..., and never a local file instead."""

from __future__ import annotations

import logging
import sys
from decimal import Decimal
from pathlib import Path

import psycopg
import pytest

import usagetap
from tests.helpers import deliver, make_record
from tests.servers import free_port
from usagetap._status import open_readonly, read_status
from usagetap.db import ledger_pg
from usagetap.errors import ConfigurationError
from usagetap.sinks import Ledger


def test_the_ledger_writes_to_postgresql_when_usagetap_db_is_a_url(
    postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("USAGETAP_DB", postgres_url)
    ledger = Ledger()
    records = [make_record(), make_record(customer=None, status="partial", input_tokens=0)]
    try:
        assert ledger.send(records).delivered == [r.event_id for r in records]
        assert ledger.records() == sorted(records, key=lambda r: (r.timestamp, r.event_id))
        assert not ledger.local
    finally:
        ledger.close()


def test_a_record_sent_again_is_a_duplicate_not_a_second_row(postgres_url: str) -> None:
    ledger = Ledger(postgres_url)
    first = make_record()
    try:
        ledger.send([first])
        outcomes = ledger.send([first, make_record()])
        assert outcomes.duplicates == 1
    finally:
        ledger.close()
    with psycopg.connect(postgres_url) as conn:
        assert ledger_pg.count(conn, None, None) == 2


def test_the_ledgers_repr_hides_the_password() -> None:
    ledger = Ledger("postgresql://app:s3cret-pw@127.0.0.1:1/usage")
    assert "s3cret-pw" not in repr(ledger)
    assert "postgresql://app:***@127.0.0.1:1/usage" in repr(ledger)


def test_an_unreachable_postgresql_keeps_the_records_in_the_spool_and_writes_no_local_ledger(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, postgres_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="usagetap")
    monkeypatch.chdir(tmp_path)
    spool = str(tmp_path / "spool.db")
    down = Ledger(f"postgresql://postgres@127.0.0.1:{free_port()}/usage")
    assert down._postgres is not None
    down._postgres.timeout = 0.5
    usagetap.configure(sink=down, spool_path=spool, flush_interval=0.05)
    records = [make_record() for _ in range(3)]
    for record in records:
        deliver(record)
    result = usagetap.flush(timeout=1.5)
    assert (result.sent, result.dead, result.pending) == (0, 0, 3)
    assert not (tmp_path / ".usagetap" / "ledger.db").exists()
    assert usagetap.stats()["retried"] >= 3
    assert "PostgreSQL ledger" in caplog.text
    conn = open_readonly(spool)
    try:
        [status] = read_status(conn, spool).sinks
    finally:
        conn.close()
    assert (status.sink, status.pending) == ("ledger", 3)
    assert status.last_error is not None and "PostgreSQL ledger" in status.last_error
    up = Ledger(postgres_url)
    usagetap.configure(sink=up, spool_path=spool)
    assert usagetap.flush(timeout=30).pending == 0
    assert sorted(r.event_id for r in up.records()) == sorted(r.event_id for r in records)


def test_budgets_read_past_spend_from_the_postgresql_ledger(postgres_url: str, tmp_path: Path) -> None:
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        ledger_pg.ensure_schema(conn)
        ledger_pg.insert(conn, [make_record(customer="org_pg", cost=Decimal("0.4")) for _ in range(2)])
    usagetap.configure(sink=Ledger(postgres_url), spool_path=str(tmp_path / "spool.db"))
    spend = usagetap.limits.spent("org_pg", period="month")
    assert (spend.calls, spend.tokens, spend.cost) == (2, 240, Decimal("0.8"))


def test_a_postgresql_ledger_without_psycopg_is_a_configuration_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "psycopg", None)
    with pytest.raises(ConfigurationError, match=r"usagetap\[postgres\]"):
        Ledger("postgresql://127.0.0.1/usage")
