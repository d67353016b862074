"""Delivery with real processes and real sockets: faults, SIGKILL, black holes, fork, broken spools."""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import usagetap
from tests.delivery.backend import FaultyBackend, IngestSink
from tests.helpers import deliver, make_record
from usagetap.delivery.spool import open_spool

ROOT = Path(__file__).resolve().parents[2]

CHILD_PRELUDE = f"""
import sys, time
sys.path.insert(0, {str(ROOT)!r})
import usagetap
from tests.delivery.backend import IngestSink
from tests.helpers import deliver, make_record


def spooled(n, path=".usagetap/spool.db", timeout=30.0):
    # wait until the spool holds n records, as usagetap status counts them (the intake commits on its thread)
    import sqlite3
    from usagetap._status import NotASpool, open_readonly, read_status
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            conn = open_readonly(path)
            try:
                if read_status(conn, path).pending >= n:
                    return
            finally:
                conn.close()
        except (OSError, sqlite3.Error, NotASpool):
            pass
        time.sleep(0.02)
    raise SystemExit(f"the spool did not reach {{n}} records in {{timeout}} s")
"""


def child(code: str, cwd: Path) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("USAGETAP_")}
    return subprocess.Popen(
        [sys.executable, "-c", CHILD_PRELUDE + textwrap.dedent(code)],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@pytest.fixture
def backend() -> Iterator[FaultyBackend]:
    with FaultyBackend() as b:
        yield b


def test_every_event_is_delivered_once_under_a_30_percent_fault_rate(tmp_path: Path) -> None:
    with FaultyBackend(fault_rate=0.3, max_items=80) as backend:
        usagetap.configure(
            sink=IngestSink(backend.url, max_batch=50),
            durability="spool",
            spool_path=str(tmp_path / "spool.db"),
            flush_interval=0.05,
            batch_size=100,
        )
        expected: dict[str, list[int]] = {}
        for i in range(1500):
            customer = f"org_{i % 7}"
            record = make_record(customer=customer, input_tokens=100 + i, output_tokens=i % 50)
            deliver(record)
            t = expected.setdefault(customer, [0, 0])
            t[0] += record.input_tokens
            t[1] += record.output_tokens
        result = usagetap.flush(timeout=120)
        assert result.pending == 0, backend.faults_injected
        assert len(backend.stored) == 1500
        assert backend.totals_by_customer() == {k: (v[0], v[1]) for k, v in expected.items()}
        assert set(backend.faults_injected) >= {"500", "503", "429", "reset", "stored_then_500", "partial"}
        assert max(backend.receipts.values()) >= 2, "some events were resent and deduplicated"
        assert usagetap.stats()["sent"] == 1500
        assert usagetap.stats().get("dead", 0) == 0


def test_sigkill_then_restart_loses_nothing_committed_and_bills_nothing_twice(
    tmp_path: Path, backend: FaultyBackend
) -> None:
    backend.mode = "down"
    proc = child(
        f"""
        usagetap.configure(sink=IngestSink({backend.url!r}), durability="spool", commit_interval=0.05)
        for i in range(300):
            deliver(make_record(event_id=f"ev-{{i}}", customer="org_k", input_tokens=10))
        spooled(300)
        print("READY", flush=True)
        time.sleep(3600)
        """,
        tmp_path,
    )
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "READY", proc.stderr.read() if proc.stderr else ""
    proc.send_signal(signal.SIGKILL)
    proc.wait(10)
    assert not backend.stored

    backend.mode = "slow_stored"  # the next process is killed while its first batch is in flight
    proc = child(
        f"""
        usagetap.configure(sink=IngestSink({backend.url!r}, max_batch=100), durability="spool")
        usagetap.flush(timeout=0.5)
        print("READY", flush=True)
        time.sleep(3600)
        """,
        tmp_path,
    )
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "READY"
    deadline = time.monotonic() + 10
    while not backend.stored and time.monotonic() < deadline:
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait(10)
    in_flight = set(backend.stored)
    assert 0 < len(in_flight) < 300

    backend.mode = None
    proc = child(
        f"""
        usagetap.configure(sink=IngestSink({backend.url!r}), durability="spool")
        result = usagetap.flush(timeout=30)
        print(result.pending, usagetap.stats().get("sent", 0), flush=True)
        """,
        tmp_path,
    )
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert out.split()[0] == "0"
    assert sorted(backend.stored) == sorted(f"ev-{i}" for i in range(300))
    assert all(backend.receipts[i] == 2 for i in in_flight), (
        "the in-flight batch was resent once, deduplicated"
    )
    assert sum(e["input_tokens"] for e in backend.stored.values()) == 3000


def test_exit_never_hangs_on_a_backend_that_never_answers(tmp_path: Path) -> None:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)  # accepts connections, never reads or answers
    url = f"http://127.0.0.1:{listener.getsockname()[1]}/ingest"
    started = time.monotonic()
    proc = child(
        f"""
        usagetap.configure(sink=IngestSink({url!r}, timeout=60), durability="spool", exit_timeout=2.0)
        for i in range(20):
            deliver(make_record(customer="org_bh"))
        print("captured", flush=True)
        """,
        tmp_path,
    )
    out, err = proc.communicate(timeout=60)
    elapsed = time.monotonic() - started
    listener.close()
    assert proc.returncode == 0, err
    assert "captured" in out
    assert elapsed < 10, f"exit took {elapsed:.1f}s"
    assert "kept in .usagetap/spool.db for the next start" in err
    assert open_spool(str(tmp_path / ".usagetap" / "spool.db"), max_bytes=0, lease_seconds=60).pending() == 20


def _forked_child(url: str) -> None:
    for i in range(40):
        deliver(make_record(event_id=f"child-{i}", customer="org_child"))


def test_a_forked_child_delivers_its_own_records_and_never_the_parents(
    tmp_path: Path, backend: FaultyBackend
) -> None:
    usagetap.configure(sink=IngestSink(backend.url), durability="spool", flush_interval=0.05)
    for i in range(60):
        deliver(make_record(event_id=f"parent-{i}", customer="org_parent"))
    context = multiprocessing.get_context("fork")
    process = context.Process(target=_forked_child, args=(backend.url,))
    process.start()
    process.join(60)
    assert process.exitcode == 0
    assert usagetap.flush(timeout=30).pending == 0
    assert sorted(backend.stored) == sorted(
        [f"parent-{i}" for i in range(60)] + [f"child-{i}" for i in range(40)]
    )
    assert max(backend.receipts.values()) == 1, "no record was sent twice"


def test_sync_durability_commits_before_the_call_returns(tmp_path: Path, backend: FaultyBackend) -> None:
    backend.mode = "down"
    spool = str(tmp_path / "sync.db")
    usagetap.configure(sink=IngestSink(backend.url), durability="sync", spool_path=spool)
    deliver(make_record(event_id="sync-1"))
    reader = open_spool(spool, max_bytes=0, lease_seconds=60)
    assert reader.pending() == 1
    backend.mode = None
    assert usagetap.flush(timeout=10).pending == 0
    assert list(backend.stored) == ["sync-1"]


def test_an_unwritable_spool_falls_back_to_memory_loudly(
    tmp_path: Path, backend: FaultyBackend, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="usagetap")
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("x")
    usagetap.configure(sink=IngestSink(backend.url), durability="spool", spool_path=str(blocker / "spool.db"))
    for i in range(5):
        deliver(make_record(event_id=f"mem-{i}"))
    assert usagetap.flush(timeout=10).pending == 0
    assert sorted(backend.stored) == [f"mem-{i}" for i in range(5)]
    assert "kept in memory only" in caplog.text
    assert usagetap.stats()["spool_failures"] == 1


def test_a_full_disk_mid_run_falls_back_to_memory(
    tmp_path: Path, backend: FaultyBackend, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="usagetap")
    backend.mode = "down"
    usagetap.configure(sink=IngestSink(backend.url), durability="spool", spool_path=str(tmp_path / "s.db"))
    deliver(make_record(event_id="before"))
    usagetap.flush(timeout=0.3)
    pipeline = usagetap._runtime.get_pipeline()
    pipeline.store._conn.execute("PRAGMA max_page_count=1")  # type: ignore[union-attr]
    deliver(make_record(event_id="after", dimensions={"pad": "x" * 200_000}))
    usagetap.flush(timeout=0.3)
    assert "kept in memory only" in caplog.text
    backend.mode = None
    assert usagetap.flush(timeout=10).pending == 0
    assert "after" in backend.stored


def test_a_corrupt_spool_is_replaced_and_delivery_goes_on(
    tmp_path: Path, backend: FaultyBackend, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="usagetap")
    path = tmp_path / "spool.db"
    path.write_bytes(os.urandom(8192))
    usagetap.configure(sink=IngestSink(backend.url), durability="spool", spool_path=str(path))
    deliver(make_record(event_id="fresh"))
    assert usagetap.flush(timeout=10).pending == 0
    assert list(backend.stored) == ["fresh"]
    assert "was corrupt" in caplog.text
    assert any(".corrupt-" in p.name for p in tmp_path.iterdir())


def test_memory_stays_flat_while_the_backend_is_down(tmp_path: Path, backend: FaultyBackend) -> None:
    backend.mode = "down"
    usagetap.configure(sink=IngestSink(backend.url), durability="spool", spool_path=str(tmp_path / "s.db"))
    pipeline = usagetap._runtime.get_pipeline()
    for i in range(20_000):
        deliver(make_record())
        if i % 5000 == 4999:
            time.sleep(0.3)
    usagetap.flush(timeout=1.0)
    assert len(pipeline.buffer) == 0, "nothing piles up in memory"
    store = pipeline.store
    assert store is not None and store.pending() == 20_000, "everything waits on disk"


def test_aflush_and_the_flushing_decorator(tmp_path: Path, backend: FaultyBackend) -> None:
    import asyncio

    usagetap.configure(
        sink=IngestSink(backend.url), durability="spool", spool_path=str(tmp_path / "s.db"), flush_interval=30
    )

    @usagetap.flushing(timeout=10)
    def handler(event: dict, context: object) -> str:
        deliver(make_record(event_id=event["id"]))
        return "ok"

    assert handler({"id": "lambda-1"}, None) == "ok"
    assert list(backend.stored) == ["lambda-1"], "delivered before the handler returned"

    async def main() -> tuple[int, bool]:
        deliver(make_record(event_id="async-1"))
        result = await usagetap.aflush(timeout=10)
        return result.pending, "async-1" in backend.stored

    # the worker may have sent it before aflush() began (then ``sent`` is 0): delivered either way
    assert asyncio.run(main()) == (0, True), "delivered before aflush() returned"


def test_gunicorn_preload_workers_deliver_each_record_once(tmp_path: Path, backend: FaultyBackend) -> None:
    pytest.importorskip("gunicorn")
    app = tmp_path / "app.py"
    app.write_text(
        textwrap.dedent(f"""
        import os, sys, itertools
        sys.path.insert(0, {str(ROOT)!r})
        import usagetap
        from tests.delivery.backend import IngestSink
        from tests.helpers import deliver, make_record
        usagetap.configure(sink=IngestSink({backend.url!r}), durability="spool", flush_interval=0.05)
        deliver(make_record(event_id="preload"))
        counter = itertools.count()

        def app(environ, start_response):
            event_id = f"req-{{os.getpid()}}-{{next(counter)}}"
            deliver(make_record(event_id=event_id))
            start_response("200 OK", [("Content-Type", "text/plain")])
            return [event_id.encode()]
    """)
    )
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    env = {k: v for k, v in os.environ.items() if not k.startswith("USAGETAP_")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "--preload", "-w", "2", "-b", f"127.0.0.1:{port}", "app:app"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    import httpx

    served: list[str] = []
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                served.append(httpx.get(f"http://127.0.0.1:{port}/", timeout=5).text)
                break
            except httpx.TransportError:
                time.sleep(0.1)
        served += [httpx.get(f"http://127.0.0.1:{port}/", timeout=5).text for _ in range(30)]
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=30)
    deadline = time.monotonic() + 10
    while len(backend.stored) < len(served) + 1 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert sorted(backend.stored) == sorted([*served, "preload"])
    assert max(backend.receipts.values()) == 1
    assert len({s.split("-")[1] for s in served}) >= 1


def test_threads_capturing_concurrently_lose_nothing(tmp_path: Path, backend: FaultyBackend) -> None:
    usagetap.configure(
        sink=IngestSink(backend.url),
        durability="spool",
        spool_path=str(tmp_path / "s.db"),
        flush_interval=0.05,
    )

    def work(n: int) -> None:
        for i in range(250):
            deliver(make_record(event_id=f"t{n}-{i}"))

    threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert usagetap.flush(timeout=30).pending == 0
    assert len(backend.stored) == 2000
