"""``usagetap report``, ``replay`` and ``status`` over a PostgreSQL ledger (a ``postgresql://`` URL)."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path

import psycopg
import pytest

from tests.helpers import make_record
from tests.servers import free_port
from usagetap.cli import main
from usagetap.db import ledger_pg
from usagetap.delivery.spool import open_spool

_DAY = datetime(2026, 11, 5, 10, tzinfo=timezone.utc)


@pytest.fixture
def fleet_ledger(postgres_url: str) -> str:
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        ledger_pg.ensure_schema(conn)
        ledger_pg.insert(
            conn,
            [
                make_record(customer="a", timestamp=_DAY, cost=Decimal("0.5")),
                make_record(customer="a", timestamp=_DAY, cost=Decimal("0.25"), output_tokens=5),
                make_record(customer="b", timestamp=_DAY, cost=None),
            ],
        )
    return postgres_url


def test_report_reads_a_postgresql_ledger_named_by_usagetap_db(
    fleet_ledger: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("USAGETAP_DB", fleet_ledger)
    assert main(["report", "--by", "customer", "--format", "json", "--totals"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert [(r["customer"], r["calls"], r["output_tokens"], r["unpriced_calls"]) for r in data["rows"]] == [
        ("a", 2, 25, 0),
        ("b", 1, 20, 1),
    ]
    assert (data["totals"]["calls"], data["totals"]["cost"]) == (3, "0.75")


def test_report_on_an_unreachable_postgresql_is_one_line_without_the_password(
    capsys: pytest.CaptureFixture[str],
) -> None:
    url = f"postgresql://app:pw-s3cret@127.0.0.1:{free_port()}/usage?connect_timeout=2"
    assert main(["report", "--db", url]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(
        "usagetap: error: cannot open the ledger at postgresql://app:***@"
    )
    assert "pw-s3cret" not in err[0]


def test_replay_dry_run_reads_a_range_of_the_postgresql_ledger(
    fleet_ledger: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("USAGETAP_SINK", raising=False)
    assert main(["replay", "--db", fleet_ledger, "--since", "2026-11-05", "--dry-run"]) == 0
    assert "would replay 3 ledger records" in capsys.readouterr().out


def test_status_shows_the_shared_ledgers_records(
    fleet_ledger: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    spool = str(tmp_path / "spool.db")
    open_spool(spool, max_bytes=0, lease_seconds=60).close()
    monkeypatch.setenv("USAGETAP_DB", fleet_ledger)
    assert main(["status", "--spool", spool, "--format", "json"]) == 0
    ledger = json.loads(capsys.readouterr().out)["ledger"]
    assert ledger == {"target": fleet_ledger, "records": 3}


def test_status_says_when_the_shared_ledger_cannot_be_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    spool = str(tmp_path / "spool.db")
    open_spool(spool, max_bytes=0, lease_seconds=60).close()
    monkeypatch.setenv("USAGETAP_DB", f"postgresql://app:pw-s3cret@127.0.0.1:{free_port()}/usage")
    assert main(["status", "--spool", spool]) == 0
    out = capsys.readouterr().out
    assert "(shared, PostgreSQL): cannot be read" in out
    assert "pw-s3cret" not in out
