from __future__ import annotations

import dataclasses
import sqlite3
import stat
from decimal import Decimal
from pathlib import Path

import pytest

from tests.helpers import make_record
from usagetap.sinks import Ledger
from usagetap.sinks.ledger import connect, default_path


def test_ledger_round_trips_records_exactly(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path / "l.db")
    a = make_record(
        cost=Decimal("0.0001234567"),
        dimensions={"feature": "chat", "beta": True, "n": 3},
        cache_read_tokens=64,
        price_version="genai-prices 0.2.3",
    )
    b = make_record(customer=None, status="partial", input_tokens=0, output_tokens=0)
    assert ledger.send([a, b]).delivered == [a.event_id, b.event_id]
    assert ledger.records() == [a, b]
    ledger.close()


def test_ledger_dedupes_on_event_id(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path / "l.db")
    a = make_record()
    ledger.send([a])
    outcomes = ledger.send([a, make_record()])
    assert outcomes.duplicates == 1
    assert len(outcomes.delivered) == 2
    assert len(ledger.records()) == 2


def test_ledger_path_defaults_to_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("USAGETAP_DB", str(tmp_path / "env.db"))
    assert Ledger().path == str(tmp_path / "env.db")
    monkeypatch.delenv("USAGETAP_DB")
    assert default_path() == ".usagetap/ledger.db"


def test_ledger_uses_wal_and_creates_parent_dirs(tmp_path: Path) -> None:
    path = tmp_path / "a" / "b" / "ledger.db"
    Ledger(path).send([make_record()])
    conn = connect(path, create=False)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_connect_without_create_refuses_a_missing_ledger(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        connect(tmp_path / "missing.db", create=False)
    assert not (tmp_path / "missing.db").exists()


def test_bad_write_rolls_back_the_whole_batch(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path / "l.db")
    bad = dataclasses.replace(make_record(), timestamp=None)
    with pytest.raises(AttributeError):
        ledger.send([make_record(), bad])
    assert ledger.records() == []
    assert isinstance(ledger._connection(), sqlite3.Connection)


def test_a_new_ledger_is_readable_by_its_owner_only(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "ledger.db"
    Ledger(path).send([make_record()])
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_an_existing_world_readable_ledger_is_made_private_when_opened(tmp_path: Path) -> None:
    path = tmp_path / "ledger.db"
    Ledger(path).send([make_record()])
    path.chmod(0o644)
    Ledger(path).send([make_record()])
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_a_count_beyond_64_bits_is_dead_lettered_and_the_others_written(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path / "l.db")
    good = [make_record(), make_record()]
    bad = make_record(input_tokens=2**63, cache_read_tokens=0)
    outcomes = ledger.send([good[0], bad, good[1]])
    assert outcomes.delivered == [good[0].event_id, good[1].event_id]
    assert outcomes.dead == {
        bad.event_id: "ledger: input_tokens 9223372036854775808 does not fit a 64-bit integer column"
    }
    assert sorted(r.event_id for r in ledger.records()) == sorted(r.event_id for r in good)
