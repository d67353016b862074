"""Capture cost on the caller's thread: microseconds per record, p50 and p99, with 1 and 8 threads.

Method: per record, the wall time (``perf_counter_ns``) of the step a caller's
thread runs, with the delivery pipeline running as configured here
(durability ``"spool"``, an HTTP sink to a loopback receiver in its own
process), inside ``usagetap.customer()``. Steps:

- ``after the SDK returns``: ``adapter.on_result(call, completion)`` with a parsed
  ``openai`` ``ChatCompletion``, what a wrapped client runs once the SDK has its
  result (build the ``Capture``, queue it); the ``Call`` is planned untimed before;
- ``usagetap.record()``: meter a response obtained elsewhere (extraction, record
  and validation happen on the caller's thread here);
- ``publish(record)``: publish an already built ``UsageRecord`` (validate + queue).

With 8 threads, each thread times its own records (all start together); a
record's time then includes waiting for the GIL held by another thread.

    python bench/capture.py [--records 20000]
"""

from __future__ import annotations

import argparse
import threading
import time
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any

from _common import ChatCalls, completion, in_temp_dir, machine, percentile, provider_process

import usagetap
from usagetap.delivery.intake import Capture
from usagetap.providers.openai.usage import chat_usage
from usagetap.publish import publish

Step = Callable[[int], Callable[[], Any]]


def steps() -> dict[str, Step]:
    """Each step: given ``i``, prepare (untimed) and return the timed part."""
    from openai.types.chat import ChatCompletion

    chats = ChatCalls()

    def after_sdk(i: int) -> Callable[[], Any]:
        result = ChatCompletion.model_validate(completion(i))
        call = chats.new()
        return lambda: chats.adapter.on_result(call, result)

    def manual(i: int) -> Callable[[], Any]:
        result = ChatCompletion.model_validate(completion(i))
        return lambda: usagetap.record(result)

    def built(i: int) -> Callable[[], Any]:
        usage = chat_usage(completion(i))
        record = usagetap.UsageRecord(
            event_id=f"bench-{i}",
            timestamp=datetime.now(timezone.utc),
            customer="org_bench",
            provider="openai",
            model=usage.model or "gpt-4.1",
            request_model=None,
            operation="chat",
            input_tokens=usage.input_tokens,
            output_tokens=usage.output_tokens,
        )
        return lambda: publish(Capture.of(record.validate()))

    return {"after the SDK returns": after_sdk, "usagetap.record()": manual, "publish(record)": built}


def run_thread(step: Step, start: int, n: int, out: list[float], barrier: threading.Barrier) -> None:
    clock = time.perf_counter_ns
    with usagetap.customer("org_bench"):
        prepared = [step(start + i) for i in range(n)]
        barrier.wait()
        for timed in prepared:
            started = clock()
            timed()
            out.append(clock() - started)


_offset = [0]


def measure(step: Step, threads: int, records: int) -> list[float]:
    """Per-record times; every record has its own response id (so its own event)."""
    per_thread = records // threads
    first, _offset[0] = _offset[0], _offset[0] + records
    results: list[list[float]] = [[] for _ in range(threads)]
    barrier = threading.Barrier(threads)
    workers = [
        threading.Thread(
            target=run_thread, args=(step, first + k * per_thread, per_thread, results[k], barrier)
        )
        for k in range(threads)
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return [t / 1000 for r in results for t in r]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--records", type=int, default=20000, help="records per step and thread count")
    args = parser.parse_args()
    in_temp_dir("capture")
    with provider_process() as url:
        # A tight loop captures far faster than any LLM call returns: the queue holds the whole
        # burst, so every record takes the path a real one takes (none is dropped as queue_full).
        usagetap.configure(sink=usagetap.sinks.HTTP(f"{url}/usage"), durability="spool", max_queue=1_000_000)
        print(
            f"method: wall time per record of the caller-thread step, {args.records} records per row, "
            f"pipeline running (durability='spool', max_queue=1,000,000, HTTP sink to a loopback receiver "
            f"in its own process) ({machine()})"
        )
        print(f"{'step':24} {'threads':>7} {'p50 µs':>8} {'p99 µs':>8} {'max µs':>9}")
        for name, step in steps().items():
            measure(step, 1, min(2000, args.records))  # warm-up
            for threads in (1, 8):
                times = measure(step, threads, args.records)
                print(
                    f"{name:24} {threads:>7} {percentile(times, 0.5):8.1f} {percentile(times, 0.99):8.1f} "
                    f"{max(times):9.0f}"
                )
                usagetap.flush(timeout=120)
        counts = usagetap.stats()
        print(
            f"delivered {counts.get('sent', 0)} of {counts.get('captured', 0)} captured; dropped: "
            f"{sum(v for k, v in counts.items() if k.startswith('dropped.'))}"
        )
        usagetap.shutdown(timeout=10)


if __name__ == "__main__":
    main()
