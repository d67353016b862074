"""Poison records among good ones, for every sink, in a real process: the good ones are billed once,
each poison record is dead-lettered with its reason, and nothing waits behind them.

The child process meters calls through the real OpenAI SDK against the loopback provider, with the
sink the environment names (a loopback fake of its backend, started here); among them it queues
records whose counts no backend can bill (as a spool an older version wrote could hold), and, for
Open Spanner, calls from a client wrapped with a meter that does not exist. The test counts the
calls the child made against the events at the backend, and reads the dead letters from the spool.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from usagetap.delivery.spool import open_spool
from usagetap.sinks import OpenSpanner
from usagetap.testing.backends import (
    HTTPReceiver,
    OpenMeterBackend,
    OpenSpannerBackend,
    PolarBackend,
    SolvaPayBackend,
    SpaireBackend,
    StripeBackend,
)

CALLS = 12
SECRET = "scenario-signing-secret"

_CHILD = """
import json, os, sys
from datetime import datetime, timezone
import openai, usagetap
from usagetap._record import UsageRecord
from usagetap.testing import ProviderServer

calls, poison = int(sys.argv[1]), []
with ProviderServer() as server:
    client = usagetap.wrap(openai.OpenAI(base_url=server.openai_url, api_key="k", max_retries=0))
    missing_meter = usagetap.wrap(client, meter="gone")
    for i in range(calls):
        with usagetap.customer(f"cus_Good{i % 3}"):
            client.chat.completions.create(model="gpt-4.1-mini", messages=[{"role": "user", "content": "hi"}])
        if i in (3, 8):  # queued past validation, as an older version's spool rows may be
            event_id = f"poison-{i}"
            poison.append(event_id)
            usagetap._runtime.submit(UsageRecord(
                event_id=event_id, timestamp=datetime.now(timezone.utc), customer="cus_Poison",
                provider="openai", model="gpt-4.1-mini", request_model="gpt-4.1-mini", operation="chat",
                input_tokens=2**63 + i, output_tokens=0))
    if os.environ["USAGETAP_SINK"] == "open_spanner":
        for _ in range(2):
            with usagetap.customer("cus_Gone"):
                missing_meter.chat.completions.create(
                    model="gpt-4.1-mini", messages=[{"role": "user", "content": "hi"}])
result = usagetap.flush(timeout=20.0)
print(json.dumps({"poison": poison, "pending": result.pending, "sent": result.sent, "dead": result.dead}))
"""


@contextmanager
def _backend(kind: str) -> Iterator[tuple[Any, dict[str, str]]]:
    """The backend of ``kind`` running, and the environment that points its sink at it."""
    if kind == "ledger":
        yield None, {}
        return
    if kind == "http":
        with HTTPReceiver(secret=SECRET) as receiver:
            yield receiver, {"USAGETAP_URL": receiver.endpoint, "USAGETAP_SECRET": SECRET}
        return
    fakes = {
        "spaire": SpaireBackend,
        "polar": PolarBackend,
        "open_spanner": OpenSpannerBackend,
        "solvapay": SolvaPayBackend,
        "openmeter": OpenMeterBackend,
        "stripe": StripeBackend,
    }
    with fakes[kind]() as backend:
        if kind == "open_spanner":
            OpenSpanner(api_key=backend.api_key, base_url=backend.url).ensure_meter()
        yield backend, {"USAGETAP_API_KEY": backend.api_key, "USAGETAP_BASE_URL": backend.url}


@pytest.mark.parametrize(
    "kind", ["ledger", "spaire", "polar", "open_spanner", "solvapay", "openmeter", "stripe", "http"]
)
def test_poison_records_are_dead_lettered_and_every_good_call_is_billed_once(
    kind: str, tmp_path: Path
) -> None:
    spool, ledger = tmp_path / "spool.db", tmp_path / "ledger.db"
    with _backend(kind) as (backend, sink_env):
        env = {k: v for k, v in os.environ.items() if not k.startswith("USAGETAP_")}
        env.update(sink_env, USAGETAP_SINK=kind, USAGETAP_SPOOL=str(spool), USAGETAP_DB=str(ledger))
        child = subprocess.run(
            [sys.executable, "-c", textwrap.dedent(_CHILD), str(CALLS)],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=90,
            check=False,
        )
        assert child.returncode == 0, child.stderr[-2000:]
        report = json.loads(child.stdout.strip().splitlines()[-1])
        billed = _billed_customers(kind, backend, ledger)
    poison = set(report["poison"])
    assert len(poison) == 2 and report["pending"] == 0
    assert sorted(billed) == sorted(f"cus_Good{i % 3}" for i in range(CALLS)), "each good call once"
    letters = open_spool(str(spool), max_bytes=0, lease_seconds=60).dead_letters()
    by_id = {letter.record.event_id: letter.reason for letter in letters}
    assert poison <= set(by_id), f"dead letters: {by_id}"
    assert all("no backend bills it" in by_id[event_id] for event_id in poison)
    if kind == "open_spanner":
        gone = {e: why for e, why in by_id.items() if e not in poison}
        assert len(gone) == 2 and all("meter 'gone'" in why for why in gone.values()), gone
    else:
        assert set(by_id) == poison


def _billed_customers(kind: str, backend: Any, ledger: Path) -> list[str]:
    """One customer per event the backend holds (each keyed by the backend's dedupe key)."""
    if kind == "ledger":
        with sqlite3.connect(ledger) as db:
            return [row[0] for row in db.execute("SELECT customer FROM usage")]
    events = list(backend.events.values())
    return [_customer_of(kind, event) for event in events]


def _customer_of(kind: str, event: dict[str, Any]) -> str:
    if kind in ("spaire", "polar"):
        return str(event.get("external_customer_id") or event.get("customer_id"))
    if kind == "open_spanner":
        return str(event["subject"])
    if kind == "solvapay":
        return str(event["customerRef"])
    if kind == "openmeter":
        return str(event["subject"])
    if kind == "stripe":
        return str(event["payload"]["stripe_customer_id"])
    return str(event["customer"])
