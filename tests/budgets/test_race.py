"""Acceptance: 4 processes x 8 threads spend against one customer's limit through each store.

The provider is the loopback ``ProviderServer`` (in this process): it counts the calls it served.
Every call reserves its worst case (input estimated from bytes / 4, output capped by max_tokens=10),
which is never below what the server reports, so the documented bound (each call's reservation
error) is 0 here: the total spend must stay within the limit exactly.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import openai
import pytest

import usagetap
from usagetap import limits
from usagetap.sinks import Memory
from usagetap.testing import ProviderServer

SPENDER = Path(__file__).with_name("_spender.py")
PROCESSES, THREADS, CALLS = 4, 8, 4
LIMIT = 600


def spenders(
    store: str, base_url: str, n: int, threads: int, calls: int, ttl: float
) -> list[subprocess.Popen[str]]:
    args = [str(LIMIT), str(threads), str(calls), str(ttl)]
    return [
        subprocess.Popen(
            [sys.executable, str(SPENDER), store, base_url, *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(n)
    ]


def test_processes_racing_for_one_budget_never_spend_past_it_and_are_refused_before_the_provider(
    store_target: str, server: ProviderServer
) -> None:
    processes = spenders(store_target, server.openai_url, PROCESSES, THREADS, CALLS, ttl=60)
    results = []
    for process in processes:
        out, err = process.communicate(timeout=300)
        assert process.returncode == 0, err
        results.append(json.loads(out.splitlines()[-1]))
    ok = sum(r["ok"] for r in results)
    refused = sum(r["refused"] for r in results)
    spent = sum(i.input_tokens + i.output_tokens for i in server.issued.values())
    assert ok + refused == PROCESSES * THREADS * CALLS
    assert refused > 0 and ok > 0  # the limit was reached
    assert len(server.requests) == ok  # a refused call never reached the provider
    assert sum(r["records"] for r in results) == ok  # every served call was metered
    assert spent <= LIMIT
    limits.use_store(store_target, timeout=5.0)
    limits.set("org_race", max_tokens=LIMIT, period="day")
    stored = limits.spent("org_race", "day")
    assert (stored.calls, stored.tokens) == (ok, spent)


@pytest.fixture
def silent_provider() -> Iterator[str]:
    """A provider that accepts connections and never answers: calls to it hang, holding their reservations."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(64)
        yield f"http://127.0.0.1:{listener.getsockname()[1]}/v1"


def test_reservations_of_a_killed_process_are_released_after_their_ttl(
    store_target: str, silent_provider: str, server: ProviderServer, sink: Memory
) -> None:
    ttl = 5.0  # long enough to see the killed process's reservations still held, short for the test
    (process,) = spenders(store_target, silent_provider, 1, THREADS, 1, ttl=ttl)
    try:
        assert process.stdout is not None and process.stdout.readline().strip() == "started"
        limits.use_store(store_target, timeout=5.0)
        limits.set("org_race", max_tokens=LIMIT, period="day")
        client = usagetap.wrap(openai.OpenAI(base_url=server.openai_url, api_key="sk-test", max_retries=0))

        def ask() -> None:
            with usagetap.customer("org_race"):
                client.chat.completions.create(
                    model="gpt-4.1", messages=[{"role": "user", "content": "hi"}], max_tokens=LIMIT - 40
                )

        held, deadline = 0, time.monotonic() + 120
        while held < THREADS * 40 and time.monotonic() < deadline:  # the child's calls hold ~45 tokens each
            time.sleep(0.05)
            held = _held(store_target)
        assert held >= THREADS * 40
        os.kill(process.pid, signal.SIGKILL)
        process.wait(timeout=30)
        with pytest.raises(usagetap.BudgetExceeded):
            ask()
        assert server.requests == []
        time.sleep(ttl + 1)
        ask()
        assert len(server.requests) == 1
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def _held(store_target: str) -> int:
    from datetime import datetime, timezone

    from usagetap.budgets.guard import charge_for, open_store
    from usagetap.limits import Limit

    store = open_store(store_target, timeout=5.0)
    try:
        charge, _ = charge_for("org_race", Limit(max_tokens=LIMIT, period="day"), datetime.now(timezone.utc))
        return store.used(charge.window).held_tokens
    finally:
        store.close()
