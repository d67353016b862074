"""The reconciliation view of ``usagetap report --html``: coverage per day, when a result was saved."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path

import pytest

from tests.helpers import make_record
from usagetap.cli import main
from usagetap.reconcile._render import saved_path
from usagetap.sinks import Ledger

DAY = datetime(2026, 11, 1, 12, tzinfo=timezone.utc)


@pytest.fixture
def ledger(tmp_path: Path) -> Path:
    path = tmp_path / "ledger.db"
    Ledger(path).send([make_record(timestamp=DAY)])
    return path


def _saved(ledger: Path, **day: object) -> None:
    result = {
        "provider": "openai",
        "since": "2026-11-01",
        "until": "2026-11-01",
        "max_drift": "1",
        "days": [
            {
                "day": "2026-11-01",
                "provider": {"input_tokens": 150, "output_tokens": 50, "cost": "0.004"},
                "metered": {"input_tokens": 100, "output_tokens": 20, "cost": "0.003"},
                "coverage": "60.00",
                "residual_cost": "0.001",
                **day,
            }
        ],
        "drifted": ["2026-11-01: cost drift 25.00%"],
    }
    saved_path(ledger, "openai").write_text(json.dumps(result))


def _page(ledger: Path, capsys: pytest.CaptureFixture[str]) -> str:
    assert main(["report", "--db", str(ledger), "--html", "-"]) == 0
    return capsys.readouterr().out


def test_the_page_shows_coverage_per_day_when_a_reconciliation_was_saved(
    ledger: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _saved(ledger)
    page = _page(ledger, capsys)
    assert '<section id="reconciliation-openai">' in page
    assert "<td>2026-11-01</td>" in page and '<td class="num">200</td>' in page and "60.00%" in page
    assert page.index("reconciliation-openai") < page.index("<footer>")
    assert "cost drift 25.00%" in page


def test_the_page_has_no_reconciliation_view_without_a_saved_result(
    ledger: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert "reconciliation-" not in _page(ledger, capsys)


def test_the_reconciliation_view_escapes_what_it_reads(
    ledger: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _saved(ledger, day="<script>alert(1)</script>")
    page = _page(ledger, capsys)
    assert "<script>" not in page
    assert "&lt;script&gt;" in page
