"""Call overhead: a wrapped vs a bare Anthropic client against the loopback provider in its own process.

Same method as ``overhead.py``: one bare and one wrapped client; single calls
interleaved (the order alternates every iteration); ratio of the median call
times; records go to the default SQLite ledger in a temporary directory.

    python bench/overhead_anthropic.py [--calls 1000] [--mode messages|messages-stream|stream-helper]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from typing import Any

from _common import machine, median_ratio, provider_process

MESSAGES: Any = [{"role": "user", "content": "Say something about metering in twenty words"}]
MODEL = "claude-sonnet-4-6"


def make_call(client: Any, mode: str) -> Callable[[], None]:
    messages = client.messages
    if mode == "messages":
        return lambda: messages.create(model=MODEL, messages=MESSAGES, max_tokens=20) and None
    if mode == "messages-stream":

        def stream() -> None:
            for _ in messages.create(model=MODEL, messages=MESSAGES, max_tokens=48, stream=True):
                pass

        return stream

    def helper() -> None:
        with messages.stream(model=MODEL, messages=MESSAGES, max_tokens=48) as stream:
            stream.until_done()

    return helper


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=1000)
    parser.add_argument("--warmup", type=int, default=50)
    parser.add_argument(
        "--mode", choices=("messages", "messages-stream", "stream-helper"), default="messages"
    )
    args = parser.parse_args()

    os.chdir(tempfile.mkdtemp(prefix="usagetap-bench-"))
    import anthropic

    import usagetap

    with provider_process() as url:
        bare = anthropic.Anthropic(base_url=url, api_key="bench", max_retries=0)
        wrapped = usagetap.wrap(
            anthropic.Anthropic(base_url=url, api_key="bench", max_retries=0), provider="anthropic"
        )
        calls = {"bare": make_call(bare, args.mode), "wrapped": make_call(wrapped, args.mode)}
        times: dict[str, list[float]] = {"bare": [], "wrapped": []}
        for i in range(args.warmup + args.calls):
            order = ("bare", "wrapped") if i % 2 == 0 else ("wrapped", "bare")
            for name in order:
                started = time.perf_counter()
                calls[name]()
                elapsed = time.perf_counter() - started
                if i >= args.warmup:
                    times[name].append(elapsed)
        result = usagetap.flush(timeout=30)
        metered = usagetap._stats.snapshot().get("captured", 0)
    ratio = median_ratio(times["wrapped"], times["bare"])
    print(
        f"method: {args.calls} interleaved single calls each, bare vs wrapped Anthropic client, "
        f"loopback provider in its own process, ratio of medians ({machine()})"
    )
    print(
        f"{args.mode}: bare median {statistics.median(times['bare']) * 1e3:.3f} ms, "
        f"wrapped median {statistics.median(times['wrapped']) * 1e3:.3f} ms, ratio {ratio:.4f} "
        f"(records metered: {metered}, undelivered: {result.pending})"
    )


if __name__ == "__main__":
    main()
