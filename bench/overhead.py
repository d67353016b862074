"""Call overhead: a wrapped vs a bare OpenAI client against the loopback provider in its own process.

Method: one bare and one wrapped client; single calls interleaved (the order
alternates every iteration); ratio of the median call times (wall clock), and
of the median CPU time of the calling thread (what usagetap adds to the
caller, without the provider's latency or other processes' noise). Records go to the
default SQLite ledger (in a temporary directory), delivered in the background
as in production.

    python bench/overhead.py [--calls 1000] [--mode chat|chat-stream|responses-stream]

The stream modes read 200-token streams: 202 chunks for chat, 208 events for responses.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from typing import Any, Callable

from _common import machine, median_ratio, provider_process

MESSAGES: Any = [{"role": "user", "content": "Say something about metering in twenty words"}]


def make_call(client: Any, mode: str) -> Callable[[], None]:
    create = client.chat.completions.create
    if mode == "chat":
        return lambda: create(model="gpt-4.1", messages=MESSAGES, max_tokens=20) and None
    if mode == "responses-stream":
        respond = client.responses.create

        def responses_stream() -> None:
            for _ in respond(
                model="gpt-4.1", input=MESSAGES, max_output_tokens=200, stream=True, store=False
            ):
                pass

        return responses_stream

    def stream() -> None:
        for _ in create(model="gpt-4.1", messages=MESSAGES, max_tokens=200, stream=True):
            pass

    return stream


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=1000)
    parser.add_argument("--warmup", type=int, default=50)
    parser.add_argument("--mode", choices=("chat", "chat-stream", "responses-stream"), default="chat")
    args = parser.parse_args()

    os.chdir(tempfile.mkdtemp(prefix="usagetap-bench-"))
    import openai

    import usagetap

    with provider_process() as url:
        bare = openai.OpenAI(base_url=f"{url}/v1", api_key="bench", max_retries=0)
        wrapped = usagetap.wrap(
            openai.OpenAI(base_url=f"{url}/v1", api_key="bench", max_retries=0), provider="openai"
        )
        calls = {"bare": make_call(bare, args.mode), "wrapped": make_call(wrapped, args.mode)}
        times: dict[str, list[float]] = {"bare": [], "wrapped": []}
        cpu: dict[str, list[float]] = {"bare": [], "wrapped": []}
        for i in range(args.warmup + args.calls):
            order = ("bare", "wrapped") if i % 2 == 0 else ("wrapped", "bare")
            for name in order:
                started, started_cpu = time.perf_counter(), time.thread_time()
                calls[name]()
                elapsed, elapsed_cpu = time.perf_counter() - started, time.thread_time() - started_cpu
                if i >= args.warmup:
                    times[name].append(elapsed)
                    cpu[name].append(elapsed_cpu)
        result = usagetap.flush(timeout=30)
        metered = usagetap._stats.snapshot().get("captured", 0)
    ratio = median_ratio(times["wrapped"], times["bare"])
    cpu_ratio = median_ratio(cpu["wrapped"], cpu["bare"])
    print(
        f"method: {args.calls} interleaved single calls each, bare vs wrapped OpenAI client, "
        f"loopback provider in its own process, ratio of medians ({machine()})"
    )
    print(
        f"{args.mode}: bare median {statistics.median(times['bare']) * 1e3:.3f} ms, "
        f"wrapped median {statistics.median(times['wrapped']) * 1e3:.3f} ms, ratio {ratio:.4f} "
        f"(records metered: {metered}, undelivered: {result.pending})"
    )
    print(
        f"{args.mode}: caller-thread CPU: bare median {statistics.median(cpu['bare']) * 1e3:.3f} ms, "
        f"wrapped median {statistics.median(cpu['wrapped']) * 1e3:.3f} ms, ratio {cpu_ratio:.4f}"
    )


if __name__ == "__main__":
    main()
