"""Sink throughput: events per second from ``send()`` to each loopback backend's acknowledgement.

The backends run in this process (one thread per request), so client and
server share the GIL: read the numbers as a floor and as a comparison between
sinks, not as what a real backend sustains.

    python bench/sinks.py [--events 5000]
"""

from __future__ import annotations

import argparse
import time
import uuid
from collections.abc import Callable
from datetime import datetime, timezone
from decimal import Decimal
from typing import Any

from _common import machine

from usagetap._record import UsageRecord
from usagetap.sinks import HTTP, OpenMeter, OpenSpanner, SolvaPay, Spaire, Stripe
from usagetap.testing.backends import (
    HTTPReceiver,
    OpenMeterBackend,
    OpenSpannerBackend,
    SolvaPayBackend,
    SpaireBackend,
    StripeBackend,
)


def records(n: int, customer: str) -> list[UsageRecord]:
    now = datetime.now(timezone.utc)
    return [
        UsageRecord(
            event_id=str(uuid.uuid4()),
            timestamp=now,
            customer=customer,
            provider="openai",
            model="gpt-4.1",
            request_model="gpt-4.1",
            operation="chat",
            input_tokens=1200,
            cache_read_tokens=512,
            output_tokens=300,
            cost=Decimal("0.0042"),
            dimensions={"feature": "chat", "plan": "pro"},
        )
        for _ in range(n)
    ]


def spanner(backend: Any, **options: Any) -> OpenSpanner:
    sink = OpenSpanner(backend.api_key, base_url=backend.url, **options)
    sink.ensure_meter()
    return sink


CASES: list[tuple[str, Callable[[], Any], Callable[[Any], Any], str]] = [
    ("spaire", SpaireBackend, lambda b: Spaire(b.api_key, base_url=b.url), "org_1"),
    ("open_spanner", OpenSpannerBackend, spanner, "org_1"),
    ("open_spanner split", OpenSpannerBackend, lambda b: spanner(b, split_by_token_type=True), "org_1"),
    (
        "solvapay split",
        SolvaPayBackend,
        lambda b: SolvaPay(b.api_key, base_url=b.url, split_by_token_type=True),
        "cus_1",
    ),
    ("openmeter", OpenMeterBackend, lambda b: OpenMeter(b.api_key, base_url=b.url), "org_1"),
    ("stripe (8 concurrent)", StripeBackend, lambda b: Stripe(b.api_key, base_url=b.url), "cus_1"),
    ("http", HTTPReceiver, lambda b: HTTP(b.endpoint, secret=b.secret), "org_1"),
]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=5000)
    args = parser.parse_args()
    print(f"# {machine()}; {args.events} events per sink")
    for label, backend_type, make_sink, customer in CASES:
        events = args.events if "stripe" not in label else min(args.events, 1000)
        with backend_type() as backend:
            sink = make_sink(backend)
            batch = records(events, customer)
            started = time.perf_counter()
            delivered = 0
            for start in range(0, len(batch), sink.max_batch):
                delivered += len(sink.send(batch[start : start + sink.max_batch]).delivered)
            elapsed = time.perf_counter() - started
            sink.close()
        assert delivered == events, (label, delivered)
        print(f"{label:24} {events / elapsed:10.0f} events/s  ({events} in {elapsed:.2f} s)")


if __name__ == "__main__":
    main()
