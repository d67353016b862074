"""The demo's Anthropic workload: both customers' calls land, priced, in the ledger."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pytest

from usagetap._demo import run_demo
from usagetap.cli import main


def test_demo_meters_the_anthropic_customers_into_the_ledger(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = str(tmp_path / "demo.db")
    run_demo(db)
    assert "and 9 through the Anthropic SDK, 0 left undelivered" in capsys.readouterr().out
    assert main(["report", "--db", db, "--format", "json", "--by", "customer,model"]) == 0
    rows = {(r["customer"], r["model"]): r for r in json.loads(capsys.readouterr().out)}
    umbrella = rows[("umbrella", "claude-sonnet-4-6")]
    hooli = rows[("hooli", "claude-haiku-4-5")]
    assert (umbrella["calls"], hooli["calls"]) == (4, 5)
    assert umbrella["cache_read_tokens"] > 0, "the cached system prompt is read after the first call"
    for row in (umbrella, hooli):
        assert row["input_tokens"] > 0 and row["output_tokens"] > 0
        assert Decimal(row["cost"]) > 0
