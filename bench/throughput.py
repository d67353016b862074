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

The inputs (a completion's JSON per event, six containers each) are built
first and moved out of the cyclic collector's view (``gc.freeze()``), as an
application's long-lived objects are after start-up: otherwise every full
collection walks the bench's own input list (600,000 containers at 100,000
events) and that, not usagetap, sets the rate (``--no-freeze`` shows it).

    python bench/throughput.py [--events 200000]
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import sqlite3
import time
from typing import Any

from _common import ChatCalls, completion, in_temp_dir, machine, provider_process

import usagetap
from usagetap.instrument._calls import make_record
from usagetap.providers.openai import chat_usage
from usagetap.record import UsageRecord


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


def raw_limit(records: list[UsageRecord], chunk: int = 1000) -> float:
    """Events/s: JSON encode + SQLite WAL insert, nothing else."""
    path = os.path.abspath("raw.db")
    conn = sqlite3.connect(path, isolation_level=None)
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


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--no-freeze", action="store_true", help="leave the inputs to the cyclic GC")
    args = parser.parse_args()
    in_temp_dir("throughput")
    chats = ChatCalls()
    sources = [completion(i) for i in range(args.events)]

    records = []
    with usagetap.customer("org_bench"):
        for source in sources:
            records.append(make_record(chats.new(), chat_usage(source), "ok"))
    if not args.no_freeze:
        gc.collect()
        gc.freeze()
    raw = raw_limit(records)
    del records

    with provider_process() as url:
        usagetap.configure(
            sink=usagetap.sinks.HTTP(f"{url}/usage"), durability="spool", batch_size=1000, overflow="block"
        )
        with usagetap.customer("org_bench"):
            for i in range(2000):  # warm-up: threads started, spool created, prices loaded
                chats.emit(completion(10**9 + i))
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
    dropped = sum(v for k, v in after.items() if k.startswith("dropped."))
    rate = sent / elapsed
    gc_inputs = "left to" if args.no_freeze else "frozen out of"
    print(
        f"method: {args.events} chat completions captured (emit) on one thread -> intake -> spool "
        f"(SQLite WAL, group commit, a row per batch) -> HTTP sink, batches of 500, to a loopback "
        f"receiver in its own process; events / (first capture -> flush done); raw limit: json.dumps "
        f"+ SQLite WAL insert of the same records, 1000 per transaction; inputs {gc_inputs} the "
        f"cyclic GC ({machine()})"
    )
    print(
        f"usagetap: {rate:,.0f} events/s ({sent} delivered in {elapsed:.2f} s; "
        f"capture loop {captured:.2f} s; pending {result.pending}, dropped {dropped})"
    )
    print(f"raw limit: {raw:,.0f} events/s; usagetap at {rate / raw:.0%} of it")


if __name__ == "__main__":
    main()
