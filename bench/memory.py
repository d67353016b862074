"""Memory: RSS growth while records are captured with the backend down (spool on).

Method: the HTTP sink points at a loopback port nobody listens on (every send
fails to connect, so every record stays in the spool, retried with backoff);
durability ``"spool"``, ``overflow="block"`` (nothing is dropped: a full
queue slows the producer down). One thread captures ``--records`` chat
completions as a wrapped client does (``emit``), inside
``usagetap.customer()``, after a warm-up of 10,000. RSS (``/proc/self/statm``)
is sampled every 20 ms; growth = peak - RSS after the warm-up, and the RSS
once everything captured is in the spool, with RSS growth at each tenth of
the run (flat once the capture buffer is full: the backlog is on disk).
The capture buffer holds what the intake thread has not committed yet; it is
bounded by ``max_queue`` (default 10,000), settable with ``--max-queue``.

    python bench/memory.py [--records 1000000] [--max-queue 10000]
"""

from __future__ import annotations

import argparse
import os
import socket
import threading
import time

from _common import ChatCalls, completion, in_temp_dir, machine, rss_bytes

import usagetap


def dead_port() -> int:
    """A loopback port with no listener (bound, then closed)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--max-queue", type=int, default=10_000)
    args = parser.parse_args()
    in_temp_dir("memory")
    chats = ChatCalls()
    usagetap.configure(
        sink=usagetap.sinks.HTTP(f"http://127.0.0.1:{dead_port()}/usage", timeout=1.0),
        durability="spool",
        overflow="block",
        max_queue=args.max_queue,
    )
    pipeline = usagetap._runtime.get_pipeline()

    def spooled() -> None:
        while len(pipeline.buffer) or pipeline._transit:
            time.sleep(0.05)

    peak = [0]
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            peak[0] = max(peak[0], rss_bytes())
            time.sleep(0.02)

    with usagetap.customer("org_bench"):
        for i in range(10_000):
            chats.emit(completion(i))
        spooled()
        base = rss_bytes()
        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        started = time.perf_counter()
        tenth = max(1, args.records // 10)
        steps = []
        for i in range(10_000, 10_000 + args.records):
            chats.emit(completion(i))
            if (i - 9_999) % tenth == 0:
                steps.append(rss_bytes() - base)
        spooled()
        elapsed = time.perf_counter() - started
        done.set()
        sampler.join()
    end = rss_bytes()
    counts = usagetap.stats()
    spool_size = os.path.getsize(pipeline.settings.spool_path)
    print(
        f"method: {args.records} chat completions captured (emit) on one thread with the HTTP sink's backend "
        f"down (connection refused), durability='spool', overflow='block'; RSS sampled every 20 ms, growth "
        f"over the RSS after a 10,000-record warm-up ({machine()})"
    )
    print(
        f"RSS growth: peak {(peak[0] - base) / 2**20:.1f} MiB, at the end {(end - base) / 2**20:.1f} MiB "
        f"(base {base / 2**20:.0f} MiB); {counts.get('spooled', 0)} records spooled "
        f"({spool_size / 2**20:.0f} MiB on disk) in {elapsed:.1f} s; sent {counts.get('sent', 0)}, "
        f"dropped {sum(v for k, v in counts.items() if k.startswith('dropped.'))}; max_queue {args.max_queue}"
    )
    print("RSS growth at each tenth (MiB): " + " ".join(f"{step / 2**20:.0f}" for step in steps))
    usagetap.shutdown(timeout=1)


if __name__ == "__main__":
    main()
