"""``usagetap reconcile`` over the shared PostgreSQL ledger ``USAGETAP_DB`` names."""

from __future__ import annotations

import json
from datetime import datetime, timezone

import pytest
from openai import OpenAI

import usagetap
from usagetap.cli import main
from usagetap.cli.reconcile import EXIT_DRIFT
from usagetap.sinks import Ledger
from usagetap.testing import ProviderServer
from usagetap.testing.admin import AdminServer


def _run(
    capsys: pytest.CaptureFixture[str], admin: AdminServer, *extra: str
) -> tuple[int, dict[str, object]]:
    day = datetime.now(timezone.utc).date().isoformat()
    argv = [
        "reconcile",
        "openai",
        "--since",
        day,
        "--until",
        day,
        "--format",
        "json",
        "--base-url",
        admin.url,
    ]
    code = main([*argv, *extra])
    return code, json.loads(capsys.readouterr().out)


def test_reconcile_reads_a_postgresql_ledger_and_finds_exactly_the_unmetered_calls(
    server: ProviderServer,
    postgres_url: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("USAGETAP_OPENAI_ADMIN_KEY", "admin-key-for-tests")
    monkeypatch.setenv("USAGETAP_DB", postgres_url)
    usagetap.configure(sink=Ledger(postgres_url), flush_interval=0.02)
    with AdminServer(server, "openai", admin_key="admin-key-for-tests") as admin:
        metered = usagetap.wrap(OpenAI(base_url=server.openai_url, api_key="sk-app"), customer="acme")
        for words in (3, 5):
            metered.chat.completions.create(
                model="gpt-4o-mini", messages=[{"role": "user", "content": "w " * words}]
            )
        assert usagetap.flush(timeout=10.0)
        code, result = _run(capsys, admin)
        assert code == 0
        (bucket,) = [b for b in result["buckets"] if b["model"] == "gpt-4o-mini"]  # type: ignore[attr-defined]
        assert bucket["residual_tokens"] == 0
        unmetered = OpenAI(base_url=server.openai_url, api_key="sk-app")
        before = set(server.issued)
        unmetered.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "w w"}])
        gap = server.totals(set(server.issued) - before)
        code, result = _run(capsys, admin)
    assert code == EXIT_DRIFT
    (bucket,) = [b for b in result["buckets"] if b["model"] == "gpt-4o-mini"]  # type: ignore[attr-defined]
    assert bucket["residual_tokens"] == gap["input_tokens"] + gap["output_tokens"]


def test_save_refuses_a_postgresql_ledger_which_has_no_file_beside_it(
    postgres_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("USAGETAP_OPENAI_ADMIN_KEY", "admin-key-for-tests")
    code = main(
        [
            "reconcile",
            "openai",
            "--since",
            "2026-12-01",
            "--until",
            "2026-12-01",
            "--db",
            postgres_url,
            "--save",
        ]
    )
    assert code != 0
    err = capsys.readouterr().err
    assert "--save" in err and "PostgreSQL ledger has none" in err
