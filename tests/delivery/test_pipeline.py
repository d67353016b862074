from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence

import pytest

from tests.helpers import make_record
from usagetap import _stats
from usagetap.delivery import Pipeline
from usagetap.record import UsageRecord
from usagetap.sinks import Memory, Outcomes


class Gate:
    """A sink that blocks in send() until released, counting batches."""

    name = "gate"
    max_batch = 1000

    def __init__(self) -> None:
        self.release = threading.Event()
        self.batches: list[int] = []

    def send(self, records: Sequence[UsageRecord]) -> Outcomes:
        self.release.wait()
        self.batches.append(len(records))
        return Outcomes.all_delivered(records)

    def close(self) -> None:
        self.release.set()


def test_records_are_delivered_in_batches_and_priced() -> None:
    sink = Memory()
    pipeline = Pipeline(sink, batch_size=10, flush_interval=0.05)
    records = [make_record() for _ in range(25)]
    for r in records:
        pipeline.submit(r)
    result = pipeline.flush(5.0)
    assert (result.sent, result.pending, result.dead) == (25, 0, 0)
    assert bool(result)
    assert sink.records == records
    assert all(r.cost is not None and r.cost > 0 for r in sink.records)
    pipeline.shutdown()


def test_submit_never_waits_for_the_sink() -> None:
    gate = Gate()
    pipeline = Pipeline(gate, batch_size=5, flush_interval=0.01)
    pipeline.submit(make_record())
    time.sleep(0.05)  # the worker is now blocked inside send()
    started = time.perf_counter()
    for _ in range(1000):
        pipeline.submit(make_record())
    assert time.perf_counter() - started < 1.0
    assert pipeline.pending() == 1001
    gate.release.set()
    assert pipeline.flush(5.0).pending == 0
    assert sum(gate.batches) == 1001
    pipeline.shutdown()


def test_flush_returns_at_its_deadline_when_the_sink_hangs() -> None:
    gate = Gate()
    pipeline = Pipeline(gate, flush_interval=0.01)
    pipeline.submit(make_record())
    started = time.monotonic()
    result = pipeline.flush(0.3)
    assert 0.25 <= time.monotonic() - started < 2.0
    assert result.pending == 1 and not result
    gate.release.set()
    assert pipeline.flush(5.0).sent == 1
    pipeline.shutdown()


class Flaky:
    name = "flaky"
    max_batch = 100

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.inner = Memory()

    def send(self, records: Sequence[UsageRecord]) -> Outcomes:
        if self.failures:
            self.failures -= 1
            raise ConnectionError("backend down")
        return self.inner.send(records)

    def close(self) -> None:
        pass


def test_a_failing_sink_is_retried_until_it_takes_the_batch() -> None:
    sink = Flaky(failures=2)
    pipeline = Pipeline(sink, flush_interval=0.01)
    records = [make_record() for _ in range(3)]
    for r in records:
        pipeline.submit(r)
    assert pipeline.flush(10.0).sent == 3
    assert sink.inner.records == records
    assert _stats.snapshot()["retried"] == 6
    pipeline.shutdown()


class Judge:
    """Delivers even token counts, dead-letters odd ones."""

    name = "judge"
    max_batch = 100

    def send(self, records: Sequence[UsageRecord]) -> Outcomes:
        return Outcomes(
            delivered=[r.event_id for r in records if r.input_tokens % 2 == 0],
            dead={r.event_id: "odd" for r in records if r.input_tokens % 2},
        )

    def close(self) -> None:
        pass


def test_dead_letters_are_counted_and_logged(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="usagetap")
    pipeline = Pipeline(Judge(), flush_interval=0.01)
    for n in range(6):
        pipeline.submit(make_record(input_tokens=n))
    result = pipeline.flush(5.0)
    assert (result.sent, result.dead, result.pending) == (3, 3, 0)
    assert _stats.snapshot()["dead"] == 3
    assert sum("dead-lettered by judge: odd" in r.getMessage() for r in caplog.records) == 3
    pipeline.shutdown()


def test_shutdown_is_idempotent_and_refuses_later_records(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="usagetap")
    sink = Memory()
    pipeline = Pipeline(sink, flush_interval=0.01)
    pipeline.submit(make_record())
    assert pipeline.shutdown().sent == 1
    assert pipeline.shutdown().sent == 0
    pipeline.submit(make_record())
    pipeline.submit(make_record())
    assert len(sink.records) == 1
    assert _stats.snapshot()["dropped.after_shutdown"] == 2
    assert sum("after shutdown" in r.getMessage() for r in caplog.records) == 1
