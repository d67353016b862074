"""With nothing configured but a limit, budgets live in SQLite next to the ledger, shared by the
machine's processes, and the ledger's past spend counts once (real processes, real ``openai`` SDK)."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

import openai
import pytest

import usagetap
from tests.helpers import make_record
from usagetap import limits
from usagetap.budgets import guard
from usagetap.db.budgets import SQLiteBudgets
from usagetap.sinks import Ledger, Memory
from usagetap.testing import ProviderServer

SPENDER = Path(__file__).with_name("_spender.py")
MESSAGES = [{"role": "user", "content": "a question about budgets"}]


def spend_in(processes: int, base_url: str, limit: int, threads: int, calls: int) -> list[dict[str, int]]:
    """Run ``processes`` spenders that configure nothing but ``limits.set("org_race", max_tokens=limit)``."""
    args = ["-", base_url, str(limit), str(threads), str(calls), "60"]
    running = [
        subprocess.Popen(
            [sys.executable, str(SPENDER), *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        for _ in range(processes)
    ]
    results = []
    for process in running:
        out, err = process.communicate(timeout=300)
        assert process.returncode == 0, err
        result = json.loads(out.splitlines()[-1])
        assert result["budget_store_errors"] == result["internal_errors"] == 0, (result, err)
        results.append(result)
    return results


def issued_tokens(server: ProviderServer) -> int:
    return sum(i.input_tokens + i.output_tokens for i in server.issued.values())


def test_processes_with_only_a_limit_set_never_spend_past_it_together(server: ProviderServer) -> None:
    limit = 300  # each process alone stays under it (32 calls of a few tokens); both together pass it
    results = spend_in(2, server.openai_url, limit, threads=4, calls=8)
    ok = sum(r["ok"] for r in results)
    assert ok > 0 and sum(r["refused"] for r in results) > 0
    assert len(server.requests) == ok
    assert issued_tokens(server) <= limit


def test_ledger_spend_seeds_the_shared_budget_once_for_all_processes(
    server: ProviderServer, tmp_path: Path
) -> None:
    past, room = 1000, 200
    now = datetime.now(timezone.utc)
    writer = Ledger(tmp_path / "ledger.db")  # USAGETAP_DB: the ledger every spender reads
    writer.send([make_record(customer="org_race", timestamp=now, input_tokens=past - 10, output_tokens=10)])
    writer.close()
    results = spend_in(2, server.openai_url, past + room, threads=4, calls=8)
    ok = sum(r["ok"] for r in results)
    spent = issued_tokens(server)
    assert ok > 0 and len(server.requests) == ok
    assert spent <= room  # each process alone would have seen `room` left
    limits.set("org_race", max_tokens=past + room, period="day")
    stored = limits.spent("org_race", "day")
    assert (stored.calls, stored.tokens) == (1 + ok, past + spent)  # the past counted once


def test_the_default_budget_store_is_a_sqlite_file_next_to_the_ledger(
    server: ProviderServer, sink: Memory, tmp_path: Path
) -> None:
    client = usagetap.wrap(openai.OpenAI(base_url=server.openai_url, api_key="sk-test", max_retries=0))
    limits.set("org_d", max_tokens=10_000, period="day")
    with usagetap.customer("org_d"):
        client.chat.completions.create(model="gpt-4.1", messages=MESSAGES, max_tokens=10)
    config = guard.configured()
    assert config is not None and isinstance(config.store, SQLiteBudgets)
    assert config.store.path == tmp_path / "budgets.db"
    assert (tmp_path / "budgets.db").is_file()
    assert limits.spent("org_d", "day").tokens == issued_tokens(server)


def test_a_default_budget_store_that_cannot_be_opened_falls_back_to_per_process_counting_and_says_so(
    server: ProviderServer, sink: Memory, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    (tmp_path / "budgets.db").mkdir()
    client = usagetap.wrap(openai.OpenAI(base_url=server.openai_url, api_key="sk-test", max_retries=0))
    limits.set("org_p", max_tokens=1, period="day")
    with caplog.at_level("WARNING", logger="usagetap"):
        with usagetap.customer("org_p"):
            client.chat.completions.create(model="gpt-4.1", messages=MESSAGES, max_tokens=10)
        with pytest.raises(usagetap.BudgetExceeded), usagetap.customer("org_p"):
            client.chat.completions.create(model="gpt-4.1", messages=MESSAGES, max_tokens=10)
    assert guard.configured() is None
    warned = [
        r for r in caplog.records if "budget store" in r.getMessage() and "per process" in r.getMessage()
    ]
    assert len(warned) == 1 and "budgets.db" in warned[0].getMessage()
    assert len(server.requests) == 1
