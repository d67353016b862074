"""Delivery throughput: events/s from capture to a loopback backend, next to this machine's raw limit.

Method: one thread captures ``--events`` chat completions as a wrapped client
does (``emit``: extraction, record, validation and pricing happen on the
intake thread), inside ``usagetap.customer()``; durability ``"spool"``
(group commit to SQLite WAL, one row per batch), ``overflow="block"`` (a full queue slows the
producer down instead of dropping), the HTTP sink (batches of 500, its
maximum) to a loopback receiver in its own process that answers ``200 {}``.
The rate is events / (time from the first capture until ``flush()`` saw the
last acknowledgement). The raw limit, in the same run: the same records
JSON-encoded (``json.dumps`` of a dict, no usagetap code) and inserted into a
SQLite WAL table (``synchronous=NORMAL``), 1000 rows per transaction.
``--rounds`` rounds alternate the two (fresh response ids, spool and table
each round); the figures are the medians, the ratio the median of the rounds'
ratios: on a shared VM either figure moves by a fifth between runs seconds apart.

The inputs (a completion's JSON per event, six containers each) are built
first and moved out of the cyclic collector's view (``gc.freeze()``), as an
application's long-lived objects are after start-up: otherwise every full
collection walks the bench's own input list (600,000 containers at 100,000
events) and that, not usagetap, sets the rate (``--no-freeze`` shows it).

    python bench/throughput.py [--events 200000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import sqlite3
import statistics
import time
from typing import Any

from _common import ChatCalls, completion, in_temp_dir, machine, provider_process

import usagetap
from usagetap._record import UsageRecord
from usagetap.delivery.intake import Capture
from usagetap.instrument._calls import Call
from usagetap.providers.openai.usage import chat_usage


def as_dict(r: UsageRecord) -> dict[str, Any]:
    return {
        "event_id": r.event_id,
        "timestamp": r.timestamp.isoformat(),
        "customer": r.customer,
        "provider": r.provider,
        "model": r.model,
        "request_model": r.request_model,
        "operation": r.operation,
        "input_tokens": r.input_tokens,
        "output_tokens": r.output_tokens,
        "cache_read_tokens": r.cache_read_tokens,
        "cache_write_tokens": r.cache_write_tokens,
        "reasoning_tokens": r.reasoning_tokens,
        "cost": None if r.cost is None else str(r.cost),
        "dimensions": r.dimensions,
        "status": r.status,
        "response_id": r.response_id,
    }


def raw_limit(records: list[UsageRecord], path: str, chunk: int = 1000) -> float:
    """Events/s: JSON encode + SQLite WAL insert, nothing else."""
    conn = sqlite3.connect(os.path.abspath(path), isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("CREATE TABLE events (seq INTEGER PRIMARY KEY, event_id TEXT UNIQUE, payload TEXT)")
    dumps = json.JSONEncoder(separators=(",", ":")).encode
    started = time.perf_counter()
    for start in range(0, len(records), chunk):
        rows = [(r.event_id, dumps(as_dict(r))) for r in records[start : start + chunk]]
        conn.execute("BEGIN IMMEDIATE")
        conn.executemany("INSERT INTO events (event_id, payload) VALUES (?, ?)", rows)
        conn.execute("COMMIT")
    elapsed = time.perf_counter() - started
    conn.close()
    return len(records) / elapsed


def deliver(url: str, sources: list[dict[str, Any]], spool: str, warm_from: int) -> tuple[float, str]:
    """Events/s through usagetap (capture -> spool -> HTTP sink -> acknowledged), and a detail line."""
    chats = ChatCalls()
    usagetap.configure(
        sink=usagetap.sinks.HTTP(f"{url}/usage"),
        durability="spool",
        spool_path=spool,
        batch_size=1000,
        overflow="block",
    )
    with usagetap.customer("org_bench"):
        for i in range(2000):  # warm-up: threads started, spool created, prices loaded
            chats.emit(completion(warm_from + i))
        usagetap.flush(timeout=60)
        before = usagetap.stats()
        started = time.perf_counter()
        for source in sources:
            chats.emit(source)
        captured = time.perf_counter() - started
        result = usagetap.flush(timeout=600)
        elapsed = time.perf_counter() - started
    after = usagetap.stats()
    usagetap.shutdown(timeout=10)
    sent = after.get("sent", 0) - before.get("sent", 0)
    dropped = sum(v for k, v in after.items() if k.startswith("dropped.")) - sum(
        v for k, v in before.items() if k.startswith("dropped.")
    )
    detail = (
        f"{sent} delivered in {elapsed:.2f} s; capture loop {captured:.2f} s; "
        f"pending {result.pending}, dropped {dropped}"
    )
    return sent / elapsed, detail


def finished(call: Call, source: Any) -> Capture:
    """The capture ``emit()`` publishes for ``call`` once its completion ``source`` is back."""
    binding, scope = call.binding, call.scope
    return Capture(
        call.provider,
        call.operation,
        call.request_model,
        call.customer,
        binding.dimensions,
        scope.dimensions,
        binding.meter,
        scope.run,
        True,
        chat_usage,
        source,
        "ok",
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--rounds", type=int, default=3, help="raw limit and usagetap, alternately")
    parser.add_argument("--no-freeze", action="store_true", help="leave the inputs to the cyclic GC")
    args = parser.parse_args()
    in_temp_dir("throughput")
    chats = ChatCalls()
    ratios, rates, raws = [], [], []
    with provider_process() as url:
        for n in range(args.rounds):
            first = n * args.events  # fresh response ids each round: the receiver sees no duplicates
            sources = [completion(first + i) for i in range(args.events)]
            with usagetap.customer("org_bench"):
                records = [finished(chats.new(), s).record(price=False) for s in sources]
            if not args.no_freeze:
                gc.collect()
                gc.freeze()
            raw = raw_limit(records, f"raw-{n}.db")
            del records
            rate, detail = deliver(url, sources, f"spool-{n}.db", warm_from=10**9 + n * 10_000)
            del sources
            if not args.no_freeze:
                gc.unfreeze()
                gc.collect()
            ratios.append(rate / raw)
            rates.append(rate)
            raws.append(raw)
            print(
                f"round {n + 1}: usagetap {rate:,.0f} events/s ({detail}); raw limit {raw:,.0f} events/s; "
                f"{rate / raw:.0%}",
                flush=True,
            )
    gc_inputs = "left to" if args.no_freeze else "frozen out of"
    print(
        f"method: {args.events} chat completions captured (emit) on one thread -> intake -> spool "
        f"(SQLite WAL, group commit, a row per batch) -> HTTP sink, batches of 500, to a loopback "
        f"receiver in its own process; events / (first capture -> flush done); raw limit: json.dumps "
        f"+ SQLite WAL insert of the same records, 1000 per transaction; {args.rounds} rounds, each "
        f"the raw limit then usagetap, median of the rounds; inputs {gc_inputs} the cyclic GC ({machine()})"
    )
    print(f"usagetap: {statistics.median(rates):,.0f} events/s (median; rounds {_listed(rates)})")
    print(f"raw limit: {statistics.median(raws):,.0f} events/s (median; rounds {_listed(raws)})")
    print(f"usagetap at {statistics.median(ratios):.0%} of the raw limit (median of the rounds' ratios)")


def _listed(values: list[float]) -> str:
    return ", ".join(f"{v:,.0f}" for v in values)


if __name__ == "__main__":
    main()
