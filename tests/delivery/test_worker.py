"""A sink worker keeps its counters and last error in the spool, for ``usagetap status``."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Optional

from tests.helpers import make_record
from usagetap import _stats
from usagetap._record import UsageRecord
from usagetap.delivery import Pipeline, Settings
from usagetap.delivery.backoff import Backoff
from usagetap.delivery.spool import Spool, open_spool
from usagetap.delivery.store import MemoryStore, Store
from usagetap.delivery.worker import SinkWorker, send_bisecting, status_key
from usagetap.sinks import Outcomes
from usagetap.sinks.base import as_sink

Answer = Callable[[Sequence[UsageRecord], int], Outcomes]


class Scripted:
    """A sink whose answer to its n-th call comes from ``answer(records, n)``."""

    max_batch = 100

    def __init__(self, answer: Answer, name: str = "scripted") -> None:
        self.name = name
        self.answer = answer
        self.calls = 0

    def send(self, records: Sequence[UsageRecord]) -> Outcomes:
        self.calls += 1
        return self.answer(records, self.calls)

    def close(self) -> None:
        pass


def spool_at(path: Path) -> Spool:
    return open_spool(str(path), max_bytes=0, lease_seconds=60.0)


def worker_for(store: Store, sink: Scripted, interval: float = 0.0) -> SinkWorker:
    worker = SinkWorker(
        sink,
        sink.name,
        store,
        batch_size=100,
        flush_interval=1.0,
        backoff=Backoff(initial=0.0, cap=0.0, jitter=0.0),  # retried rows are due again at once
        on_batch_done=lambda: None,
    )
    worker.status_interval = interval
    return worker


def meta(spool: Spool, key: str) -> Optional[dict[str, Any]]:
    row = spool._conn.execute("SELECT value FROM meta WHERE key=?", (status_key(key),)).fetchone()
    return None if row is None else dict(json.loads(row[0]))


def down_then_mixed(records: Sequence[UsageRecord], call: int) -> Outcomes:
    """Call 1: the backend is down. Call 2: odd token counts are refused, one event was there already."""
    if call == 1:
        raise ConnectionError("backend down")
    ok = [r.event_id for r in records if r.input_tokens % 2 == 0]
    return Outcomes(
        delivered=ok,
        duplicates=1,
        dead={r.event_id: "422: odd" for r in records if r.input_tokens % 2},
    )


def test_counters_and_the_last_error_land_in_the_spools_meta(tmp_path: Path) -> None:
    spool = spool_at(tmp_path / "s.db")
    spool.add(["scripted"], [make_record(input_tokens=n) for n in range(5)])
    worker = worker_for(spool, Scripted(down_then_mixed))
    worker.deliver_due()
    status = meta(spool, "scripted")
    assert status is not None
    assert {k: status[k] for k in ("delivered", "duplicates", "retried", "dead")} == {
        "delivered": 3,
        "duplicates": 1,
        "retried": 5,
        "dead": 2,
    }
    assert status["last_error"] == "ConnectionError: backend down"
    assert status["last_error_at"] == worker.last_error_at
    assert status["pid"] > 0 and status["updated"] >= status["last_error_at"]


def test_processes_sharing_a_spool_add_up_their_counters(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    first, second = spool_at(path), Spool(path, max_bytes=0, lease_seconds=60.0)
    first.add(["memory"], [make_record() for _ in range(3)])
    worker_for(first, Scripted(lambda records, _: Outcomes.all_delivered(records), "memory")).deliver_due()
    second.add(["memory"], [make_record() for _ in range(2)])
    worker_for(second, Scripted(lambda records, _: Outcomes.all_delivered(records), "memory")).deliver_due()
    status = meta(first, "memory")
    assert status is not None and status["delivered"] == 5
    assert "last_error" not in status, "no process had an error"


def test_a_new_error_is_written_at_once_other_changes_at_most_once_per_interval(tmp_path: Path) -> None:
    spool = spool_at(tmp_path / "s.db")
    worker = worker_for(
        spool, Scripted(lambda records, _: Outcomes.all_delivered(records), "memory"), interval=3600.0
    )
    spool.add(["memory"], [make_record()])
    worker.deliver_due()
    assert (meta(spool, "memory") or {})["delivered"] == 1, "the first change is written at once"

    spool.add(["memory"], [make_record()])
    worker.deliver_due()
    assert (meta(spool, "memory") or {})["delivered"] == 1, "held back within the interval"

    worker.sink = Scripted(lambda records, _: Outcomes.all_retry(records))
    spool.add(["memory"], [make_record()])
    worker.backoff = Backoff(initial=60.0, cap=60.0, jitter=0.0)
    worker.deliver_due()
    status = meta(spool, "memory") or {}
    assert status["last_error"] == "the backend asked to retry 1 event(s)"
    assert (status["delivered"], status["retried"]) == (2, 1), "an error brings the held counts along"

    worker.publish_status(force=True)
    assert meta(spool, "memory") == status, "nothing changed: nothing written"

    spool.add(["memory"], [make_record()])
    worker.deliver_due()
    assert (meta(spool, "memory") or {})["retried"] == 1, "the same error again waits for the interval"

    def down(records: Sequence[UsageRecord], call: int) -> Outcomes:
        raise ConnectionError("backend down")

    worker.sink = Scripted(down)
    spool.add(["memory"], [make_record()])
    worker.deliver_due()
    status = meta(spool, "memory") or {}
    assert (status["last_error"], status["retried"]) == ("ConnectionError: backend down", 3)


def test_nothing_is_written_when_the_store_is_not_a_spool() -> None:
    store = MemoryStore()
    store.add(["scripted"], [make_record(input_tokens=n) for n in range(3)])
    worker = worker_for(store, Scripted(down_then_mixed))
    worker.deliver_due()
    assert worker.sent == 2 and (worker.last_error or "").endswith("ConnectionError: backend down")
    assert _stats.snapshot()["internal_errors"] == 0


def test_the_pipeline_writes_status_from_its_worker_thread_only(tmp_path: Path) -> None:
    threads: set[str] = set()
    original = Spool.update_meta

    def spy(self: Spool, key: str, **kw: Any) -> None:
        threads.add(threading.current_thread().name)
        original(self, key, **kw)

    Spool.update_meta = spy  # type: ignore[method-assign]
    try:
        path = tmp_path / "spool.db"
        sink = Scripted(lambda records, call: Outcomes.all_delivered(records), "memory")
        pipeline = Pipeline(
            sink, Settings(durability="sync", spool_path=str(path), flush_interval=0.02, batch_size=4)
        )
        for _ in range(10):
            pipeline.submit(make_record())
        assert pipeline.flush(10.0).pending == 0
        reader = spool_at(path)
        deadline = time.monotonic() + 10  # batches settled within a second are written on the next one
        while (meta(reader, "memory") or {}).get("delivered") != 10 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert (meta(reader, "memory") or {}).get("delivered") == 10
        pipeline.shutdown()
    finally:
        Spool.update_meta = original  # type: ignore[method-assign]
    assert threads == {"usagetap-sink-memory"}


class TooLarge:
    """A backend that refuses more than ``limit`` records per request with a 413, counting requests."""

    name = "too_large"
    max_batch = 1000

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.sizes: list[int] = []
        self.refused = 0

    def send(self, records: Sequence[UsageRecord]) -> Outcomes:
        self.sizes.append(len(records))
        if len(records) > self.limit:
            self.refused += 1
            refused = Outcomes.split_batch(records, "too_large: HTTP 413: too large")
            refused.too_large = True
            return refused
        return Outcomes.all_delivered(records)

    def close(self) -> None:
        pass


def test_a_413_limit_is_learned_once_and_later_batches_go_at_the_learned_size() -> None:
    store = MemoryStore()
    store.add(["too_large"], [make_record() for _ in range(10_000)])  # 20 batches of 500
    sink = TooLarge(limit=150)
    worker = SinkWorker(
        sink,
        sink.name,
        store,
        batch_size=500,
        flush_interval=1.0,
        backoff=Backoff(initial=0.0, cap=0.0, jitter=0.0),
        on_batch_done=lambda: None,
    )
    worker.deliver_due()
    assert store.pending() == 0 and worker.sent == 10_000
    assert sink.refused <= 8, f"{sink.refused} answers 413 in {len(sink.sizes)} requests"
    assert sink.sizes[-20:-1] == [150] * 19, "once learned, batches go at the largest size taken"


def test_a_refused_key_answered_to_several_batches_in_flight_pauses_the_sink_once() -> None:
    store = MemoryStore()
    store.add(["scripted"], [make_record() for _ in range(4)])
    worker = worker_for(store, Scripted(lambda records, n: Outcomes()))
    worker.backoff = Backoff(initial=0.0, cap=300.0, jitter=0.0)
    first, second = store.lease("scripted", 2, 0.0), store.lease("scripted", 2, 0.0)
    worker._finish_batch(first, Outcomes.halted([e.record for e in first], "HTTP 401"))
    paused = worker.paused_until
    worker._finish_batch(second, Outcomes.halted([e.record for e in second], "HTTP 401"))
    assert worker.paused_until == paused, "the second answer of the same refusal did not lengthen the pause"
    assert store.pending() == 4


def test_a_batch_refused_as_a_whole_resends_only_the_refused_events_never_the_delivered() -> None:
    """A sink that delivered the first two events (one request) and had the rest refused as a whole."""
    records = [make_record() for _ in range(6)]
    sent: list[list[str]] = []

    def answer(batch: Sequence[UsageRecord], call: int) -> Outcomes:
        sent.append([r.event_id for r in batch])
        if call == 1:
            return Outcomes(
                delivered=[r.event_id for r in batch[:2]],
                retry=[r.event_id for r in batch[2:]],
                split="HTTP 422",
            )
        return Outcomes.all_delivered(batch)

    outcomes = send_bisecting(as_sink(Scripted(answer)), records, lambda kind, reason: None)
    ids = [r.event_id for r in records]
    assert sent == [ids, ids[2:4], ids[4:]]
    assert sorted(outcomes.delivered) == sorted(ids) and not outcomes.split
