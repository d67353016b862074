"""``usagetap replay``: dead letters and ledger ranges re-sent with their event ids, never billed twice."""

from __future__ import annotations

import sqlite3
import time
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from tests.helpers import make_record
from usagetap._record import UsageRecord
from usagetap._replay import Replayer
from usagetap.cli import main
from usagetap.delivery import Pipeline, Settings
from usagetap.delivery.backoff import Backoff
from usagetap.delivery.spool import open_spool
from usagetap.sinks import Ledger, SolvaPay, Spaire
from usagetap.testing.backends import SolvaPayBackend, SpaireBackend

NOW = datetime.now(timezone.utc).replace(microsecond=0)
FAST = Backoff(initial=0.001, cap=0.001, jitter=0.0)


def day(n: int) -> str:
    return (NOW - timedelta(days=n)).date().isoformat()


@pytest.fixture
def spaire() -> Iterator[SpaireBackend]:
    with SpaireBackend() as backend:
        yield backend


@pytest.fixture
def env_spaire(spaire: SpaireBackend, monkeypatch: pytest.MonkeyPatch) -> SpaireBackend:
    monkeypatch.setenv("USAGETAP_SINK", "spaire")
    monkeypatch.setenv("USAGETAP_API_KEY", spaire.api_key)
    monkeypatch.setenv("USAGETAP_BASE_URL", spaire.url)
    return spaire


@pytest.fixture
def ledger(tmp_path: Path) -> list[UsageRecord]:
    """Six records in the default ledger ($USAGETAP_DB), one or two a day over the last four days."""
    records = [
        make_record(customer=f"org_{n % 3}", timestamp=NOW - timedelta(days=n // 2), input_tokens=10 + n)
        for n in range(6)
    ]
    Ledger().send(records)
    return records


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["replay", *args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


# -- ledger ranges -----------------------------------------------------------------


def test_replaying_a_ledger_range_twice_bills_each_event_once(
    env_spaire: SpaireBackend, ledger: list[UsageRecord], capsys: pytest.CaptureFixture[str]
) -> None:
    chosen = {r.event_id for r in ledger if r.timestamp.date().isoformat() >= day(1)}
    assert len(chosen) == 4
    code, out, _ = run(capsys, "--since", day(1))
    assert code == 0
    assert out.strip() == (
        f"replayed ledger records ({day(1)} .. today) to spaire: "
        "4 selected: 4 sent, 0 duplicates, 0 dead, 0 failed"
    )
    code, out, _ = run(capsys, "--since", day(1))
    assert code == 0 and "4 selected: 0 sent, 4 duplicates, 0 dead, 0 failed" in out
    assert set(env_spaire.events) == chosen, "each event once, under its own id"
    assert (env_spaire.inserted, env_spaire.duplicates) == (4, 4)
    totals = env_spaire.totals()
    assert sum(row["input_tokens"] for row in totals.values()) == sum(
        r.input_tokens for r in ledger if r.event_id in chosen
    )


def test_until_bounds_the_range_by_utc_day(
    env_spaire: SpaireBackend, ledger: list[UsageRecord], capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(capsys, "--since", day(2), "--until", day(2))
    assert code == 0 and "2 selected: 2 sent" in out
    assert set(env_spaire.events) == {r.event_id for r in ledger[4:]}


def test_records_go_in_batches_of_the_sinks_max_batch(spaire: SpaireBackend) -> None:
    sink = Spaire(api_key=spaire.api_key, base_url=spaire.url)
    sink.max_batch = 3
    records = [make_record() for _ in range(10)]
    result = Replayer(sink).replay(records)
    assert (result.selected, result.sent) == (10, 10)
    assert [len(r.json()["events"]) for r in spaire.requests] == [3, 3, 3, 1]


# -- the Outcomes contract ---------------------------------------------------------


def test_retryable_answers_are_retried_after_the_backends_retry_after(spaire: SpaireBackend) -> None:
    sink = Spaire(api_key=spaire.api_key, base_url=spaire.url)
    spaire.rate_limit_next(retry_after=0.05)
    spaire.fail_next(503)
    waits: list[tuple[float, str]] = []
    records = [make_record() for _ in range(3)]
    result = Replayer(sink, backoff=FAST, on_wait=lambda s, why: waits.append((s, why))).replay(records)
    assert (result.sent, result.complete) == (3, True)
    assert len(spaire.requests) == 3 and len(spaire.events) == 3
    assert waits[0][0] >= 0.05, "Retry-After is the least wait"
    assert len(waits) == 2


def test_retries_are_bounded_and_what_is_left_failed(spaire: SpaireBackend) -> None:
    sink = Spaire(api_key=spaire.api_key, base_url=spaire.url)
    spaire.fail_next(503, count=10)
    result = Replayer(sink, retries=2, backoff=FAST).replay([make_record(), make_record()])
    assert len(spaire.requests) == 3
    assert (result.sent, len(result.failed), result.complete) == (0, 2, False)
    assert all("gave up after 3 attempts" in why for why in result.failed.values())


def test_a_batch_refused_as_a_whole_is_bisected_down_to_the_culprit() -> None:
    with SpaireBackend(pinpoint=False) as backend:
        sink = Spaire(api_key=backend.api_key, base_url=backend.url, customer_field="customer_id")
        good = [make_record(customer=str(uuid.uuid4())) for _ in range(5)]
        bad = make_record(customer=str(uuid.uuid1()))
        result = Replayer(sink, backoff=FAST).replay([*good[:2], bad, *good[2:]])
    assert (result.sent, list(result.dead)) == (5, [bad.event_id])
    assert "HTTP 422" in result.dead[bad.event_id]
    assert set(backend.events) == {r.event_id for r in good}


def test_a_halt_stops_the_replay(spaire: SpaireBackend) -> None:
    sink = Spaire(api_key="spaire_wrong_key", base_url=spaire.url)
    sink.max_batch = 2
    result = Replayer(sink, backoff=FAST).replay([make_record() for _ in range(5)])
    assert len(spaire.requests) == 1, "nothing more is sent once the sink halts"
    assert result.halted is not None and "HTTP 401" in result.halted
    assert (result.selected, len(result.failed), result.sent) == (5, 5, 0)


# -- dead letters -------------------------------------------------------------------


@pytest.fixture
def solvapay(monkeypatch: pytest.MonkeyPatch) -> Iterator[SolvaPayBackend]:
    with SolvaPayBackend() as backend:
        monkeypatch.setenv("USAGETAP_SINK", "solvapay")
        monkeypatch.setenv("USAGETAP_API_KEY", backend.api_key)
        monkeypatch.setenv("USAGETAP_BASE_URL", backend.url)
        yield backend


@pytest.fixture
def dead_letters(solvapay: SolvaPayBackend, tmp_path: Path) -> list[UsageRecord]:
    """Deliver through the real pipeline to a SolvaPay that knows org_1 only: org_2 and org_3 die."""
    solvapay.customers = {"org_1"}
    sink = SolvaPay(api_key=solvapay.api_key, base_url=solvapay.url)
    pipeline = Pipeline(
        sink, Settings(durability="spool", spool_path=str(tmp_path / "spool.db"), flush_interval=0.02)
    )
    records = [make_record(customer=f"org_{n % 3 + 1}", timestamp=NOW - timedelta(hours=n)) for n in range(6)]
    for record in records:
        pipeline.submit(record)
    result = pipeline.flush(10.0)
    pipeline.shutdown()
    assert (result.sent, result.dead) == (2, 4)
    return records


def dead_rows(path: Path) -> dict[str, tuple[str, float]]:
    with sqlite3.connect(path) as conn:
        rows = conn.execute("SELECT event_id, reason, died FROM dead").fetchall()
    return {event_id: (reason, died) for event_id, reason, died in rows}


def test_dead_letters_the_backend_now_takes_leave_the_spool_the_others_stay_with_the_new_reason(
    solvapay: SolvaPayBackend,
    dead_letters: list[UsageRecord],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    spool = tmp_path / "spool.db"
    before = dead_rows(spool)
    assert {r.customer for r in dead_letters if r.event_id in before} == {"org_2", "org_3"}
    solvapay.customers = {"org_1", "org_2"}  # the cause is fixed for org_2 only

    code, out, err = run(capsys, "--dead")

    assert code == 3, "some events were not delivered"
    assert "4 selected: 2 sent, 0 duplicates, 2 dead, 0 failed" in out
    assert "dead: 2 x solvapay: HTTP 404: Customer not found: org_3" in err
    after = dead_rows(spool)
    org_3 = {r.event_id for r in dead_letters if r.customer == "org_3"}
    assert set(after) == org_3
    for event_id, (reason, died) in after.items():
        assert reason == "solvapay: HTTP 404: Customer not found: org_3"
        assert died > before[event_id][1]
    delivered = [e for e in solvapay.events.values() if e["customerRef"] == "org_2"]
    assert len(delivered) == 2


def test_replaying_dead_letters_twice_sends_nothing_twice(
    solvapay: SolvaPayBackend, dead_letters: list[UsageRecord], capsys: pytest.CaptureFixture[str]
) -> None:
    solvapay.customers = None
    assert run(capsys, "--dead")[0] == 0
    code, _, err = run(capsys, "--dead")
    assert code == 0 and "nothing to replay: no dead letters of sink solvapay" in err
    keys = [e["idempotencyKey"] for e in solvapay.events.values()]
    assert sorted(keys) == sorted(r.event_id for r in dead_letters)


def test_dead_letters_filtered_by_reason_and_sink(
    solvapay: SolvaPayBackend, dead_letters: list[UsageRecord], capsys: pytest.CaptureFixture[str]
) -> None:
    solvapay.customers = None
    code, out, _ = run(capsys, "--dead", "--reason", "CUSTOMER NOT FOUND: ORG_3")
    assert code == 0 and "2 selected: 2 sent" in out
    code, _, err = run(capsys, "--dead", "--sink", "stripe")
    assert code == 0 and "no dead letters of sink stripe" in err


def test_a_dry_run_sends_nothing_and_says_what_it_would(
    solvapay: SolvaPayBackend,
    dead_letters: list[UsageRecord],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    requests = len(solvapay.requests)
    code, out, _ = run(capsys, "--dead", "--dry-run")
    assert code == 0
    assert out.startswith("dry run: would replay 4 dead letters of sink solvapay to SolvaPay(")
    assert "2 customer(s)" in out
    assert "2 x solvapay: HTTP 404: Customer not found: org_2" in out
    assert len(solvapay.requests) == requests
    assert len(dead_rows(tmp_path / "spool.db")) == 4


def test_a_refused_key_stops_and_keeps_every_dead_letter(
    solvapay: SolvaPayBackend,
    dead_letters: list[UsageRecord],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    before = dead_rows(tmp_path / "spool.db")
    monkeypatch.setenv("USAGETAP_API_KEY", "sk_sandbox_revoked_key")
    code, out, err = run(capsys, "--dead")
    assert code == 3
    assert "0 sent, 0 duplicates, 0 dead, 4 failed" in out
    assert "usagetap: stopped: solvapay: HTTP 401" in err
    assert "revoked" not in out + err
    assert dead_rows(tmp_path / "spool.db") == before


def test_a_progress_bar_on_a_terminal(
    env_spaire: SpaireBackend,
    ledger: list[UsageRecord],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("FORCE_COLOR", "1")
    monkeypatch.setenv("TERM", "xterm-256color")
    code, _, err = run(capsys, "--since", day(10))
    assert code == 0
    assert "replaying to spaire" in err and "6/6" in err


# -- errors -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([], "say what to replay: --dead, or a ledger range with --since and/or --until"),
        (
            ["--since", "2026-11-02", "--until", "2026-11-01"],
            "--since 2026-11-02 is after --until 2026-11-01",
        ),
        (["--sink", "spaire", "--since", "2026-11-01"], "--sink, --reason and --spool select dead letters"),
        (["--dead", "--db", "x.db"], "--db selects a ledger range; it does not go with --dead"),
        (["--since", "2026-11-01"], "no sink configured: set USAGETAP_SINK"),
    ],
)
def test_usage_errors_are_one_clear_line(
    args: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(capsys, *args)
    assert code == 1 and out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"usagetap: error: {message}")


def test_a_sink_misconfigured_in_the_environment_is_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("USAGETAP_SINK", "spaire")
    code, _, err = run(capsys, "--since", "2026-11-01")
    assert code == 1
    assert (
        err.strip() == "usagetap: error: USAGETAP_SINK=spaire needs USAGETAP_API_KEY (the backend's API key)"
    )


def test_missing_ledger_and_spool_are_one_line(
    env_spaire: SpaireBackend, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run(capsys, "--since", "2026-11-01", "--db", str(tmp_path / "none.db"))
    assert code == 1 and err.strip() == f"usagetap: error: no ledger at {tmp_path / 'none.db'} " + (
        "(pass --db, or set USAGETAP_DB)"
    )
    code, _, err = run(capsys, "--dead", "--spool", str(tmp_path / "none.db"))
    assert code == 1 and err.strip().startswith(f"usagetap: error: no spool at {tmp_path / 'none.db'}")
    assert not (tmp_path / "none.db").exists()


def test_a_dry_run_of_a_ledger_range_needs_no_sink(
    ledger: list[UsageRecord], capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(capsys, "--since", day(1), "--dry-run")
    assert code == 0
    tokens = sum(r.input_tokens + r.output_tokens for r in ledger[:4])
    assert out.strip() == (
        f"dry run: would replay 4 ledger records ({day(1)} .. today) to no sink (USAGETAP_SINK is not set): "
        f"3 customer(s), used {day(1)} .. {day(0)}, {tokens:,} tokens"
    )


# -- files: a corrupt spool moved aside, a plain spool, a ledger --------------------------


def damaged_spool(path: Path, records: list[UsageRecord], sink: str = "spaire") -> None:
    """A spool of ``records`` (one a row) for ``sink``, the table page holding the first overwritten."""
    spool = open_spool(str(path), max_bytes=0, lease_seconds=60, hot_limit=0, chunks={sink: 1})
    spool.add([sink], records)
    spool.close()
    data = bytearray(path.read_bytes())
    leaf = data.index(records[0].event_id.encode()) // 4096
    data[leaf * 4096 : (leaf + 1) * 4096] = bytes(range(256)) * 16
    path.write_bytes(bytes(data))


def test_replay_from_a_corrupt_spool_moved_aside_sends_its_readable_records_under_their_ids(
    env_spaire: SpaireBackend, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "spool.db"
    made = [make_record() for _ in range(300)]
    damaged_spool(path, made)
    open_spool(str(path), max_bytes=0, lease_seconds=60).close()  # moves it aside
    (aside,) = [p for p in tmp_path.iterdir() if p.name.endswith(tuple("0123456789"))]

    code, out, err = run(capsys, "--from", str(aside))

    sent = set(env_spaire.events)
    assert 0 < len(sent) < len(made) and sent <= {r.event_id for r in made}
    assert code == 3, "some records could not be read"
    assert f"{len(sent)} selected: {len(sent)} sent, 0 duplicates" in out
    assert f"0 records and {len(made) - len(sent)} rows of {aside} could not be read" in err
    code, out, _ = run(capsys, "--from", str(aside))
    assert f"{len(sent)} selected: 0 sent, {len(sent)} duplicates" in out, "replayed twice, billed once"
    assert set(env_spaire.events) == sent


def test_replay_from_a_spool_file_sends_every_waiting_record_and_nothing_else(
    env_spaire: SpaireBackend, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "spool.db"
    spool = open_spool(str(path), max_bytes=0, lease_seconds=60, hot_limit=0, chunks={"spaire": 3})
    waiting = [make_record() for _ in range(7)]
    spool.add(["spaire", "other"], waiting)
    gone = spool.lease("spaire", 3, time.time())
    spool.ack("spaire", gone)
    spool.close()

    code, out, _ = run(capsys, "--from", str(path))

    assert code == 0
    assert "ledger" not in out and "4 selected: 4 sent" in out
    assert set(env_spaire.events) == {r.event_id for r in waiting[3:]}


def test_replay_from_a_ledger_file_sends_its_records_in_the_window(
    env_spaire: SpaireBackend, ledger: list[UsageRecord], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(capsys, "--from", str(tmp_path / "ledger.db"), "--since", day(1))
    assert code == 0 and "4 selected: 4 sent" in out
    assert set(env_spaire.events) == {r.event_id for r in ledger if r.timestamp.date().isoformat() >= day(1)}


def test_replay_from_does_not_go_with_dead_letters(
    env_spaire: SpaireBackend, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run(capsys, "--from", str(tmp_path / "x.db"), "--dead")
    assert code == 1 and "does not go with --dead" in err
    code, _, err = run(capsys, "--from", str(tmp_path / "x.db"))
    assert code == 1 and f"no file at {tmp_path / 'x.db'}" in err
