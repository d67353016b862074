"""Reserve, then settle, through a real ``openai`` SDK against the loopback provider."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, ClassVar

import openai
import pytest

import usagetap
from tests.servers import free_port
from usagetap import limits
from usagetap._state import STATE
from usagetap._stats import snapshot
from usagetap.budgets.base import Used
from usagetap.budgets.guard import INPUT_OVERHEAD, charge_for, configured, estimate, window_of
from usagetap.instrument._binding import binding_of
from usagetap.instrument._calls import Call
from usagetap.limits import Limit
from usagetap.sinks import Memory
from usagetap.testing import ProviderServer

MESSAGES = [{"role": "user", "content": "a question about budgets"}]


@pytest.fixture
def client(server: ProviderServer) -> openai.OpenAI:
    return usagetap.wrap(openai.OpenAI(base_url=server.openai_url, api_key="sk-test", max_retries=0))


@pytest.fixture
def stored(store_target: str, sink: Memory) -> Iterator[str]:
    limits.use_store(store_target, timeout=5.0)
    yield store_target


def ask(client: openai.OpenAI, customer: str, max_tokens: int = 10, **dimensions: str) -> None:
    with usagetap.customer(customer, **dimensions):
        client.chat.completions.create(model="gpt-4.1", messages=MESSAGES, max_tokens=max_tokens)


def held(customer: str, period: str = "day") -> Used:
    config = configured()
    assert config is not None
    charge, _ = charge_for(customer, Limit(max_tokens=0, period=period), datetime.now(timezone.utc))
    return config.store.used(charge.window)


def test_a_call_whose_worst_case_would_pass_the_limit_is_refused_before_it_is_sent(
    stored: str, client: openai.OpenAI, server: ProviderServer
) -> None:
    limits.set("org_1", max_tokens=100, period="day")
    with pytest.raises(usagetap.BudgetExceeded) as caught:
        ask(client, "org_1", max_tokens=200)
    assert server.requests == []
    assert (caught.value.tokens, caught.value.max_tokens, caught.value.period) == (0, 100, "day")
    assert "may use up to" in str(caught.value)


def test_a_call_settles_to_the_usage_the_provider_reported(
    stored: str, client: openai.OpenAI, server: ProviderServer
) -> None:
    limits.set("org_1", max_tokens=10_000, period="day")
    ask(client, "org_1")
    ask(client, "org_1")
    issued = sum(i.input_tokens + i.output_tokens for i in server.issued.values())
    used = held("org_1")
    assert (used.calls, used.tokens, used.held_tokens, used.held_nanos) == (2, issued, 0, 0)
    spent = limits.spent("org_1", "day")
    assert (spent.calls, spent.tokens) == (2, issued)


def test_a_cost_limit_settles_the_priced_cost(stored: str, client: openai.OpenAI, sink: Memory) -> None:
    limits.set("org_c", max_cost=10, period="month")
    ask(client, "org_c")
    usagetap.flush()
    cost = sink.records[0].cost
    assert cost is not None and cost > 0
    assert limits.spent("org_c", "month").cost == cost


def test_a_failed_call_releases_its_reservation(
    stored: str, client: openai.OpenAI, server: ProviderServer
) -> None:
    limits.set("org_1", max_tokens=10_000, period="day")
    server.fail_next(500)
    with pytest.raises(openai.InternalServerError):
        ask(client, "org_1")
    assert held("org_1") == Used()


def test_the_budget_is_shared_by_every_process_using_the_store(
    stored: str, client: openai.OpenAI, server: ProviderServer
) -> None:
    limits.set("org_1", max_tokens=10_000, period="day")
    ask(client, "org_1")
    before = limits.spent("org_1", "day").tokens
    STATE.accounts.clear()
    limits.use_store(stored, timeout=5.0)  # as a new process would open it
    assert limits.spent("org_1", "day").tokens == before


def test_a_feature_limit_covers_only_calls_with_that_feature(
    stored: str, client: openai.OpenAI, server: ProviderServer
) -> None:
    limits.set("org_f", max_tokens=10_000, period="day")
    limits.set("org_f", max_tokens=50, period="day", feature="chat")
    with pytest.raises(usagetap.BudgetExceeded) as caught:
        ask(client, "org_f", max_tokens=60, feature="chat")
    assert "feature 'chat'" in str(caught.value) and server.requests == []
    ask(client, "org_f", max_tokens=60, feature="search")
    ask(client, "org_f", max_tokens=60)
    assert len(server.requests) == 2
    assert limits.spent("org_f", "day", feature="chat").calls == 0


def test_periods_start_at_midnight_in_the_limit_time_zone() -> None:
    now = datetime(2026, 3, 1, 23, 30, tzinfo=timezone.utc)
    start, end = window_of("day", now, "Asia/Tokyo")
    assert start is not None and end is not None
    assert start.astimezone(timezone.utc) == datetime(2026, 3, 1, 15, tzinfo=timezone.utc)
    assert end - start == timedelta(days=1)
    month = window_of("month", now, "Asia/Tokyo")[0]
    assert month is not None and month.astimezone(timezone.utc) == datetime(
        2026, 2, 28, 15, tzinfo=timezone.utc
    )
    assert window_of("month", now, "UTC")[0] == datetime(2026, 3, 1, tzinfo=timezone.utc)


def test_a_rolling_window_spans_its_slots_back_to_the_window_length() -> None:
    now = datetime(2026, 3, 1, 12, 0, 30, tzinfo=timezone.utc)
    charge, since = charge_for(
        "org_1", Limit(max_tokens=5, period="rolling", window=timedelta(hours=24)), now
    )
    assert len(charge.window) == 25 and charge.bucket == charge.window[-1]
    assert since is not None and now - timedelta(hours=25) <= since <= now - timedelta(hours=24)
    assert all(bucket.startswith("{org_1}|") for bucket in charge.window)


def test_the_store_is_read_from_usagetap_budgets(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, client: openai.OpenAI, sink: Memory
) -> None:
    monkeypatch.setenv("USAGETAP_BUDGETS", str(tmp_path / "from-env.db"))
    limits.set("org_e", max_tokens=10_000, period="day")
    ask(client, "org_e")
    assert (tmp_path / "from-env.db").exists()
    assert limits.spent("org_e", "day").calls == 1


@pytest.mark.parametrize("scheme", ["redis", "postgresql"])
def test_an_unreachable_store_lets_the_call_go_by_default_counted_and_logged_once(
    scheme: str,
    client: openai.OpenAI,
    server: ProviderServer,
    sink: Memory,
    caplog: pytest.LogCaptureFixture,
) -> None:
    limits.use_store(f"{scheme}://127.0.0.1:{free_port()}/0", timeout=1.0)
    limits.set("org_1", max_tokens=10, period="day")
    with caplog.at_level(logging.WARNING, logger="usagetap"):
        ask(client, "org_1", max_tokens=100)
        ask(client, "org_1", max_tokens=100)
    assert len(server.requests) == 2
    assert snapshot()["budget_store_errors"] >= 2
    assert len([r for r in caplog.records if "budget store failed to reserve" in r.getMessage()]) == 1


@pytest.mark.parametrize("scheme", ["redis", "postgresql"])
def test_an_unreachable_store_refuses_the_call_when_fail_closed(
    scheme: str, client: openai.OpenAI, server: ProviderServer, sink: Memory
) -> None:
    limits.use_store(f"{scheme}://127.0.0.1:{free_port()}/0", timeout=1.0, on_error="fail_closed")
    limits.set("org_1", max_tokens=10_000, period="day")
    with pytest.raises(usagetap.BudgetExceeded) as caught:
        ask(client, "org_1")
    assert server.requests == [] and "unavailable" in str(caught.value)
    assert snapshot()["budget_store_errors"] == 1


def test_a_stream_settles_when_it_ends(stored: str, client: openai.OpenAI, server: ProviderServer) -> None:
    limits.set("org_s", max_tokens=10_000, period="day")
    with usagetap.customer("org_s"):
        stream = client.chat.completions.create(
            model="gpt-4.1", messages=MESSAGES, max_tokens=10, stream=True
        )
        list(stream)
    issued = sum(i.input_tokens + i.output_tokens for i in server.issued.values())
    used = held("org_s")
    assert (used.calls, used.tokens, used.held_tokens) == (1, issued, 0)


def test_the_estimate_is_bytes_over_four_plus_the_output_cap_times_choices(client: openai.OpenAI) -> None:
    class Options:
        json_data: ClassVar[dict[str, Any]] = {
            "model": "m",
            "messages": MESSAGES,
            "max_completion_tokens": 50,
            "n": 3,
        }

    binding = binding_of(client)
    assert binding is not None
    call = Call(binding, "chat", "m", False, Options())
    size = len(json.dumps(Options.json_data).encode())
    assert estimate(call, 4096) == (size // 4 + INPUT_OVERHEAD, 150)
    call.request = {"inferenceConfig": {"maxTokens": 7}}
    assert estimate(call, 4096)[1] == 7
    call.request = None
    assert estimate(call, 4096) == (INPUT_OVERHEAD, 4096)


def test_an_embedding_reserves_no_output(stored: str, server: ProviderServer) -> None:
    client = usagetap.wrap(openai.OpenAI(base_url=server.openai_url, api_key="sk-test", max_retries=0))
    limits.set("org_e", max_tokens=500, period="day")  # below the default output reservation (4096)
    with usagetap.customer("org_e"):
        client.embeddings.create(model="text-embedding-3-small", input="a sentence to embed")
    assert len(server.requests) == 1 and limits.spent("org_e", "day").calls == 1


def test_usage_recorded_by_hand_counts_toward_the_stored_budget(stored: str) -> None:
    limits.set("org_m", max_tokens=10_000, period="day")
    limits.set("org_m", max_tokens=10_000, period="day", feature="chat")
    usagetap.record(
        provider="openai",
        model="gpt-4.1",
        input_tokens=300,
        output_tokens=50,
        customer="org_m",
        feature="chat",
    )
    usagetap.record(provider="openai", model="gpt-4.1", input_tokens=1, output_tokens=1, customer="org_m")
    assert (limits.spent("org_m", "day").tokens, limits.spent("org_m", "day", feature="chat").tokens) == (
        352,
        350,
    )
