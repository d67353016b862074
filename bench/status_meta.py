"""Cost of the status a sink worker keeps in the spool: spool delivery throughput with and without it.

A pipeline with durability "spool" delivers ``--events`` records to a sink that acknowledges at once
(batches of 100, so the spool, not the sink, is the bottleneck); "status off" replaces the worker's
``publish_status`` with a no-op. Median of ``--runs``; runs alternate off and on.

    python bench/status_meta.py [--events 20000] [--runs 5]
"""

from __future__ import annotations

import argparse
import math
import statistics
import tempfile
import time
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path

from _common import machine

from usagetap._record import UsageRecord, new_event_id
from usagetap.delivery import Pipeline, Settings
from usagetap.delivery.worker import SinkWorker
from usagetap.sinks import Outcomes


class Ack:
    name = "ack"
    max_batch = 100

    def send(self, records: Sequence[UsageRecord]) -> Outcomes:
        return Outcomes.all_delivered(records)

    def close(self) -> None:
        pass


def run(events: int, with_status: bool) -> float:
    now = datetime.now(timezone.utc)
    records = [
        UsageRecord(
            event_id=new_event_id(),
            timestamp=now,
            customer="org_1",
            provider="openai",
            model="gpt-4.1",
            request_model="gpt-4.1",
            operation="chat",
            input_tokens=100,
            output_tokens=20,
        )
        for _ in range(events)
    ]
    with tempfile.TemporaryDirectory() as tmp:
        pipeline = Pipeline(Ack(), Settings(durability="spool", spool_path=str(Path(tmp) / "s.db")))
        for record in records[:1]:
            pipeline.submit(record)
        pipeline.flush(30.0)  # the spool and the worker exist now
        worker: SinkWorker = pipeline.workers[0]
        if not with_status:
            worker.publish_status = lambda **_: None  # type: ignore[method-assign]
        started = time.perf_counter()
        for record in records[1:]:
            pipeline.submit(record)
        result = pipeline.flush(120.0)
        elapsed = time.perf_counter() - started
        assert result.pending == 0
        pipeline.shutdown()
    return (events - 1) / elapsed


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    print(machine())
    rates: dict[bool, list[float]] = {True: [], False: []}
    for _ in range(args.runs):
        for with_status in (False, True):
            rates[with_status].append(run(args.events, with_status))
    for with_status, label in ((False, "status off"), (True, "status on ")):
        print(f"{label}: {statistics.median(rates[with_status]):,.0f} events/s")
    ratio = statistics.median(rates[True]) / statistics.median(rates[False])
    print(f"ratio on/off: {ratio:.3f}" if math.isfinite(ratio) else "ratio: n/a")


if __name__ == "__main__":
    main()
