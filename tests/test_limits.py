"""The budget guard: limits checked before the provider is called (real ``openai`` SDK, loopback provider)."""

from __future__ import annotations

import pickle
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import openai
import pytest

import usagetap
from tests.helpers import make_record
from usagetap import limits
from usagetap._cost import price_record
from usagetap._state import STATE
from usagetap.limits import Limit, _window
from usagetap.sinks import Ledger, Memory
from usagetap.testing import ProviderServer

MESSAGES = [{"role": "user", "content": "a question about budgets"}]


@pytest.fixture
def client(server: ProviderServer) -> openai.OpenAI:
    return usagetap.wrap(openai.OpenAI(base_url=server.openai_url, api_key="sk-test", max_retries=0))


@pytest.fixture
def per_process(tmp_path: Path) -> None:
    """The default budget store cannot be opened (its path is a directory): limits count per process."""
    (tmp_path / "budgets.db").mkdir()


def ask(client: openai.OpenAI, customer: str, max_tokens: int = 10) -> None:
    with usagetap.customer(customer):
        client.chat.completions.create(model="gpt-4.1", messages=MESSAGES, max_tokens=max_tokens)


def test_without_a_store_a_token_limit_refuses_the_call_once_spend_reached_it_without_calling_the_provider(
    client: openai.OpenAI, server: ProviderServer, sink: Memory, per_process: None
) -> None:
    usagetap.limits.set("org_1", max_tokens=30, period="day")
    ask(client, "org_1")
    ask(client, "org_1")
    spent = usagetap.limits.spent("org_1", "day")
    assert spent.calls == 2 and spent.tokens == sum(
        i.input_tokens + i.output_tokens for i in server.issued.values()
    )
    assert spent.tokens >= 30
    sent = len(server.requests)
    with pytest.raises(usagetap.BudgetExceeded) as caught:
        ask(client, "org_1")
    assert len(server.requests) == sent
    error = caught.value
    assert (error.customer, error.period, error.max_tokens, error.tokens) == (
        "org_1",
        "day",
        30,
        spent.tokens,
    )
    assert error.period_start == spent.since == _window("day", datetime.now(timezone.utc))[0]
    assert "org_1" in str(error) and "the call was not made" in str(error)
    ask(client, "org_2")  # other customers are not limited
    assert len(server.requests) == sent + 1


def test_without_a_store_token_limits_keep_no_records_once_the_worker_has_priced_them(
    client: openai.OpenAI, sink: Memory, per_process: None
) -> None:
    usagetap.limits.set("org_t", max_tokens=1_000_000)
    for _ in range(3):
        ask(client, "org_t")
    assert usagetap.flush().pending == 0
    ask(client, "org_t")
    assert len(STATE.accounts["org_t"].uncosted) <= 1  # only the call the worker may not have priced yet
    assert usagetap.flush().pending == 0
    assert usagetap.limits.spent("org_t").cost == sum(r.cost for r in sink.records if r.cost is not None)


def test_without_a_store_a_cost_limit_uses_the_priced_cost_of_calls_not_yet_delivered(
    client: openai.OpenAI, server: ProviderServer, per_process: None
) -> None:
    memory = Memory()
    usagetap.configure(sink=memory, flush_interval=3600)  # nothing is delivered during the test
    ask(client, "probe")
    usagetap.flush()
    one_call = memory.records[0].cost
    assert one_call is not None and one_call > 0
    usagetap.limits.set("org_c", max_cost=one_call * Decimal("1.5"))
    ask(client, "org_c")
    ask(client, "org_c")
    assert memory.records[1:] == []  # still queued, not delivered
    sent = len(server.requests)
    with pytest.raises(usagetap.BudgetExceeded) as caught:
        ask(client, "org_c")
    assert len(server.requests) == sent
    assert caught.value.cost == one_call * 2 and caught.value.max_cost == one_call * Decimal("1.5")
    assert caught.value.period == "month"


async def test_async_calls_are_refused_too(server: ProviderServer, sink: Memory) -> None:
    aclient = usagetap.wrap(openai.AsyncOpenAI(base_url=server.openai_url, api_key="sk-test", max_retries=0))
    usagetap.limits.set("org_a", max_tokens=0)
    with pytest.raises(usagetap.BudgetExceeded), usagetap.customer("org_a"):
        await aclient.chat.completions.create(model="gpt-4.1", messages=MESSAGES)
    assert server.requests == []


def test_spend_is_seeded_once_from_the_local_ledger(
    client: openai.OpenAI, server: ProviderServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "ledger.db"
    now = datetime.now(timezone.utc)
    month_start = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    history = [
        make_record(
            customer="org_l", timestamp=now - timedelta(minutes=5), input_tokens=400, output_tokens=100
        ),
        make_record(customer="org_l", timestamp=month_start, input_tokens=1000, output_tokens=0),
        make_record(
            customer="org_l", timestamp=month_start - timedelta(seconds=1), input_tokens=7, output_tokens=3
        ),
        make_record(
            customer="org_l", model="my-private-model", timestamp=now, input_tokens=5, output_tokens=5
        ),
        make_record(customer="someone_else", timestamp=now, input_tokens=9000, output_tokens=0),
    ]
    history = [price_record(record) for record in history]
    writer = Ledger(path)
    writer.send(history)
    writer.close()
    usagetap.configure(sink=Ledger(path))

    seeds = []
    original = Ledger.spent
    monkeypatch.setattr(Ledger, "spent", lambda self, *a: seeds.append(a) or original(self, *a))

    usagetap.limits.set("org_l", max_tokens=10_000, max_cost=100)
    month, total = usagetap.limits.spent("org_l", "month"), usagetap.limits.spent("org_l", "total")
    in_month = history[:2] + history[3:4]
    assert month.calls == 3 and month.tokens == sum(r.total_tokens for r in in_month)
    assert month.cost == sum(r.cost for r in in_month if r.cost is not None) and month.unpriced_calls == 1
    assert total.calls == 4 and total.tokens == month.tokens + 10
    for _ in range(3):
        ask(client, "org_l")
    assert usagetap.limits.spent("org_l").calls == 6
    assert len(seeds) == 1  # the ledger is read once, not per call

    usagetap.limits.set("org_l", max_tokens=month.tokens + 1)
    sent = len(server.requests)
    with pytest.raises(usagetap.BudgetExceeded) as caught:
        ask(client, "org_l")
    assert len(server.requests) == sent and caught.value.tokens == usagetap.limits.spent("org_l").tokens
    assert len(seeds) == 1


def test_a_callable_policy_limits_the_customers_it_returns_limits_for(
    client: openai.OpenAI, server: ProviderServer, sink: Memory
) -> None:
    plans = {"free_user": Limit(max_tokens=0, period="day")}
    usagetap.limits.set(plans.get)
    with pytest.raises(usagetap.BudgetExceeded) as caught:
        ask(client, "free_user")
    assert caught.value.period == "day"
    ask(client, "paid_user")
    usagetap.limits.set("free_user", max_tokens=1_000_000)  # a limit set by id wins over the policy
    ask(client, "free_user")
    assert len(server.requests) == 2
    assert usagetap.limits.get("free_user") == [Limit(max_tokens=1_000_000)]


def test_a_policy_returning_several_limits_applies_them_all(client: openai.OpenAI, sink: Memory) -> None:
    usagetap.limits.set(lambda customer: [Limit(max_cost=1000), Limit(max_tokens=0, period="week")])
    with pytest.raises(usagetap.BudgetExceeded, match="this week"):
        ask(client, "org_1")


@pytest.mark.internal_error("limits lookup")
def test_a_failing_policy_is_logged_and_the_call_goes_ahead(
    client: openai.OpenAI, server: ProviderServer, sink: Memory
) -> None:
    def broken(customer: str) -> Limit:
        raise RuntimeError("plan database is down")

    usagetap.limits.set(broken)
    ask(client, "org_1")
    assert len(server.requests) == 1
    assert usagetap._stats.snapshot()["internal_errors"] == 1


def test_clear_removes_limits(client: openai.OpenAI, sink: Memory) -> None:
    usagetap.limits.set("org_1", max_tokens=0)
    usagetap.limits.set("org_2", max_tokens=0)
    usagetap.limits.clear("org_1")
    ask(client, "org_1")
    with pytest.raises(usagetap.BudgetExceeded):
        ask(client, "org_2")
    usagetap.limits.clear()
    ask(client, "org_2")
    assert not usagetap.limits.enabled()


def test_limits_take_an_int_customer_as_its_decimal_string(client: openai.OpenAI, sink: Memory) -> None:
    usagetap.limits.set(42, max_tokens=1_000_000, period="day")
    ask(client, "42")
    usagetap.limits.set(42, max_tokens=1, period="day")
    with pytest.raises(usagetap.BudgetExceeded):
        ask(client, "42")
    assert usagetap.limits.spent(42, "day").calls == 1 and usagetap.limits.get(42)
    usagetap.limits.clear(42)
    assert usagetap.limits.get("42") == []


def test_limits_are_validated() -> None:
    with pytest.raises(ValueError, match="max_cost and/or max_tokens"):
        usagetap.limits.set("org_1")
    with pytest.raises(ValueError, match="period"):
        usagetap.limits.set("org_1", max_tokens=5, period="fortnight")
    with pytest.raises(ValueError):
        usagetap.limits.set("org_1", max_cost=-1)
    with pytest.raises(TypeError):
        usagetap.limits.set(lambda c: None, max_tokens=3)
    assert Limit(max_cost=0.1).max_cost == Decimal("0.1")


@pytest.mark.parametrize(
    ("now", "period", "start", "end"),
    [
        (
            datetime(2025, 12, 31, 23, 59, tzinfo=timezone.utc),
            "month",
            datetime(2025, 12, 1),
            datetime(2026, 1, 1),
        ),
        (datetime(2025, 2, 14, 8, tzinfo=timezone.utc), "month", datetime(2025, 2, 1), datetime(2025, 3, 1)),
        (datetime(2025, 6, 12, 8, tzinfo=timezone.utc), "week", datetime(2025, 6, 9), datetime(2025, 6, 16)),
        (datetime(2025, 6, 12, 8, tzinfo=timezone.utc), "day", datetime(2025, 6, 12), datetime(2025, 6, 13)),
    ],
)
def test_periods_are_calendar_periods_in_utc(
    now: datetime, period: str, start: datetime, end: datetime
) -> None:
    assert _window(period, now) == (start.replace(tzinfo=timezone.utc), end.replace(tzinfo=timezone.utc))
    assert _window("total", now) == (None, None)


def test_budget_exceeded_keeps_its_figures_when_pickled() -> None:
    error = usagetap.BudgetExceeded("over", customer="c", period="day", max_cost=Decimal(1), cost=Decimal(2))
    copy = pickle.loads(pickle.dumps(error))
    assert (str(copy), copy.customer, copy.max_cost, copy.cost) == ("over", "c", Decimal(1), Decimal(2))


def test_limits_imports_nothing_of_the_runtime() -> None:
    import ast
    import inspect

    tree = ast.parse(inspect.getsource(limits))
    imported = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    imported |= {
        f"{node.module or ''}.{alias.name}".lstrip(".")
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom)
        for alias in node.names
    }
    imported |= {node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    assert not any("_runtime" in name for name in imported), imported


def test_configure_with_a_ledger_makes_it_the_spend_source(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path / "mine.db")
    usagetap.configure(sink=[Memory(), ledger])
    assert STATE.spend_source is ledger
    usagetap.configure(sink=Memory())
    assert STATE.spend_source is None


def test_spend_before_this_process_is_read_from_the_spend_source(
    client: openai.OpenAI, server: ProviderServer, sink: Memory
) -> None:
    asked: list[tuple[str, int]] = []

    class Source:
        def spent(
            self, customer: str, starts: list[object], until: datetime
        ) -> list[tuple[int, int, Decimal, int]]:
            asked.append((customer, len(starts)))
            return [(5, 1000, Decimal("2.5"), 1) for _ in starts]

    STATE.spend_source = Source()
    usagetap.limits.set("org_s", max_tokens=10_000)
    ask(client, "org_s")
    spend = usagetap.limits.spent("org_s", "month")
    issued = sum(i.input_tokens + i.output_tokens for i in server.issued.values())
    assert (spend.calls, spend.tokens, spend.unpriced_calls) == (6, 1000 + issued, 1)
    assert spend.cost > Decimal("2.5")
    assert asked == [("org_s", len(limits.PERIODS))]


def test_a_feature_limit_when_no_budget_store_opens_is_not_enforced_and_logged_once(
    client: openai.OpenAI,
    server: ProviderServer,
    sink: Memory,
    caplog: pytest.LogCaptureFixture,
    per_process: None,
) -> None:
    usagetap.limits.set("org_f", max_tokens=0, feature="chat")
    with caplog.at_level("WARNING", logger="usagetap"):
        ask(client, "org_f")
        ask(client, "org_f")
    assert len(server.requests) == 2
    assert len([r for r in caplog.records if "need a budget store" in r.getMessage()]) == 1


def test_limits_for_the_same_period_and_different_features_all_apply() -> None:
    usagetap.limits.set("org_k", max_tokens=10, period="day")
    usagetap.limits.set("org_k", max_tokens=5, period="day", feature="chat")
    usagetap.limits.set("org_k", max_tokens=7, period="day", feature="chat")
    assert sorted((limit.feature or "", limit.max_tokens) for limit in usagetap.limits.get("org_k")) == [
        ("", 10),
        ("chat", 7),
    ]


@pytest.mark.parametrize(
    "options",
    [{"period": "rolling"}, {"period": "day", "window": timedelta(hours=1)}, {"tz": "Mars/Olympus_Mons"}],
)
def test_a_limit_refuses_a_rolling_period_without_its_window_and_an_unknown_time_zone(
    options: dict[str, object],
) -> None:
    with pytest.raises(ValueError):
        Limit(max_tokens=1, **options)  # type: ignore[arg-type]


def test_with_the_default_budget_store_no_per_process_account_keeps_calls_in_memory(
    client: openai.OpenAI, server: ProviderServer, sink: Memory
) -> None:
    usagetap.limits.set("org_m", max_tokens=100_000, period="day")
    usagetap.record(
        provider="mistral", model="mistral-large-latest", input_tokens=9, output_tokens=1, customer="org_m"
    )
    ask(client, "org_m")
    ask(client, "org_m")
    assert STATE.accounts == {}
    issued = sum(i.input_tokens + i.output_tokens for i in server.issued.values())
    assert usagetap.limits.spent("org_m", "day").tokens == 10 + issued


@pytest.mark.internal_error("limits ledger")
def test_a_ledger_that_cannot_be_read_is_counted_once_and_the_shared_budget_goes_on_without_it(
    client: openai.OpenAI, server: ProviderServer, sink: Memory, tmp_path: Path
) -> None:
    reads: list[str] = []

    class Broken:
        def spent(self, customer: str, starts: list[object], until: datetime) -> None:
            reads.append(customer)
            raise OSError("ledger unreadable")

    STATE.spend_source = Broken()
    usagetap.limits.set("org_b", max_tokens=100_000, period="day")
    ask(client, "org_b")
    ask(client, "org_b")
    assert len(server.requests) == 2 and reads == ["org_b"]
    assert usagetap._stats.snapshot()["internal_errors"] == 1
    usagetap.limits.use_store(tmp_path / "budgets.db")  # what another process opens by default
    assert usagetap.limits.spent("org_b", "day").calls == 2
