"""``configure()``: each call changes only what it names; reconfiguring keeps sinks and records."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import pytest

import usagetap
from tests.helpers import deliver, make_record
from usagetap import _runtime
from usagetap._record import UsageRecord
from usagetap.sinks import Memory, Outcomes


class Remote:
    """A remote-looking sink (durability defaults to the spool) that counts what it gets and closes."""

    name = "remote"
    max_batch = 1000

    def __init__(self) -> None:
        self.received: Counter[str] = Counter()
        self.closed = 0
        self.halt: str | None = None

    def send(self, records: Sequence[UsageRecord]) -> Outcomes:
        if self.halt is not None:
            return Outcomes.halted(records, self.halt)
        self.received.update(r.event_id for r in records)
        return Outcomes.all_delivered(records)

    def close(self) -> None:
        self.closed += 1


def in_thread(fn, *args, **kwargs) -> threading.Thread:  # type: ignore[no-untyped-def]
    thread = threading.Thread(target=fn, args=args, kwargs=kwargs, daemon=True)
    thread.start()
    return thread


def test_naming_only_the_customer_policy_keeps_the_configured_sink(tmp_path: Path) -> None:
    sink = Memory()
    usagetap.configure(sink=sink, flush_interval=0.02)
    usagetap.configure(customer_policy="warn")
    record = make_record()
    deliver(record)
    assert usagetap.flush(5.0)
    assert [r.event_id for r in sink.records] == [record.event_id]
    assert not (tmp_path / "ledger.db").exists()


def test_naming_only_the_customer_policy_keeps_the_running_pipeline() -> None:
    usagetap.configure(sink=Memory())
    pipeline = _runtime.get_pipeline()
    usagetap.configure(customer_policy="require")
    assert _runtime.get_pipeline() is pipeline and not pipeline.closed


def test_naming_batch_size_keeps_the_sink_and_the_other_settings() -> None:
    sink = Memory()
    usagetap.configure(sink=sink, flush_interval=0.3, durability="spool")
    usagetap.configure(batch_size=7)
    pipeline = _runtime.get_pipeline()
    assert pipeline.sinks == [sink]
    assert (pipeline.settings.batch_size, pipeline.settings.flush_interval) == (7, 0.3)
    assert pipeline.settings.durability == "spool"


def test_reconfiguring_does_not_close_a_sink_the_new_pipeline_keeps() -> None:
    sink = Remote()
    usagetap.configure(sink=sink)
    usagetap.configure(batch_size=3)
    assert sink.closed == 0
    usagetap.shutdown()
    assert sink.closed == 1


def test_sink_none_keeps_the_sink_in_effect() -> None:
    sink = Memory()
    usagetap.configure(sink=sink)
    usagetap.configure(sink=None, flush_interval=0.5)
    assert _runtime.get_pipeline().sinks == [sink]


@pytest.mark.parametrize("durability", ["spool", "memory"])
def test_records_queued_before_a_reconfiguration_are_delivered_exactly_once(durability: str) -> None:
    sink = Remote()
    usagetap.configure(sink=sink, durability=durability, flush_interval=60.0, batch_size=1000)
    records = [make_record() for _ in range(50)]
    for record in records:
        deliver(record)
    usagetap.configure(flush_interval=0.02, exit_timeout=0.0)
    result = usagetap.flush(10.0)
    assert result.pending == 0
    assert sink.received == Counter(r.event_id for r in records)


def test_reconfiguring_does_not_wait_for_a_halted_sink() -> None:
    sink = Remote()
    sink.halt = "401 Unauthorized: invalid API key"
    usagetap.configure(sink=sink, flush_interval=0.01, exit_timeout=600.0)
    deliver(make_record())
    assert usagetap.flush(5.0).pending == 1  # delivery is halted now
    thread = in_thread(usagetap.configure, batch_size=10, exit_timeout=600.0)
    thread.join(60.0)
    assert not thread.is_alive(), "configure() waited for the halted sink"


def test_a_halted_sinks_records_stay_pending_across_a_reconfiguration() -> None:
    sink = Remote()
    sink.halt = "401 Unauthorized: invalid API key"
    usagetap.configure(sink=sink, flush_interval=0.01, exit_timeout=0.5)
    record = make_record()
    deliver(record)
    usagetap.flush(5.0)
    usagetap.configure(batch_size=10)
    assert usagetap.flush(5.0).pending == 1  # returns once the new pipeline's worker is halted too
    sink.halt = None  # the key is fixed; the worker's pause runs out
    worker = _runtime.get_pipeline().workers[0]
    worker.halted, worker.paused_until = None, 0.0
    assert usagetap.flush(10.0)
    assert sink.received == Counter([record.event_id])


def test_flush_returns_pending_at_once_when_only_a_halted_sink_holds_records() -> None:
    sink = Remote()
    sink.halt = "401 Unauthorized: invalid API key"
    usagetap.configure(sink=sink, flush_interval=0.01)
    deliver(make_record())
    results = []
    thread = in_thread(lambda: results.append(usagetap.flush(600.0)))
    thread.join(60.0)
    assert not thread.is_alive(), "flush() waited for the halted sink"
    assert results[0].pending == 1


def test_stats_count_halted_sinks() -> None:
    sink = Remote()
    sink.halt = "401 Unauthorized: invalid API key"
    usagetap.configure(sink=[sink, Memory()], flush_interval=0.01)
    deliver(make_record())
    usagetap.flush(5.0)
    assert usagetap.stats()["halted"] == 1


class Stuck(Remote):
    """A sink whose sends hang until released, then fail as a connection error would (kept, retried)."""

    def __init__(self) -> None:
        super().__init__()
        self.release = threading.Event()
        self.sending = threading.Event()

    def send(self, records: Sequence[UsageRecord]) -> Outcomes:
        self.sending.set()
        self.release.wait(30.0)
        raise ConnectionError("backend unreachable")


def test_records_a_replaced_pipeline_was_still_sending_are_delivered_by_its_successor(tmp_path: Path) -> None:
    spool = str(tmp_path / "spool.db")
    stuck = Stuck()
    usagetap.configure(
        sink=stuck, spool_path=spool, durability="spool", flush_interval=0.01, exit_timeout=0.2
    )
    records = [make_record() for _ in range(3)]
    for record in records:
        deliver(record)
    assert stuck.sending.wait(10.0)
    good = Remote()
    usagetap.configure(sink=good, spool_path=spool)  # returns while the old worker is still in its send
    releaser = threading.Timer(1.0, stuck.release.set)
    releaser.start()
    try:
        result = usagetap.flush(20.0)
    finally:
        releaser.cancel()
        stuck.release.set()
    assert result.pending == 0
    assert good.received == Counter(r.event_id for r in records)
