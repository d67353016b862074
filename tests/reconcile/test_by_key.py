"""``usagetap reconcile`` per API key: the provider's key listing names the keys the records' hints show."""

from __future__ import annotations

import json
import logging
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from anthropic import Anthropic
from openai import OpenAI

import usagetap
from usagetap.cli import main
from usagetap.cli.reconcile import EXIT_DRIFT
from usagetap.reconcile import reconcile
from usagetap.testing import ProviderServer
from usagetap.testing.admin import AdminServer

OPENAI_A = "sk-proj-Aa1Bb2Cc3Dd4Ee5Ff6Gg7Hh8Ii9Jj0Kk1Ll2Mm3Nn4-aaaa"
OPENAI_B = "sk-proj-Zz9Yy8Xx7Ww6Vv5Uu4Tt3Ss2Rr1Qq0Pp9Oo8Nn7Mm6-bbbb"
ANTHROPIC_A = "sk-ant-api03-Aa1Bb2Cc3Dd4Ee5Ff6Gg7Hh8Ii9Jj0Kk1Ll2Mm3Nn4Oo5Pp6Qq7Rr8Ss9Tt0-aaaaAA"
ANTHROPIC_B = "sk-ant-api03-Zz9Yy8Xx7Ww6Vv5Uu4Tt3Ss2Rr1Qq0Pp9Oo8Nn7Mm6Ll5Kk4Jj3Ii2Hh1Gg0-bbbbAA"
MESSAGES = [{"role": "user", "content": "word " * 6}]


@pytest.fixture(autouse=True)
def admin_key(monkeypatch: pytest.MonkeyPatch) -> str:
    key = "admin-key-for-tests"
    monkeypatch.setenv("USAGETAP_OPENAI_ADMIN_KEY", key)
    monkeypatch.setenv("USAGETAP_ANTHROPIC_ADMIN_KEY", key)
    return key


def _reconcile(
    capsys: pytest.CaptureFixture[str], provider: str, admin: AdminServer, ledger: Path, *extra: str
) -> tuple[int, dict[str, Any]]:
    assert usagetap.flush(timeout=10.0)
    day = datetime.now(timezone.utc).date().isoformat()
    argv = ["reconcile", provider, "--since", day, "--until", day, "--format", "json"]
    code = main([*argv, "--base-url", admin.url, "--db", str(ledger), *extra])
    return code, json.loads(capsys.readouterr().out)


def _by_key(result: dict[str, Any]) -> dict[str, int]:
    return {b["api_key"]: b["residual_tokens"] for b in result["buckets"]}


def _openai_calls(server: ProviderServer) -> set[str]:
    """Two metered calls per key, then two unmetered ones with key B: the unmetered responses' ids."""
    for key in (OPENAI_A, OPENAI_B):
        client = usagetap.wrap(OpenAI(base_url=server.openai_url, api_key=key), customer="acme")
        for _ in range(2):
            client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)  # type: ignore[arg-type]
    before = set(server.issued)
    bare = OpenAI(base_url=server.openai_url, api_key=OPENAI_B)
    for _ in range(2):
        bare.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)  # type: ignore[arg-type]
    return set(server.issued) - before


def _unmetered_tokens(server: ProviderServer, ids: set[str]) -> int:
    totals = server.totals(ids)
    return totals["input_tokens"] + totals["output_tokens"]


def test_openai_calls_unmetered_under_one_key_are_the_residual_of_exactly_that_keys_bucket(
    server: ProviderServer, ledger: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with AdminServer(server, "openai", page_size=1) as admin:  # every listing paginates
        unmetered = _openai_calls(server)
        code, result = _reconcile(capsys, "openai", admin, ledger)
        a, b = admin.key_id(OPENAI_A), admin.key_id(OPENAI_B)
    assert code == EXIT_DRIFT
    assert result["matched_by_key"] is True
    assert _by_key(result) == {a: 0, b: _unmetered_tokens(server, unmetered)}
    assert result["api_keys"][b].endswith("bbb")


def test_anthropic_calls_unmetered_under_one_key_are_the_residual_of_exactly_that_keys_bucket(
    server: ProviderServer, ledger: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with AdminServer(server, "anthropic") as admin:
        for key in (ANTHROPIC_A, ANTHROPIC_B):
            client = usagetap.wrap(Anthropic(base_url=server.anthropic_url, api_key=key), customer="acme")
            client.messages.create(model="claude-sonnet-4-0", max_tokens=16, messages=MESSAGES)  # type: ignore[arg-type]
        before = set(server.issued)
        Anthropic(base_url=server.anthropic_url, api_key=ANTHROPIC_A).messages.create(
            model="claude-sonnet-4-0",
            max_tokens=16,
            messages=MESSAGES,  # type: ignore[arg-type]
        )
        unmetered = set(server.issued) - before
        code, result = _reconcile(capsys, "anthropic", admin, ledger)
        a, b = admin.key_id(ANTHROPIC_A), admin.key_id(ANTHROPIC_B)
    assert code == EXIT_DRIFT
    assert _by_key(result) == {a: _unmetered_tokens(server, unmetered), b: 0}
    assert result["api_keys"][a] == "sk-ant-api03-Aa1...aaAA"


def test_no_by_key_sums_the_keys_and_reads_no_key_listing(
    server: ProviderServer, ledger: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with AdminServer(server, "openai") as admin:
        unmetered = _openai_calls(server)
        code, result = _reconcile(capsys, "openai", admin, ledger, "--no-by-key")
        paths = {path for path, _ in admin.requests}
    assert code == EXIT_DRIFT
    assert result["matched_by_key"] is False
    assert _by_key(result) == {None: _unmetered_tokens(server, unmetered)}
    assert not any(path.endswith("/api_keys") for path in paths)


def test_records_without_a_key_hint_are_not_matched_by_key_unless_asked(
    server: ProviderServer, ledger: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with AdminServer(server, "openai") as admin:
        client = usagetap.wrap(OpenAI(base_url=server.openai_url, api_key="sk-short"), customer="acme")
        client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)  # type: ignore[arg-type]
        tokens = _unmetered_tokens(server, set(server.issued))
        code, result = _reconcile(capsys, "openai", admin, ledger)
        code_forced, forced = _reconcile(capsys, "openai", admin, ledger, "--by-key")
        key_id = admin.key_id("sk-short")
    assert (code, result["matched_by_key"], _by_key(result)) == (0, False, {None: 0})
    # asked: the record names no listed key, so its tokens stand apart from its key's bucket
    assert (code_forced, forced["matched_by_key"]) == (EXIT_DRIFT, True)
    assert _by_key(forced) == {None: -tokens, key_id: tokens}


def test_no_full_key_reaches_the_records_the_ledger_the_logs_or_the_output(
    server: ProviderServer, ledger: Path, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    with AdminServer(server, "openai") as admin:
        _openai_calls(server)
        assert usagetap.flush(timeout=10.0)
        day = datetime.now(timezone.utc).date().isoformat()
        outputs = []
        for fmt in ("json", "csv", "table"):
            argv = ["reconcile", "openai", "--since", day, "--until", day, "--format", fmt, "--by-key"]
            main([*argv, "--base-url", admin.url, "--db", str(ledger)])
            captured = capsys.readouterr()
            outputs.append(captured.out + captured.err)
    stored = b"".join(p.read_bytes() for p in ledger.parent.iterdir() if p.is_file())
    for key in (OPENAI_A, OPENAI_B):
        secret = key[8:-4]  # the part no hint shows
        assert all(secret not in text for text in outputs)
        assert secret.encode() not in stored
        assert secret not in caplog.text
    assert "sk-proj-...bbbb" in stored.decode("utf-8", "replace")


def test_a_hint_naming_no_listed_key_falls_back_to_buckets_summed_over_keys(
    server: ProviderServer, admin_key: str
) -> None:
    day = datetime.now(timezone.utc).date()
    with AdminServer(server, "openai") as admin:
        OpenAI(base_url=server.openai_url, api_key=OPENAI_A).chat.completions.create(
            model="gpt-4o-mini",
            messages=MESSAGES,  # type: ignore[arg-type]
        )
        tokens = _unmetered_tokens(server, set(server.issued))
        ledger = [
            (day.isoformat(), "gpt-4o-mini", {"api_key_hint": "sk-proj-...zzzz"}, tokens, 0, Decimal(0))
        ]
        result = reconcile("openai", day, day, ledger, admin_key=admin_key, base_url=admin.url)
        listed = [path for path, _ in admin.requests if path.endswith("/api_keys")]
    assert listed == ["/v1/organization/projects/proj_default/api_keys"]
    assert result.api_keys is None
    (bucket,) = [b for b in result.buckets if b.key.model == "gpt-4o-mini"]
    assert (bucket.key.api_key, bucket.residual_tokens) == ("", 0)
