"""``usagetap reconcile``: its options, output formats, exit status and errors."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from openai import OpenAI

import usagetap
from usagetap.cli import main
from usagetap.cli.reconcile import EXIT_DRIFT
from usagetap.sinks import Ledger
from usagetap.testing import ProviderServer
from usagetap.testing.admin import AdminServer

KEY = "sk-admin-secret-123"


def _today() -> str:
    return datetime.now(timezone.utc).date().isoformat()


@pytest.fixture
def ledger(tmp_path: Path) -> Path:
    path = tmp_path / "ledger.db"
    usagetap.configure(sink=Ledger(path), flush_interval=0.02)
    return path


@pytest.fixture
def admin(server: ProviderServer, monkeypatch: pytest.MonkeyPatch) -> Iterator[AdminServer]:
    monkeypatch.setenv("USAGETAP_OPENAI_ADMIN_KEY", KEY)
    with AdminServer(server, "openai", admin_key=KEY) as fake:
        yield fake


def _calls(server: ProviderServer, *, metered: int, unmetered: int) -> None:
    wrapped = usagetap.wrap(OpenAI(base_url=server.openai_url, api_key="sk-app"), customer="acme")
    bare = OpenAI(base_url=server.openai_url, api_key="sk-app")
    for client, count in ((wrapped, metered), (bare, unmetered)):
        for _ in range(count):
            client.chat.completions.create(
                model="gpt-4o-mini", messages=[{"role": "user", "content": "one two"}]
            )
    assert usagetap.flush(timeout=10.0)


def _run(ledger: Path, admin: AdminServer, *extra: str, since: str = "") -> int:
    argv = ["reconcile", "openai", "--since", since or _today(), "--until", _today(), "--db", str(ledger)]
    return main([*argv, "--base-url", admin.url, *extra])


def test_without_an_admin_key_it_says_which_variable_to_set(
    ledger: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("USAGETAP_ANTHROPIC_ADMIN_KEY", raising=False)
    assert (
        main(["reconcile", "anthropic", "--since", _today(), "--until", _today(), "--db", str(ledger)]) == 1
    )
    assert "set USAGETAP_ANTHROPIC_ADMIN_KEY" in capsys.readouterr().err


def test_a_refused_admin_key_is_an_error_that_never_shows_the_key(
    server: ProviderServer,
    ledger: Path,
    admin: AdminServer,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    _calls(server, metered=1, unmetered=0)
    monkeypatch.setenv("USAGETAP_OPENAI_ADMIN_KEY", "sk-admin-wrong-456")
    assert _run(ledger, admin) == 1
    out = capsys.readouterr()
    assert "the admin key was refused (HTTP 401" in out.err
    assert "sk-admin-wrong-456" not in out.err + out.out


def test_csv_has_a_row_per_bucket_then_per_day(
    server: ProviderServer, ledger: Path, admin: AdminServer, capsys: pytest.CaptureFixture[str]
) -> None:
    _calls(server, metered=2, unmetered=0)
    assert _run(ledger, admin, "--format", "csv") == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert [(r["row"], r["model"], r["coverage"], r["residual_tokens"]) for r in rows] == [
        ("bucket", "gpt-4o-mini", "100.00", "0"),
        ("day", "", "100.00", "0"),
    ]


def test_the_table_names_the_gap_and_the_drift_goes_to_stderr(
    server: ProviderServer, ledger: Path, admin: AdminServer, capsys: pytest.CaptureFixture[str]
) -> None:
    _calls(server, metered=1, unmetered=1)
    assert _run(ledger, admin) == EXIT_DRIFT
    out = capsys.readouterr()
    assert "gpt-4o-mini" in out.out and "50.00" in out.out
    assert f"usagetap: drift: {_today()} gpt-4o-mini default: coverage 50.00%" in out.err


def test_a_gap_within_max_drift_exits_0(
    server: ProviderServer, ledger: Path, admin: AdminServer, capsys: pytest.CaptureFixture[str]
) -> None:
    _calls(server, metered=1, unmetered=1)
    assert _run(ledger, admin, "--max-drift", "60%", "--format", "json") == 0


def test_save_keeps_the_result_for_the_html_report(
    server: ProviderServer, ledger: Path, admin: AdminServer, capsys: pytest.CaptureFixture[str]
) -> None:
    _calls(server, metered=1, unmetered=1)
    assert _run(ledger, admin, "--save", "--format", "json") == EXIT_DRIFT
    assert main(["report", "--db", str(ledger), "--html", "-"]) == 0
    page = capsys.readouterr().out
    assert '<section id="reconciliation-openai">' in page and "50.00%" in page


def test_a_long_range_shows_its_progress_on_stderr(
    server: ProviderServer, ledger: Path, admin: AdminServer, capsys: pytest.CaptureFixture[str]
) -> None:
    _calls(server, metered=1, unmetered=0)
    since = (datetime.now(timezone.utc).date() - timedelta(days=10)).isoformat()
    assert _run(ledger, admin, "--format", "json", since=since) == 0
    assert "usagetap: reading /organization/costs: page 1" in capsys.readouterr().err


def test_the_base_url_comes_from_the_sdks_variable_without_base_url(
    server: ProviderServer,
    ledger: Path,
    admin: AdminServer,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    _calls(server, metered=1, unmetered=0)
    monkeypatch.setenv("OPENAI_BASE_URL", admin.url)
    argv = [
        "reconcile",
        "openai",
        "--since",
        _today(),
        "--until",
        _today(),
        "--db",
        str(ledger),
        "--format",
        "json",
    ]
    assert main(argv) == 0
    assert admin.requests


def test_since_after_until_is_an_error(ledger: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert (
        main(["reconcile", "openai", "--since", "2026-11-02", "--until", "2026-11-01", "--db", str(ledger)])
        == 1
    )
    assert "--since 2026-11-02 is after --until 2026-11-01" in capsys.readouterr().err
