"""The pipeline with in-process sinks: batching, retries, splits, pauses, dead letters, fan-out."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence

import pytest

from tests.helpers import make_record
from usagetap import _stats
from usagetap._record import UsageRecord
from usagetap.delivery import Pipeline, Settings
from usagetap.sinks import Memory, Outcomes


def ids(records: Sequence[UsageRecord]) -> list[str]:
    return sorted(r.event_id for r in records)


class Gate:
    """A sink that blocks in send() until released, counting batches."""

    name = "gate"
    max_batch = 1000

    def __init__(self) -> None:
        self.release = threading.Event()
        self.entered = threading.Event()
        self.batches: list[int] = []

    def send(self, records: Sequence[UsageRecord]) -> Outcomes:
        self.entered.set()
        self.release.wait()
        self.batches.append(len(records))
        return Outcomes.all_delivered(records)

    def close(self) -> None:
        self.release.set()


class Scripted:
    """A sink whose answer to each call comes from a function of the batch."""

    name = "scripted"
    max_batch = 1000

    def __init__(self, answer) -> None:  # type: ignore[no-untyped-def]
        self.answer = answer
        self.calls: list[list[str]] = []
        self.inner = Memory()

    def send(self, records: Sequence[UsageRecord]) -> Outcomes:
        self.calls.append([r.event_id for r in records])
        outcome: Outcomes = self.answer(records, len(self.calls))
        self.inner.send([r for r in records if r.event_id in outcome.delivered])
        return outcome

    def close(self) -> None:
        pass


def test_records_are_delivered_in_batches_and_priced() -> None:
    sink = Memory()
    pipeline = Pipeline(sink, Settings(batch_size=10, flush_interval=0.05))
    records = [make_record() for _ in range(25)]
    for r in records:
        pipeline.submit(r)
    result = pipeline.flush(5.0)
    assert (result.sent, result.pending, result.dead) == (25, 0, 0)
    assert bool(result)
    assert ids(sink.records) == ids(records)
    assert all(r.cost is not None and r.cost > 0 for r in sink.records)
    pipeline.shutdown()


def test_submit_never_waits_for_the_sink() -> None:
    gate = Gate()
    pipeline = Pipeline(gate, Settings(batch_size=5, flush_interval=0.01))
    pipeline.submit(make_record())
    deadline = time.monotonic() + 10
    while not gate.entered.is_set() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert gate.entered.is_set(), "the worker is blocked inside send()"
    producer = threading.Thread(target=lambda: [pipeline.submit(make_record()) for _ in range(1000)])
    producer.start()
    producer.join(10)
    assert not producer.is_alive(), "submit() waited for the blocked sink"
    assert pipeline.pending() == 1001
    gate.release.set()
    assert pipeline.flush(5.0).pending == 0
    assert sum(gate.batches) == 1001
    assert max(gate.batches) <= 5
    pipeline.shutdown()


def test_flush_returns_at_its_deadline_when_the_sink_hangs() -> None:
    gate = Gate()
    pipeline = Pipeline(gate, Settings(flush_interval=0.01))
    pipeline.submit(make_record())
    started = time.monotonic()
    result = pipeline.flush(0.3)
    assert 0.25 <= time.monotonic() - started < 2.0
    assert result.pending == 1 and not result
    gate.release.set()
    assert pipeline.flush(5.0).sent == 1
    pipeline.shutdown()


@pytest.mark.parametrize("durability", ["memory", "spool"])
def test_an_exception_from_the_sink_means_retry_every_event(durability: str) -> None:
    def answer(records: Sequence[UsageRecord], call: int) -> Outcomes:
        if call <= 2:
            raise ConnectionError("backend down")
        return Outcomes.all_delivered(records)

    sink = Scripted(answer)
    pipeline = Pipeline(sink, Settings(flush_interval=0.01, durability=durability))
    records = [make_record() for _ in range(3)]
    for r in records:
        pipeline.submit(r)
    assert pipeline.flush(15.0).sent == 3
    assert ids(sink.inner.records) == ids(records)
    failed = sum(len(c) for c in sink.calls[:2])
    assert _stats.snapshot()["retried"] == failed
    pipeline.shutdown()


@pytest.mark.parametrize("durability", ["memory", "spool"])
def test_dead_letters_are_counted_and_logged_once_per_reason(
    caplog: pytest.LogCaptureFixture, durability: str
) -> None:
    caplog.set_level(logging.WARNING, logger="usagetap")

    def answer(records: Sequence[UsageRecord], call: int) -> Outcomes:
        return Outcomes(
            delivered=[r.event_id for r in records if r.input_tokens % 2 == 0],
            dead={r.event_id: "odd" for r in records if r.input_tokens % 2},
        )

    pipeline = Pipeline(Scripted(answer), Settings(flush_interval=0.01, durability=durability))
    for n in range(6):
        pipeline.submit(make_record(input_tokens=n))
    result = pipeline.flush(5.0)
    assert (result.sent, result.dead, result.pending) == (3, 3, 0)
    assert _stats.snapshot()["dead"] == 3
    assert sum("refused an event for good: odd" in r.getMessage() for r in caplog.records) == 1
    pipeline.shutdown()


@pytest.mark.parametrize("durability", ["memory", "spool"])
def test_per_event_outcomes_retry_only_the_failed_events(durability: str) -> None:
    flaky: set[str] = set()

    def answer(records: Sequence[UsageRecord], call: int) -> Outcomes:
        if call == 1:
            flaky.update(r.event_id for r in records[::2])
        retry = [r.event_id for r in records if r.event_id in flaky and call == 1]
        return Outcomes(delivered=[r.event_id for r in records if r.event_id not in retry], retry=retry)

    sink = Scripted(answer)
    pipeline = Pipeline(sink, Settings(flush_interval=0.01, batch_size=100, durability=durability))
    records = [make_record() for _ in range(10)]
    for r in records:
        pipeline.submit(r)
    assert pipeline.flush(10.0).pending == 0
    assert ids(sink.inner.records) == ids(records)
    resent = [i for call in sink.calls[1:] for i in call]
    assert sorted(resent) == sorted(flaky), "only the events the backend asked for were sent again"
    pipeline.shutdown()


@pytest.mark.parametrize("durability", ["memory", "spool"])
def test_a_batch_refused_as_a_whole_is_bisected_down_to_the_culprit(durability: str) -> None:
    records = [make_record() for _ in range(9)]
    culprit = records[5].event_id

    def answer(batch: Sequence[UsageRecord], call: int) -> Outcomes:
        if any(r.event_id == culprit for r in batch):
            return Outcomes.split_batch(batch, "422: metadata.key too long")
        return Outcomes.all_delivered(batch)

    sink = Scripted(answer)
    pipeline = Pipeline(sink, Settings(flush_interval=0.01, batch_size=100, durability=durability))
    for r in records:
        pipeline.submit(r)
    result = pipeline.flush(5.0)
    assert (result.sent, result.dead, result.pending) == (8, 1, 0)
    assert culprit not in {r.event_id for r in sink.inner.records}
    assert [c for c in sink.calls if c == [culprit]], "the culprit was finally sent alone"
    assert len(sink.calls) <= 2 * 4 + 1
    pipeline.shutdown()


def test_retry_after_pauses_the_whole_sink() -> None:
    def answer(records: Sequence[UsageRecord], call: int) -> Outcomes:
        if call == 1:
            return Outcomes.all_retry(records, retry_after=0.6)
        return Outcomes.all_delivered(records)

    sink = Scripted(answer)
    times: list[float] = []
    original = sink.send

    def timed(records: Sequence[UsageRecord]) -> Outcomes:
        times.append(time.monotonic())
        return original(records)

    sink.send = timed  # type: ignore[method-assign]
    pipeline = Pipeline(sink, Settings(flush_interval=0.01, batch_size=2))
    for _ in range(2):
        pipeline.submit(make_record())
    time.sleep(0.15)
    for _ in range(4):
        pipeline.submit(make_record())
    assert pipeline.flush(10.0).pending == 0
    assert len(times) >= 3
    assert times[1] - times[0] >= 0.55, "no batch was sent during the pause"
    pipeline.shutdown()


def test_halt_keeps_every_event_pauses_and_logs_once(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="usagetap")
    sink = Scripted(lambda records, call: Outcomes.halted(records, "401 Unauthorized: invalid API key"))
    pipeline = Pipeline(sink, Settings(flush_interval=0.01))
    for _ in range(3):
        pipeline.submit(make_record())
    result = pipeline.flush(0.5)
    assert (result.sent, result.dead, result.pending) == (0, 0, 3)
    assert len(sink.calls) == 1, "delivery paused after the refusal"
    assert sum("cannot deliver (401 Unauthorized" in r.getMessage() for r in caplog.records) == 1
    assert "sk-" not in caplog.text
    pipeline.shutdown(0.2)


def test_fan_out_acknowledges_each_sink_on_its_own() -> None:
    good = Memory()
    down = Scripted(lambda records, call: (_ for _ in ()).throw(ConnectionError("down")))
    pipeline = Pipeline([good, down], Settings(flush_interval=0.01))
    records = [make_record() for _ in range(4)]
    for r in records:
        pipeline.submit(r)
    result = pipeline.flush(0.5)
    assert ids(good.records) == ids(records), "one failing sink never blocks the other"
    assert result.pending == 4
    assert len(down.calls) >= 1
    pipeline.shutdown(0.1)


def test_two_sinks_of_the_same_kind_get_distinct_keys() -> None:
    a, b = Memory(), Memory()
    pipeline = Pipeline([a, b], Settings(flush_interval=0.01))
    pipeline.submit(make_record())
    assert pipeline.flush(5.0).sent == 2
    assert len(a.records) == len(b.records) == 1
    assert pipeline.keys == ["memory", "memory-2"]
    pipeline.shutdown()


def test_shutdown_is_idempotent_and_refuses_later_records(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="usagetap")
    sink = Memory()
    pipeline = Pipeline(sink, Settings(flush_interval=0.01))
    pipeline.submit(make_record())
    assert pipeline.shutdown().sent == 1
    assert pipeline.shutdown().sent == 0
    pipeline.submit(make_record())
    pipeline.submit(make_record())
    assert len(sink.records) == 1
    assert _stats.snapshot()["dropped.after_shutdown"] == 2
    assert sum("after shutdown" in r.getMessage() for r in caplog.records) == 1


def test_a_full_buffer_drops_newest_counts_and_calls_on_drop() -> None:
    gate = Gate()
    dropped: list[tuple[str, str]] = []
    settings = Settings(
        max_queue=5, commit_interval=60, on_drop=lambda r, why: dropped.append((r.event_id, why))
    )
    pipeline = Pipeline(gate, settings)
    records = [make_record() for _ in range(8)]
    for r in records:
        pipeline.submit(r)
    assert [d[0] for d in dropped] == [r.event_id for r in records[5:]]
    assert {d[1] for d in dropped} == {"queue_full"}
    assert _stats.snapshot()["dropped.queue_full"] == 3
    gate.release.set()
    assert pipeline.flush(5.0).sent == 5
    pipeline.shutdown()


def test_block_policy_waits_for_room_then_gives_up() -> None:
    gate = Gate()
    pipeline = Pipeline(gate, Settings(max_queue=2, commit_interval=60, overflow="block", block_timeout=0.2))
    pipeline.submit(make_record())
    pipeline.submit(make_record())
    started = time.monotonic()
    pipeline.submit(make_record())
    assert time.monotonic() - started >= 0.18
    assert _stats.snapshot()["dropped.queue_full"] == 1
    gate.release.set()
    pipeline.shutdown()


def test_memory_store_spills_to_the_spool_when_full(tmp_path) -> None:  # type: ignore[no-untyped-def]
    gate = Gate()
    spool = str(tmp_path / "spill.db")
    pipeline = Pipeline(
        gate, Settings(durability="memory", max_queue=10, spool_path=spool, commit_interval=0.01)
    )
    for i in range(25):
        pipeline.submit(make_record())
        if i % 5 == 4:
            time.sleep(0.1)  # let the intake move them from the buffer to the store
    deadline = time.monotonic() + 5
    while pipeline.pending() < 25 and time.monotonic() < deadline:
        time.sleep(0.01)
    from usagetap.delivery.spool import open_spool

    assert open_spool(spool, max_bytes=0, lease_seconds=60).pending() >= 15
    gate.release.set()
    result = pipeline.flush(10.0)
    assert result.pending == 0 and sum(gate.batches) == 25
    pipeline.shutdown()


class Overflowing:
    """A sink whose send() raises, like a sink with a bug, for a batch holding a "poison" record."""

    name = "overflowing"
    max_batch = 1000

    def __init__(self) -> None:
        self.inner = Memory()

    def send(self, records: Sequence[UsageRecord]) -> Outcomes:
        if any(r.dimensions.get("poison") for r in records):
            raise OverflowError("Python int too large to convert to SQLite INTEGER")
        return self.inner.send(records)

    def close(self) -> None:
        self.inner.close()


class Unreachable:
    """A sink whose send() hangs until released, then asks to retry (a backend that does not answer)."""

    name = "unreachable"
    max_batch = 1000

    def __init__(self) -> None:
        self.entered = threading.Event()
        self.release = threading.Event()

    def send(self, records: Sequence[UsageRecord]) -> Outcomes:
        self.entered.set()
        self.release.wait(30)
        return Outcomes.all_retry(records)

    def close(self) -> None:
        pass


def dead_letters(pipeline: Pipeline) -> dict[str, str]:
    from usagetap.delivery.spool import Spool
    from usagetap.delivery.store import MemoryStore, SpillingStore

    store = pipeline.store
    if isinstance(store, Spool):
        letters = store.dead_letters()
    else:
        memory = store.memory if isinstance(store, SpillingStore) else store
        assert isinstance(memory, MemoryStore)
        letters = list(memory.dead_letters)
    return {letter.record.event_id: letter.reason for letter in letters}


@pytest.mark.parametrize("durability", ["memory", "spool"])
def test_an_exception_one_record_causes_dead_letters_it_and_the_others_are_delivered(durability: str) -> None:
    good = [make_record() for _ in range(10)]
    bad = [make_record(dimensions={"poison": True}), make_record(dimensions={"poison": 2})]
    sink = Overflowing()
    pipeline = Pipeline(sink, Settings(flush_interval=0.01, durability=durability))
    for r in [*good[:3], bad[0], *good[3:7], bad[1], *good[7:]]:
        pipeline.submit(r)
    result = pipeline.flush(10.0)
    assert (result.sent, result.dead, result.pending) == (10, 2, 0)
    assert ids(sink.inner.records) == ids(good)
    reason = "overflowing: OverflowError: Python int too large to convert to SQLite INTEGER"
    assert dead_letters(pipeline) == {r.event_id: reason for r in bad}
    pipeline.shutdown()


def test_a_send_still_running_at_shutdown_settles_on_an_open_store(tmp_path, caplog) -> None:  # type: ignore[no-untyped-def]
    from usagetap.delivery.spool import open_spool

    sink = Unreachable()
    path = str(tmp_path / "spool.db")
    pipeline = Pipeline(sink, Settings(durability="spool", spool_path=path, flush_interval=0.01))
    pipeline.submit(make_record(event_id="in-flight"))
    assert sink.entered.wait(10)
    pipeline.shutdown(timeout=0.05)  # the worker is left behind in its send
    sink.release.set()
    for worker in pipeline.workers:
        worker.join(10)
    assert "closed database" not in caplog.text
    assert _stats.snapshot().get("internal_errors", 0) == 0
    kept = open_spool(path, max_bytes=0, lease_seconds=60)
    assert [e.record.event_id for e in kept.lease("unreachable", 10, time.time() + 3600)] == ["in-flight"]
    kept.close()


class _Clock:
    """``time`` for the worker, ``offset`` seconds ahead."""

    def __init__(self) -> None:
        self.offset = 0.0

    def time(self) -> float:
        return time.time() + self.offset

    def __getattr__(self, name: str) -> object:
        return getattr(time, name)


def test_delivery_resumes_at_the_next_retry_after_a_refused_key_is_fixed(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from usagetap.delivery import worker as worker_module
    from usagetap.sinks import Spaire
    from usagetap.testing.backends import SpaireBackend

    clock = _Clock()
    monkeypatch.setattr(worker_module, "time", clock)
    with SpaireBackend(api_key="activated-later") as backend:
        sink = Spaire(api_key="new-key", base_url=backend.url)
        path = str(tmp_path / "spool.db")
        pipeline = Pipeline(sink, Settings(durability="spool", spool_path=path, flush_interval=0.01))
        try:
            pipeline.submit(make_record(event_id="refused"))
            deadline = time.monotonic() + 10
            while not (pipeline.workers and pipeline.workers[0].halted) and time.monotonic() < deadline:
                time.sleep(0.01)
            [worker] = pipeline.workers
            assert worker.halted, "the refused key paused the sink"
            pipeline.submit(make_record(event_id="while-paused"))  # kept in memory, leased for 120 s
            while len(pipeline.buffer) or pipeline._transit:
                time.sleep(0.01)
            backend.api_key = "new-key"  # the key is fixed at the backend
            clock.offset = worker.paused_until - time.time() + 1  # the next retry: the leases are half spent
            result = pipeline.flush(timeout=10)
            assert sorted(backend.events) == ["refused", "while-paused"]
            assert result.pending == 0
        finally:
            pipeline.shutdown(timeout=1)
