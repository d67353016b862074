"""Caller-thread cost of runs and the budget guard, in process (no HTTP): microseconds per operation.

Method: a call is planned and its result emitted exactly as a wrapped client
does (``Call`` + ``emit`` of a chat completion's JSON, records to a Memory
sink); each figure is the median over ``--n`` repetitions of the timed step.

    python bench/guard.py [--n 5000]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from typing import Any

from _common import machine

import usagetap
from usagetap._customer_policy import admit
from usagetap.instrument._adapter import load
from usagetap.instrument._binding import Binding
from usagetap.instrument._calls import Call, emit
from usagetap.providers import family_for
from usagetap.providers.openai.usage import chat_usage


def completion(i: int) -> dict[str, Any]:
    return {
        "id": f"chatcmpl-{i}",
        "object": "chat.completion",
        "model": "gpt-4.1",
        "usage": {"prompt_tokens": 1000 + i, "completion_tokens": 50 + i % 97},
    }


def median_us(step: Callable[[int], None], n: int) -> float:
    times = []
    for i in range(n):
        started = time.perf_counter()
        step(i)
        times.append(time.perf_counter() - started)
    return statistics.median(times) * 1e6


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=5000)
    args = parser.parse_args()
    usagetap.configure(sink=usagetap.sinks.Memory(), flush_interval=0.05)
    binding = Binding(adapter=load(family_for("openai")), provider="openai")

    def call_and_emit(i: int) -> None:
        call = Call(binding, "chat", "gpt-4.1", False, None)
        admit(call)
        emit(call, chat_usage, completion(i))

    results: dict[str, float] = {}
    with usagetap.customer("org_1"):
        results["plain call: admit + emit"] = median_us(call_and_emit, args.n)
        with usagetap.track(customer="org_1") as run:
            results["inside track(): admit + emit"] = median_us(call_and_emit, args.n)
            results[f"run.input_tokens, {args.n} calls folded (first read)"] = median_us(
                lambda i: run.input_tokens, 1
            )
            results["run.input_tokens, nothing new"] = median_us(lambda i: run.input_tokens, args.n)
        usagetap.limits.set("org_1", max_tokens=10**12)
        results["token limit: admit + emit"] = median_us(call_and_emit, args.n)
        usagetap.limits.set("org_1", max_cost=10**9)
        results["cost limit: admit + emit (prices the previous call here)"] = median_us(call_and_emit, args.n)
    tracked = usagetap.track(customer="c")

    def enter_exit(i: int) -> None:
        with tracked:
            pass

    results["with track(customer=...): enter + exit"] = median_us(enter_exit, args.n)
    usagetap.flush(timeout=30)
    print(f"method: median of {args.n} repetitions per step, in process, no HTTP ({machine()})")
    for name, us in results.items():
        print(f"{name}: {us:.1f} µs")


if __name__ == "__main__":
    main()
