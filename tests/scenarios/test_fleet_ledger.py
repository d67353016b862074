"""A fleet on one PostgreSQL ledger: three processes metering real SDK calls, one SIGKILLed mid-run
and restarted on its spool; every call the provider served is in the ledger exactly once, and
``usagetap report`` over it sums to the calls."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from collections.abc import Mapping
from pathlib import Path

from usagetap._record import derive_event_id
from usagetap.sinks import Ledger
from usagetap.testing import ProviderServer

from ._load import drain, environment

# Meters CALLS calls for customer CUSTOMER, reporting each; with PAUSE_AT, stops there and waits.
MEMBER = """
import os, sys
import openai, usagetap

usagetap.configure(durability="sync", flush_interval=float(os.environ["FLUSH"]), batch_size=10000)
client = usagetap.wrap(openai.OpenAI(base_url=os.environ["PROVIDER_URL"], api_key="k"), provider="openai")
pause_at = int(os.environ.get("PAUSE_AT", "-1"))
for i in range(int(os.environ["CALLS"])):
    if i == pause_at:
        print("paused", flush=True)
        sys.stdin.readline()
    with usagetap.customer(os.environ["CUSTOMER"]):
        client.chat.completions.create(model="gpt-4.1", messages=[{"role": "user", "content": "hi"}])
print("done", flush=True)
"""


def _member(cwd: Path, env: Mapping[str, str]) -> subprocess.Popen[str]:
    cwd.mkdir()
    return subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(MEMBER)],
        cwd=cwd,
        env=environment(env),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_three_processes_one_killed_and_restarted_bill_every_call_once_in_one_postgresql_ledger(
    tmp_path: Path, postgres_url: str
) -> None:
    with ProviderServer() as provider:
        common = {"USAGETAP_DB": postgres_url, "PROVIDER_URL": provider.openai_url, "CALLS": "25"}
        victim = _member(
            tmp_path / "victim", {**common, "CUSTOMER": "org_v", "PAUSE_AT": "15", "FLUSH": "60"}
        )
        others = [
            _member(tmp_path / f"member{i}", {**common, "CUSTOMER": f"org_{i}", "FLUSH": "0.05"})
            for i in range(2)
        ]
        assert victim.stdout is not None and victim.stdout.readline() == "paused\n", victim.stderr
        victim.send_signal(signal.SIGKILL)
        victim.communicate(timeout=30)
        assert victim.returncode == -signal.SIGKILL
        for member in others:
            out, err = member.communicate(timeout=120)
            assert (member.returncode, out) == (0, "done\n"), err
        ledger = Ledger(postgres_url)
        try:
            before = [r.customer for r in ledger.records()].count("org_v")
            drain(tmp_path / "victim", {"USAGETAP_DB": postgres_url})
            rows = [r.event_id for r in ledger.records()]
        finally:
            ledger.close()
        served = [derive_event_id("openai", "chat", response_id) for response_id in provider.issued]
        assert len(served) == 15 + 2 * 25
        assert before < 15, "the killed process left records in its spool"
        assert len(rows) == len(served)
        assert sorted(rows) == sorted(served)
        report = subprocess.run(
            [
                sys.executable,
                "-m",
                "usagetap.cli",
                "report",
                "--by",
                "customer",
                "--format",
                "json",
                "--totals",
            ],
            cwd=tmp_path,
            env=environment({"USAGETAP_DB": postgres_url}),
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert report.returncode == 0, report.stderr
        data = json.loads(report.stdout)
        issued = provider.totals()
    assert {row["customer"]: row["calls"] for row in data["rows"]} == {"org_0": 25, "org_1": 25, "org_v": 15}
    totals = data["totals"]
    assert totals["calls"] == len(served)
    assert {k: totals[k] for k in issued} == issued
    assert not any(name.startswith("ledger.db") for name in os.listdir(tmp_path / "victim" / ".usagetap"))
