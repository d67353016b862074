"""A child process of the budget race tests: threads spending against one customer's limit.

Usage: ``python _spender.py STORE BASE_URL LIMIT THREADS CALLS TTL``; prints one JSON line
``{"ok": n, "refused": n, "records": n}`` (stdout) when every thread is done. STORE ``-``: nothing is
configured but the limit (the default budget store and sink; records: -1, they are in the ledger).
"""

from __future__ import annotations

import json
import sys
import threading

import openai

import usagetap
from usagetap.sinks import Memory

MESSAGES = [{"role": "user", "content": "how much budget is left"}]


def main() -> None:
    store, base_url, limit, threads, calls, ttl = sys.argv[1:7]
    memory = Memory()
    if store != "-":
        usagetap.configure(sink=memory, flush_interval=0.05)
        usagetap.limits.use_store(store, ttl=float(ttl), timeout=10.0)
    usagetap.limits.set("org_race", max_tokens=int(limit), period="day")
    client = usagetap.wrap(openai.OpenAI(base_url=base_url, api_key="sk-test", max_retries=0, timeout=120))
    counts = {"ok": 0, "refused": 0}
    lock = threading.Lock()

    def spend() -> None:
        for _ in range(int(calls)):
            try:
                with usagetap.customer("org_race"):
                    client.chat.completions.create(model="gpt-4.1", messages=MESSAGES, max_tokens=10)
                outcome = "ok"
            except usagetap.BudgetExceeded:
                outcome = "refused"
            with lock:
                counts[outcome] += 1

    workers = [threading.Thread(target=spend) for _ in range(int(threads))]
    for worker in workers:
        worker.start()
    print("started", flush=True)
    for worker in workers:
        worker.join()
    usagetap.flush()
    records = len(memory.records) if store != "-" else -1
    errors = {name: usagetap.stats()[name] for name in ("budget_store_errors", "internal_errors")}
    print(json.dumps({**counts, "records": records, **errors}), flush=True)
    usagetap.shutdown()


if __name__ == "__main__":
    main()
