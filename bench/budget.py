"""Caller-thread latency a budget check adds, per budget store: p50/p99 of reserve and of settle.

Method: a call is planned, admitted (the check: per-process counting, or a reservation in the
store) and its result emitted (for a store, the settlement) exactly as a wrapped client does
(``Call`` + ``admit`` + ``emit`` of a chat completion's JSON, records to a Memory sink), in
process, no HTTP; each step is timed ``--n`` times. Rows: no limit (the baseline), per-process
limits, then each store given: SQLite (a temp file, always), ``--redis URL``, ``--postgres URL``.
Ratios are to the baseline's admit + emit, measured in the same run.

    python bench/budget.py [--n 2000] [--redis redis://127.0.0.1:6379/0] [--postgres postgresql://...]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable
from typing import Any

from _common import in_temp_dir, machine, percentile

import usagetap
from usagetap._customer_policy import admit
from usagetap.instrument._adapter import load
from usagetap.instrument._binding import Binding
from usagetap.instrument._calls import Call, emit
from usagetap.providers import family_for
from usagetap.providers.openai.usage import chat_usage

REQUEST = {
    "model": "gpt-4.1",
    "messages": [{"role": "user", "content": "summarise the quarterly report in three bullet points"}],
    "max_tokens": 200,
}


class Options:
    json_data = REQUEST


def completion(i: int) -> dict[str, Any]:
    return {
        "id": f"chatcmpl-{i}",
        "object": "chat.completion",
        "model": "gpt-4.1",
        "usage": {"prompt_tokens": 20 + i % 7, "completion_tokens": 50 + i % 97},
    }


def timed(binding: Binding, n: int) -> tuple[list[float], list[float]]:
    """Seconds of ``admit`` and of ``emit``, per call."""
    admits, emits = [], []
    for i in range(n):
        call = Call(binding, "chat", "gpt-4.1", False, Options())
        started = time.perf_counter()
        admit(call)
        admitted = time.perf_counter()
        emit(call, chat_usage, completion(i))
        admits.append(admitted - started)
        emits.append(time.perf_counter() - admitted)
    return admits, emits


def row(name: str, admits: list[float], emits: list[float], baseline: float) -> str:
    both = [a + e for a, e in zip(admits, emits, strict=True)]

    def us(values: list[float], q: float) -> str:
        return f"{percentile(values, q) * 1e6:8.1f} µs"

    return (
        f"{name:<22} admit p50 {us(admits, 0.5)}  p99 {us(admits, 0.99)}"
        f" | emit p50 {us(emits, 0.5)}  p99 {us(emits, 0.99)}"
        f" | x{statistics.median(both) / baseline:6.1f} the baseline"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--redis", help="a Redis URL to measure (its keys usagetap:budget:* are written)")
    parser.add_argument("--postgres", help="a PostgreSQL URL to measure (creates usagetap_budget_* tables)")
    args = parser.parse_args()
    folder = in_temp_dir("budget")
    usagetap.configure(sink=usagetap.sinks.Memory(), flush_interval=0.05)
    binding = Binding(adapter=load(family_for("openai")), provider="openai")
    stores: list[tuple[str, Callable[[], None]]] = [
        ("sqlite (one machine)", lambda: usagetap.limits.use_store(os.path.join(folder, "budgets.db"))),
    ]
    if args.redis:
        stores.append(("redis", lambda: usagetap.limits.use_store(args.redis)))
    if args.postgres:
        stores.append(("postgresql", lambda: usagetap.limits.use_store(args.postgres)))

    lines = []
    with usagetap.customer("org_bench"):
        timed(binding, min(args.n, 200))  # warm-up: imports, pricing caches
        admits, emits = timed(binding, args.n)
        baseline = statistics.median([a + e for a, e in zip(admits, emits, strict=True)])
        lines.append(row("no limit", admits, emits, baseline))
        usagetap.limits.set("org_bench", max_tokens=10**12, max_cost=10**9, period="month")
        lines.append(row("per-process limits", *timed(binding, args.n), baseline))
        for name, use in stores:
            use()
            timed(binding, min(args.n, 50))  # connect, create the schema
            lines.append(row(name, *timed(binding, args.n), baseline))
        usagetap.limits.use_store(None)
    usagetap.flush(timeout=30)
    print(
        f"method: {args.n} calls per row, admit (check/reserve) and emit (settle) timed apart, in process, "
    )
    print(f"no HTTP; a token and a cost limit per customer ({machine()})")
    for line in lines:
        print(line)


if __name__ == "__main__":
    main()
