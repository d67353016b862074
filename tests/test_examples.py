"""Every example runs offline and does what it says."""

from __future__ import annotations

import runpy
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest

from tests.examples_extras import RUNNER, canonical, install_line, installed_with, missing

EXAMPLES = Path(__file__).parent.parent / "examples"


def test_quickstart_meters_two_customers(capsys) -> None:  # type: ignore[no-untyped-def]
    namespace = runpy.run_path(str(EXAMPLES / "quickstart.py"))
    records = namespace["main"]()
    assert [r.customer for r in records] == ["org_1", "org_2"]
    assert all(r.input_tokens > 0 and r.cost and r.cost > 0 for r in records)
    assert "org_1:" in capsys.readouterr().out


def test_agent_runs_totals_a_run_per_call_and_refuses_what_the_guard_refuses(capsys) -> None:  # type: ignore[no-untyped-def]
    runs = runpy.run_path(str(EXAMPLES / "agent_runs.py"))["main"]()
    paid, *free, refused = runs
    assert (paid.customer, paid.calls, paid.error) == ("org_paid", 4, None)
    assert paid.cost is not None and paid.billed_cost == paid.cost * Decimal("1.3")
    assert free and all((run.calls, run.error) == (4, None) for run in free)
    assert refused.error == "BudgetExceeded"
    assert sum(run.input_tokens + run.output_tokens for run in [*free, refused]) <= 250
    out = capsys.readouterr().out
    assert "refused: org_free used" in out and "refused: a call with no customer" in out


def test_fastapi_bills_each_request_to_the_customer_it_names(capsys) -> None:  # type: ignore[no-untyped-def]
    replies, records = runpy.run_path(str(EXAMPLES / "fastapi_app.py"))["main"]()
    assert len(replies) == len(records) == 3
    billed = {r.response_id: r.customer for r in records}
    assert [billed[reply["id"]] for reply in replies] == ["org_acme", "org_globex", "org_acme"]
    assert all(r.dimensions["product"] == "api" and r.output_tokens > 0 for r in records)
    assert "-> org_globex (api)" in capsys.readouterr().out


def test_budget_guard_refuses_before_the_provider_is_called(capsys) -> None:  # type: ignore[no-untyped-def]
    calls, refusal, provider_requests = runpy.run_path(str(EXAMPLES / "budget_guard.py"))["main"]()
    assert calls >= 1
    assert provider_requests == calls, "the refused call never reached the provider"
    assert (refusal.customer, refusal.period, refusal.max_tokens) == ("org_trial", "day", 200)
    assert 0 < refusal.tokens <= 200
    assert f"{calls} calls, then refused" in capsys.readouterr().out


def test_spaire_example_lands_one_event_per_call_with_tokens_and_cost(capsys) -> None:  # type: ignore[no-untyped-def]
    spaire, provider = runpy.run_path(str(EXAMPLES / "spaire_sink.py"))["main"]()
    totals = spaire.totals()
    assert set(totals) == {"org_acme", "org_globex"}
    assert all(row["events"] == 1 and row["cost_cents"] > 0 for row in totals.values())
    issued = provider.totals()
    assert sum(row["input_tokens"] for row in totals.values()) == issued["input_tokens"]
    assert sum(row["output_tokens"] for row in totals.values()) == issued["output_tokens"]
    assert {e["name"] for e in spaire.events.values()} == {"llm.usage"}
    assert "org_acme: 1 event(s)" in capsys.readouterr().out


def test_open_spanner_example_creates_the_meter_and_splits_by_token_type(capsys) -> None:  # type: ignore[no-untyped-def]
    spanner, provider = runpy.run_path(str(EXAMPLES / "open_spanner_sink.py"))["main"]()
    assert "ai_tokens" in spanner.meters and spanner.contract_violations == []
    issued = provider.totals()
    row = spanner.totals()["org_acme"]
    assert row["cache_read"] == issued["cache_read_tokens"] > 0
    assert row["input"] == issued["input_tokens"] - issued["cache_read_tokens"] - issued["cache_write_tokens"]
    assert row["output"] == issued["output_tokens"]
    assert row["quantity"] == issued["input_tokens"] + issued["output_tokens"]
    assert {e["metadata"]["feature"] for e in spanner.events.values()} == {"handbook"}
    assert {key.rsplit(":", 1)[1] for key in spanner.events} == {"input", "cache_read", "output"}
    assert "org_acme: quantity" in capsys.readouterr().out


def test_solvapay_example_records_token_units_per_customer_reference(capsys) -> None:  # type: ignore[no-untyped-def]
    solvapay, provider = runpy.run_path(str(EXAMPLES / "solvapay_sink.py"))["main"]()
    totals = solvapay.totals()
    assert set(totals) == {"cus_3F9A2C", "cus_7B1D4E"}
    issued = provider.totals()
    assert sum(row["units"] for row in totals.values()) == issued["input_tokens"] + issued["output_tokens"]
    assert {e["productRef"] for e in solvapay.events.values()} == {"prd_assistant"}
    assert "cus_3F9A2C:" in capsys.readouterr().out


def test_serverless_handler_has_delivered_its_usage_when_it_returns(capsys) -> None:  # type: ignore[no-untyped-def]
    held, spaire = runpy.run_path(str(EXAMPLES / "serverless.py"))["main"]()
    assert held == [1, 2, 3]
    totals = spaire.totals()
    assert {customer: row["events"] for customer, row in totals.items()} == {"org_acme": 2, "org_globex": 1}
    assert "the backend holds 3 event(s)" in capsys.readouterr().out


def test_celery_tasks_bill_the_customer_that_queued_them(capsys) -> None:  # type: ignore[no-untyped-def]
    from usagetap.integrations import celery as usagetap_celery

    try:
        billed_to, records = runpy.run_path(str(EXAMPLES / "celery_worker.py"))["main"]()
    finally:
        usagetap_celery.uninstall()
    assert sorted(billed_to.values()) == ["org_acme", "org_globex"]
    assert {r.response_id: r.customer for r in records} == billed_to
    assert all(r.dimensions["feature"] == "digest" and r.output_tokens > 0 for r in records)
    assert "billed to org_globex (digest)" in capsys.readouterr().out


def test_compatible_hosts_example_meters_a_named_host_and_usage_recorded_by_hand(capsys) -> None:  # type: ignore[no-untyped-def]
    records = runpy.run_path(str(EXAMPLES / "compatible_hosts.py"))["main"]()
    assert [(r.provider, r.dimensions["feature"]) for r in records] == [
        ("groq", "chat"),
        ("cohere", "search"),
    ]
    assert all(r.customer == "org_1" and r.cost and r.cost > 0 for r in records)
    assert "org_1 cohere/command-r-plus: 1200 in / 250 out" in capsys.readouterr().out


def test_bedrock_converse_meters_boto3_calls_per_customer_with_the_cache(capsys) -> None:  # type: ignore[no-untyped-def]
    pytest.importorskip("boto3", minversion="1.37.24")
    written, read, streamed = runpy.run_path(str(EXAMPLES / "bedrock_converse.py"))["main"]()
    assert [r.customer for r in (written, read, streamed)] == ["org_acme", "org_globex", "org_acme"]
    assert written.cache_write_tokens == read.cache_read_tokens > 0
    assert {r.provider for r in (written, read, streamed)} == {"bedrock"}
    assert all(r.cost and r.cost > 0 and r.dimensions["inference_profile"] == "us" for r in (written, read))
    assert streamed.status == "ok" and streamed.output_tokens > 0
    assert "org_globex:" in capsys.readouterr().out


def test_mistral_example_meters_chat_stream_and_embeddings_per_customer(capsys) -> None:  # type: ignore[no-untyped-def]
    records = runpy.run_path(str(EXAMPLES / "mistral_chat.py"))["main"]()
    assert [(r.customer, r.operation, r.provider) for r in records] == [
        ("org_acme", "chat", "mistral"),
        ("org_acme", "chat", "mistral"),
        ("org_globex", "embeddings", "mistral"),
    ]
    assert all(r.status == "ok" and r.input_tokens > 0 and r.cost and r.cost > 0 for r in records)
    assert "org_globex embeddings mistral-embed: 3 in / 0 out" in capsys.readouterr().out


def test_gemini_chat_meters_each_turn_of_a_chat_and_its_stream(capsys) -> None:  # type: ignore[no-untyped-def]
    records = runpy.run_path(str(EXAMPLES / "gemini_chat.py"))["main"]()
    assert [(r.customer, r.provider, r.status) for r in records] == [("org_1", "google", "ok")] * 2
    assert records[1].input_tokens > records[0].input_tokens  # the second turn sends the history
    assert all(r.output_tokens > 0 and r.cost and r.cost > 0 for r in records)
    assert "org_1 google/gemini-2.5-flash:" in capsys.readouterr().out


def test_litellm_example_is_one_record_per_call_whichever_layer_sees_it(capsys) -> None:  # type: ignore[no-untyped-def]
    import pytest

    pytest.importorskip("litellm")
    run, records = runpy.run_path(str(EXAMPLES / "litellm_callback.py"))["main"]()
    assert sorted(r.provider for r in records) == ["anthropic", "openai"]
    assert run.calls == len(records) == 2
    assert run.input_tokens == sum(r.input_tokens for r in records)
    assert {r.customer for r in records} == {"org_acme"}
    assert "run: 2 calls" in capsys.readouterr().out


@pytest.mark.parametrize("example", sorted(p.name for p in EXAMPLES.glob("*.py")))
def test_each_example_runs_with_only_what_its_pip_install_line_installs(example: str) -> None:
    extras, packages = install_line(EXAMPLES / example)
    absent = missing(extras)
    if absent:  # e.g. litellm, in the dev extra and its nox session, not in the README's test install
        pytest.skip(f"{example}: {', '.join(absent)} (usagetap[{','.join(extras)}]) not installed here")
    allowed = installed_with(extras, packages)
    if not {canonical(p) for p in packages} <= allowed or "usagetap" not in allowed:
        pytest.fail(f"{example}: usagetap or {packages} is not installed here")
    ran = subprocess.run(
        [sys.executable, "-c", RUNNER, str(EXAMPLES / example), ",".join(sorted(allowed))],
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    assert ran.returncode == 0, ran.stderr[-3000:]
