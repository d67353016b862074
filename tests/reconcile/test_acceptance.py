"""``usagetap reconcile`` against the loopback provider and its admin API fake, end to end."""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from anthropic import Anthropic
from openai import OpenAI

import usagetap
from usagetap.cli import main
from usagetap.cli.reconcile import EXIT_DRIFT
from usagetap.testing import ProviderServer
from usagetap.testing.admin import AdminServer


def _today() -> date:
    return datetime.now(timezone.utc).date()


def _chat(client: OpenAI, model: str, words: int) -> None:
    client.chat.completions.create(model=model, messages=[{"role": "user", "content": "word " * words}])


def _message(client: Anthropic, model: str, words: int) -> None:
    client.messages.create(
        model=model, max_tokens=24, messages=[{"role": "user", "content": "word " * words}]
    )


def _reconcile(
    capsys: pytest.CaptureFixture[str], provider: str, admin: AdminServer, ledger: Path, *extra: str
) -> tuple[int, dict[str, Any]]:
    assert usagetap.flush(timeout=10.0)
    day = _today().isoformat()
    argv = ["reconcile", provider, "--since", day, "--until", day, "--format", "json"]
    code = main([*argv, "--base-url", admin.url, "--db", str(ledger), *extra])
    return code, json.loads(capsys.readouterr().out)


def _bucket(result: dict[str, Any], model: str) -> dict[str, Any]:
    (found,) = [b for b in result["buckets"] if b["model"] == model]
    return found


def _issued_tokens(server: ProviderServer, ids: set[str]) -> int:
    totals = server.totals(ids)
    return totals["input_tokens"] + totals["output_tokens"]


@pytest.fixture
def admin_key(monkeypatch: pytest.MonkeyPatch) -> str:
    key = "admin-key-for-tests"
    monkeypatch.setenv("USAGETAP_OPENAI_ADMIN_KEY", key)
    monkeypatch.setenv("USAGETAP_ANTHROPIC_ADMIN_KEY", key)
    return key


def test_a_fully_metered_openai_day_has_zero_residual_and_exits_0(
    server: ProviderServer, ledger: Path, admin_key: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with AdminServer(server, "openai", admin_key=admin_key) as admin:
        client = usagetap.wrap(OpenAI(base_url=server.openai_url, api_key="sk-app"), customer="acme")
        for words in (3, 5, 8):
            _chat(client, "gpt-4o-mini", words)
        code, result = _reconcile(capsys, "openai", admin, ledger)
    assert code == 0
    bucket = _bucket(result, "gpt-4o-mini")
    assert (bucket["residual_tokens"], bucket["coverage"]) == (0, "100.00")
    (day,) = result["days"]
    assert Decimal(day["residual_cost"]) == 0
    assert Decimal(day["provider"]["cost"]) > 0
    assert result["drifted"] == []


def test_three_unmetered_openai_calls_are_exactly_the_residual_of_their_bucket_and_exit_non_zero(
    server: ProviderServer, ledger: Path, admin_key: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with AdminServer(server, "openai", admin_key=admin_key) as admin:
        metered = usagetap.wrap(OpenAI(base_url=server.openai_url, api_key="sk-app"), customer="acme")
        _chat(metered, "gpt-4o-mini", 4)
        _chat(metered, "gpt-4.1-mini", 6)
        before = set(server.issued)
        bare = OpenAI(base_url=server.openai_url, api_key="sk-app")
        for words in (2, 7, 11):
            _chat(bare, "gpt-4.1-mini", words)
        unmetered = set(server.issued) - before
        code, result = _reconcile(capsys, "openai", admin, ledger)
        expected_cost = admin.cost_of(unmetered)
    assert code == EXIT_DRIFT
    gap = _bucket(result, "gpt-4.1-mini")
    assert gap["residual_tokens"] == _issued_tokens(server, unmetered)
    assert _bucket(result, "gpt-4o-mini")["residual_tokens"] == 0
    (day,) = result["days"]
    assert Decimal(day["residual_cost"]) == expected_cost > 0  # OpenAI's cost is compared per day


def test_three_unmetered_anthropic_calls_are_exactly_the_residual_tokens_and_cost_of_their_bucket(
    server: ProviderServer, ledger: Path, admin_key: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with AdminServer(server, "anthropic", admin_key=admin_key) as admin:
        metered = usagetap.wrap(
            Anthropic(base_url=server.anthropic_url, api_key="sk-ant-app"), customer="acme"
        )
        _message(metered, "claude-3-5-haiku-latest", 5)
        _message(metered, "claude-sonnet-4-0", 5)
        before = set(server.issued)
        bare = Anthropic(base_url=server.anthropic_url, api_key="sk-ant-app")
        for words in (3, 6, 9):
            _message(bare, "claude-sonnet-4-0", words)
        unmetered = set(server.issued) - before
        code, result = _reconcile(capsys, "anthropic", admin, ledger)
        expected_cost = admin.cost_of(unmetered)
    assert code == EXIT_DRIFT
    gap = _bucket(result, "claude-sonnet-4-0")
    assert gap["residual_tokens"] == _issued_tokens(server, unmetered)
    assert Decimal(gap["residual_cost"]) == expected_cost > 0
    other = _bucket(result, "claude-3-5-haiku-latest")
    assert (other["residual_tokens"], Decimal(other["residual_cost"])) == (0, 0)


def test_reconcile_completes_while_the_api_paginates_rate_limits_and_fails_once(
    server: ProviderServer, ledger: Path, admin_key: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with AdminServer(server, "openai", admin_key=admin_key, page_size=1) as admin:
        client = usagetap.wrap(OpenAI(base_url=server.openai_url, api_key="sk-app"), customer="acme")
        _chat(client, "gpt-4o-mini", 5)
        assert usagetap.flush(timeout=10.0)
        admin.rate_limit_next(2, retry_after="0")
        admin.fail_next(500)
        since = (_today() - timedelta(days=2)).isoformat()
        argv = ["reconcile", "openai", "--since", since, "--until", _today().isoformat(), "--format", "json"]
        code = main([*argv, "--base-url", admin.url, "--db", str(ledger)])
        result = json.loads(capsys.readouterr().out)
        paths = [path for path, _ in admin.requests]
    assert code == 0
    assert _bucket(result, "gpt-4o-mini")["residual_tokens"] == 0
    # 3 days at 1 bucket per page: 3 pages per endpoint (completions, embeddings, costs), plus 3 retries
    assert len(paths) == 3 * 3 + 3
    assert paths.count("/v1/organization/costs") == 3


def test_an_organization_with_the_analytics_api_is_reconciled_from_it(
    server: ProviderServer, ledger: Path, admin_key: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with AdminServer(server, "anthropic", admin_key=admin_key, analytics=True, page_size=1) as admin:
        metered = usagetap.wrap(
            Anthropic(base_url=server.anthropic_url, api_key="sk-ant-app"), customer="acme"
        )
        _message(metered, "claude-3-5-haiku-latest", 4)
        _message(metered, "claude-sonnet-4-0", 4)
        before = set(server.issued)
        _message(Anthropic(base_url=server.anthropic_url, api_key="sk-ant-app"), "claude-sonnet-4-0", 7)
        unmetered = set(server.issued) - before
        code, result = _reconcile(capsys, "anthropic", admin, ledger)
        expected_cost = admin.cost_of(unmetered)
        paths = {path for path, _ in admin.requests}
    assert code == EXIT_DRIFT
    assert paths == {"/v1/organizations/analytics/usage", "/v1/organizations/analytics/cost"}
    gap = _bucket(result, "claude-sonnet-4-0")
    assert (gap["residual_tokens"], Decimal(gap["residual_cost"])) == (
        _issued_tokens(server, unmetered),
        expected_cost,
    )
    assert _bucket(result, "claude-3-5-haiku-latest")["residual_tokens"] == 0


def test_embeddings_are_reconciled_from_their_own_usage_endpoint(
    server: ProviderServer, ledger: Path, admin_key: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with AdminServer(server, "openai", admin_key=admin_key) as admin:
        client = usagetap.wrap(OpenAI(base_url=server.openai_url, api_key="sk-app"), customer="acme")
        client.embeddings.create(model="text-embedding-3-small", input=["one two three", "four five"])
        OpenAI(base_url=server.openai_url, api_key="sk-app").embeddings.create(
            model="text-embedding-3-small", input="six seven eight nine"
        )
        code, result = _reconcile(capsys, "openai", admin, ledger)
    assert code == EXIT_DRIFT
    bucket = _bucket(result, "text-embedding-3-small")
    assert (
        bucket["provider"]["input_tokens"] - bucket["metered"]["input_tokens"],
        bucket["residual_tokens"],
    ) == (4, 4)
