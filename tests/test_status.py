"""``usagetap status``: what the spool holds per sink, read without touching it."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from types import SimpleNamespace

import pytest

from tests.helpers import make_record
from usagetap._record import UsageRecord
from usagetap._status import SpoolStatus, open_readonly, read_status
from usagetap.cli import main
from usagetap.delivery.backoff import Backoff
from usagetap.delivery.spool import Spool, open_spool
from usagetap.delivery.worker import SinkWorker
from usagetap.sinks import Outcomes

_LEASE_AND_DIE = """
import os, sys, time
from usagetap.delivery.spool import open_spool
spool = open_spool(sys.argv[1], max_bytes=0, lease_seconds=3600)
spool.lease("stripe", 2, time.time())
print(os.getpid(), flush=True)
os._exit(0)
"""


class Picky:
    """Delivers the first two events of a batch, refuses the next two, asks to retry the rest."""

    name = "spaire"
    max_batch = 100

    def send(self, records: Sequence[UsageRecord]) -> Outcomes:
        ids = [r.event_id for r in records]
        return Outcomes(
            delivered=ids[:2], dead=dict.fromkeys(ids[2:4], "422: customer unknown"), retry=ids[4:]
        )

    def close(self) -> None:
        pass


@pytest.fixture
def spool_path(tmp_path: Path) -> Path:
    """A spool as a busy deployment leaves it: delivered, dead, in backoff, leased by a live and a dead
    process, and a lease that expired."""
    path = tmp_path / "spool.db"
    spool = open_spool(str(path), max_bytes=0, lease_seconds=3600, hot_limit=0)
    spool.add(["spaire"], [make_record() for _ in range(5)])
    worker = SinkWorker(
        Picky(),
        "spaire",
        spool,
        batch_size=100,
        flush_interval=1.0,
        backoff=Backoff(initial=100.0, cap=100.0, jitter=0.0),
        on_batch_done=lambda: None,
    )
    worker.deliver_due()
    spool.add(["spaire"], [make_record()])
    spool.lease("spaire", 1, time.time())
    spool.add(["openmeter"], [make_record()])
    Spool(path, max_bytes=0, lease_seconds=-60.0, hot_limit=0).lease("openmeter", 1, time.time())  # expired
    spool.add(["stripe"], [make_record() for _ in range(3)])
    child = subprocess.run(  # leases two rows and dies without releasing them
        [sys.executable, "-c", _LEASE_AND_DIE, str(path)], capture_output=True, text=True, check=True
    )
    path.with_name("child.pid").write_text(child.stdout.strip())
    spool.close()  # not at a collection during a test: closing checkpoints the WAL into the file
    return path


def status_of(path: Path, ahead: float = 30.0) -> SpoolStatus:
    conn = open_readonly(str(path))
    try:
        return read_status(conn, str(path), now=time.time() + ahead)
    finally:
        conn.close()


def test_per_sink_depth_backoff_leases_and_dead_letters(spool_path: Path) -> None:
    status = status_of(spool_path)
    assert [s.sink for s in status.sinks] == ["openmeter", "spaire", "stripe"]
    openmeter, spaire, stripe = status.sinks
    assert (spaire.pending, spaire.due, spaire.backoff, spaire.in_flight) == (2, 0, 1, 1)
    assert [(x.pid, x.rows, x.alive) for x in spaire.leases] == [(os.getpid(), 1, True)]
    assert spaire.max_attempts == 1 and spaire.next_attempt is not None
    assert spaire.dead_letters == 2
    assert spaire.oldest is not None and 30 <= status.now - spaire.oldest < 300

    child = int((spool_path.parent / "child.pid").read_text())
    assert (stripe.pending, stripe.due, stripe.in_flight) == (3, 1, 2)
    assert [(x.pid, x.rows, x.alive) for x in stripe.leases] == [(child, 2, False)]

    assert (openmeter.pending, openmeter.stale, openmeter.due, openmeter.in_flight) == (1, 1, 1, 0)
    assert [(g.sink, g.reason, g.count) for g in status.dead] == [("spaire", "422: customer unknown", 2)]
    assert (status.pending, status.dead_letters) == (6, 2)


def test_counters_and_last_error_come_from_the_delivering_worker(spool_path: Path) -> None:
    spaire = next(s for s in status_of(spool_path).sinks if s.sink == "spaire")
    assert spaire.counters == {"delivered": 2, "duplicates": 0, "retried": 1, "dead": 2}
    assert spaire.last_error == "the backend asked to retry 1 event(s)"
    assert spaire.last_error_at is not None and spaire.updated is not None


def test_status_json(
    spool_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    oldest = next(s for s in status_of(spool_path).sinks if s.sink == "spaire").oldest
    assert oldest is not None
    now = oldest + 1.2344
    monkeypatch.setattr("usagetap._status.time", SimpleNamespace(time=lambda: now))
    assert main(["status", "--spool", str(spool_path), "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert (data["pending"], data["dead_letters"]) == (6, 2)
    spaire = next(s for s in data["sinks"] if s["sink"] == "spaire")
    assert spaire["counters"] == {"delivered": 2, "duplicates": 0, "retried": 1, "dead": 2}
    assert spaire["last_error"]["message"] == "the backend asked to retry 1 event(s)"
    assert spaire["last_error"]["at"].endswith("Z")
    assert spaire["oldest_age_seconds"] == 1.234
    assert spaire["leases"] == [
        {"pid": os.getpid(), "rows": 1, "expires": spaire["leases"][0]["expires"], "alive": True}
    ]
    assert data["dead_letters_by_reason"][0]["reason"] == "422: customer unknown"


def test_status_table(spool_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["status", "--spool", str(spool_path)]) == 0
    out = capsys.readouterr().out
    child = (spool_path.parent / "child.pid").read_text()
    assert "6 waiting, 2 dead letters" in out
    assert f"1 leased by pid {os.getpid()} (running; the lease expires in" in out
    assert f"2 leased by pid {child} (gone" in out
    assert "1 with an expired lease" in out
    assert "spaire (" in out and "the backend asked to retry 1 event(s)" in out
    assert "422: customer unknown" in out and "usagetap replay --dead" in out


def test_status_reads_without_writing(spool_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    before = hashlib.sha256(spool_path.read_bytes()).hexdigest()
    assert main(["status", "--spool", str(spool_path), "--format", "json"]) == 0
    assert hashlib.sha256(spool_path.read_bytes()).hexdigest() == before
    assert json.loads(capsys.readouterr().out)["sinks"][1]["leases"][0]["pid"] == os.getpid()


def test_the_default_spool_path_is_usagetap_spool(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    open_spool(str(tmp_path / "elsewhere.db"), max_bytes=0, lease_seconds=60).close()
    monkeypatch.setenv("USAGETAP_SPOOL", str(tmp_path / "elsewhere.db"))
    assert main(["status"]) == 0
    out = capsys.readouterr().out
    assert "elsewhere.db" in out and "Empty: nothing is waiting" in out


def test_a_missing_spool_is_one_clear_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["status", "--spool", str(tmp_path / "none.db")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"usagetap: error: no spool at {tmp_path / 'none.db'}")
    assert not (tmp_path / "none.db").exists()


def test_a_file_that_is_no_spool_is_one_clear_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"not a database at all" * 100)
    assert main(["status", "--spool", str(junk)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"usagetap: error: cannot read the spool at {junk}")


def test_a_database_that_is_no_spool_is_named_so(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from usagetap.sinks import Ledger

    Ledger(tmp_path / "ledger.db").send([make_record()])
    assert main(["status", "--spool", str(tmp_path / "ledger.db")]) == 1
    assert capsys.readouterr().err.strip() == (
        f"usagetap: error: {tmp_path / 'ledger.db'} is not a usagetap spool (no dead, meta, spool table)"
    )


def _worker(spool: Spool, halt: str | None) -> SinkWorker:
    """A worker for a sink that refuses every batch with ``halt``, or (None) accepts every batch."""

    class Backend:
        name, max_batch = "spaire", 100

        def send(self, records: Sequence[UsageRecord]) -> Outcomes:
            return Outcomes.all_delivered(records) if halt is None else Outcomes.halted(records, halt)

        def close(self) -> None:
            pass

    return SinkWorker(
        Backend(),
        "spaire",
        spool,
        batch_size=100,
        flush_interval=1.0,
        backoff=Backoff(),
        on_batch_done=lambda: None,
    )


def test_a_halted_sink_shows_as_paused_with_its_reason(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "spool.db"
    spool = open_spool(str(path), max_bytes=0, lease_seconds=3600, hot_limit=0)
    spool.add(["spaire"], [make_record() for _ in range(2)])
    worker = _worker(spool, "401 Unauthorized: invalid API key")
    worker.deliver_due()
    worker.publish_status(force=True)
    assert status_of(path, ahead=0).sinks[0].halted == "401 Unauthorized: invalid API key"
    assert main(["status", "--spool", str(path)]) == 0
    assert "spaire: paused, 2 waiting: 401 Unauthorized: invalid API key" in capsys.readouterr().out


def test_a_sink_that_delivers_again_is_no_longer_shown_paused(tmp_path: Path) -> None:
    path = tmp_path / "spool.db"
    spool = open_spool(str(path), max_bytes=0, lease_seconds=3600, hot_limit=0)
    spool.add(["spaire"], [make_record()])
    halted = _worker(spool, "unused")
    halted.hold("USAGETAP_SINK=spaire needs USAGETAP_API_KEY (the backend's API key)")
    halted.publish_status(force=True)
    assert status_of(path, ahead=0).sinks[0].halted is not None
    healthy = _worker(spool, None)
    healthy.halted = "USAGETAP_SINK=spaire needs USAGETAP_API_KEY (the backend's API key)"
    healthy.deliver_due()
    healthy.publish_status(force=True)
    assert status_of(path, ahead=0).sinks[0].halted is None


def test_a_spool_salvaged_from_a_corrupt_one_shows_what_was_salvaged_and_what_could_not_be_read(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spool_path = tmp_path / "spool.db"
    spool = open_spool(str(spool_path), max_bytes=0, lease_seconds=60, hot_limit=0, chunks={"spaire": 1})
    records = [make_record() for _ in range(200)]
    spool.add(["spaire"], records)
    spool.close()
    data = bytearray(spool_path.read_bytes())
    leaf = data.index(records[0].event_id.encode()) // 4096
    data[leaf * 4096 : (leaf + 1) * 4096] = bytes(4096)
    spool_path.write_bytes(bytes(data))
    open_spool(str(spool_path), max_bytes=0, lease_seconds=60).close()

    assert main(["status", "--spool", str(spool_path), "--format", "json"]) == 0
    salvage = json.loads(capsys.readouterr().out)["salvage"]
    lost = salvage["unreadable_rows"]
    assert 0 < lost < 200 and salvage["salvaged"] == 200 - lost
    assert main(["status", "--spool", str(spool_path)]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert f"{200 - lost} records salvaged from the corrupt spool" in out
    assert f"unreadable: 0 records, {lost} rows of unknown size" in out


def test_status_before_any_spool_exists_says_nothing_waiting(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["status"]) == 0
    out = capsys.readouterr().out
    assert out.lower().startswith("nothing waiting") and str(tmp_path / "spool.db") in out
    assert not (tmp_path / "spool.db").exists()


def test_status_json_before_any_spool_exists_is_an_empty_status(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["status", "--format", "json"]) == 0
    status = json.loads(capsys.readouterr().out)
    assert (status["pending"], status["dead_letters"], status["sinks"]) == (0, 0, [])
    assert status["spool"] == str(tmp_path / "spool.db")


def test_a_spool_never_salvaged_shows_no_damaged_data(
    spool_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["status", "--spool", str(spool_path)]) == 0
    assert "Damaged data" not in capsys.readouterr().out
    assert main(["status", "--spool", str(spool_path), "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["salvage"] is None
