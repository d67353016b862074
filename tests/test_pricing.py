from __future__ import annotations

import dataclasses
import logging
from datetime import datetime, timezone
from decimal import Decimal

import openai
import pytest
from genai_prices import Usage, calc_price

import usagetap
from usagetap._cost import price_record, price_version, supports_price_context, supports_usage_key, usage_of
from usagetap._record import UsageRecord
from usagetap.sinks import Memory
from usagetap.testing import ProviderServer


def record(model: str, provider: str = "openai", **tokens: int) -> UsageRecord:
    return UsageRecord(
        event_id=f"ev-{model}-{sorted(tokens.items())}",
        timestamp=datetime.now(timezone.utc),
        customer="org_1",
        provider=provider,
        model=model,
        request_model=model,
        operation="chat",
        **tokens,
    )


@pytest.mark.parametrize(
    ("provider", "model", "tokens"),
    [
        ("openai", "gpt-4.1", {"input_tokens": 1200, "output_tokens": 300, "cache_read_tokens": 1024}),
        ("openai", "gpt-4.1-mini", {"input_tokens": 57, "output_tokens": 9}),
        ("openai", "o4-mini", {"input_tokens": 500, "output_tokens": 900, "reasoning_tokens": 700}),
        (
            "anthropic",
            "claude-sonnet-4-5",
            {
                "input_tokens": 3000,
                "output_tokens": 200,
                "cache_read_tokens": 1000,
                "cache_write_tokens": 1500,
            },
        ),
    ],
)
def test_cost_equals_genai_prices(provider: str, model: str, tokens: dict) -> None:
    r = record(model, provider, **tokens)
    expected = calc_price(
        Usage(
            input_tokens=r.input_tokens,
            output_tokens=r.output_tokens,
            cache_read_tokens=r.cache_read_tokens or None,
            cache_write_tokens=r.cache_write_tokens or None,
        ),
        model,
        provider_id=provider,
    ).total_price
    r = price_record(r)
    assert r.cost == expected
    assert r.cost == expected and expected > 0
    assert r.price_version == price_version()
    assert r.price_version.startswith("genai-prices ")


def test_unknown_model_costs_none_never_zero_and_warns_once(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="usagetap")
    first = record("my-private-finetune", input_tokens=10, output_tokens=5)
    second = record("my-private-finetune", input_tokens=11, output_tokens=5)
    first = price_record(first)
    assert first.cost is None
    second = price_record(second)
    assert second.cost is None
    assert first.cost is None and second.cost is None
    assert first.price_version is not None
    warnings = [r for r in caplog.records if "my-private-finetune" in r.getMessage()]
    assert len(warnings) == 1


def test_unknown_provider_host_serving_its_own_model_is_unpriced() -> None:
    local = record("qwen2.5-coder:7b", provider="localhost", input_tokens=10, output_tokens=1)
    assert price_record(local).cost is None


def test_priced_record_is_not_priced_again() -> None:
    r = record("gpt-4.1", input_tokens=10, output_tokens=1)
    priced = price_record(r)
    changed = dataclasses.replace(priced, input_tokens=10_000)
    assert price_record(changed) is changed and changed.cost == priced.cost


# -- every pricing feature, against genai-prices' own calc_price -------------------------------


def case(
    name: str,
    provider: str,
    model: str,
    tokens: dict,
    dimensions: dict | None = None,
    usage: dict | None = None,
    context: dict | None = None,
    provider_id: str | None = None,
) -> object:
    """A record (tokens, dimensions) and the genai-prices usage keys / price_context it is priced with."""
    values = (provider, provider_id or provider, model, tokens, dimensions or {}, usage or {}, context or {})
    return pytest.param(*values, id=name)


CASES = [
    case("service-tier", "openai", "gpt-4.1", {"input_tokens": 2000, "output_tokens": 100},
         {"service_tier": "priority"}, context={"service_tier": "priority"}),
    case("batch-with-cache-read", "openai", "gpt-4.1-mini",
         {"input_tokens": 2000, "output_tokens": 100, "cache_read_tokens": 1024},
         {"batch": True}, context={"processing": "batch"}),
    case("reasoning", "openai", "o4-mini",
         {"input_tokens": 500, "output_tokens": 900, "reasoning_tokens": 700},
         usage={"output_reasoning_tokens": 700}),
    case("audio", "openai", "gpt-4o-audio-preview", {"input_tokens": 600, "output_tokens": 400},
         {"input_audio_tokens": 100, "output_audio_tokens": 300},
         usage={"input_audio_tokens": 100, "output_audio_tokens": 300}),
    case("cache-write-5m-1h", "anthropic", "claude-sonnet-4-5",
         {"input_tokens": 3000, "output_tokens": 200, "cache_read_tokens": 1000, "cache_write_tokens": 1500},
         {"cache_write_5m_tokens": 1000, "cache_write_1h_tokens": 500},
         usage={"cache_write_5m_tokens": 1000, "cache_write_1h_tokens": 500}),
    case("long-context-tier", "anthropic", "claude-sonnet-4-5",
         {"input_tokens": 250_000, "output_tokens": 1000}),
    case("anthropic-batch", "anthropic", "claude-haiku-4-5", {"input_tokens": 5000, "output_tokens": 700},
         {"batch": True, "service_tier": "batch"}, context={"processing": "batch"}),
    case("web-search", "anthropic", "claude-opus-4-1", {"input_tokens": 5000, "output_tokens": 700},
         {"web_search_requests": 3}, usage={"web_searches": 3}),
    case("azure", "azure", "gpt-4.1", {"input_tokens": 1000, "output_tokens": 10}),
    case("bedrock", "bedrock", "anthropic.claude-sonnet-4-5-20250929-v1:0",
         {"input_tokens": 1000, "output_tokens": 10}, provider_id="aws"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("provider", "provider_id", "model", "tokens", "dimensions", "extra_usage", "context"),
    CASES,
)
def test_cost_equals_calc_price_with_every_pricing_feature(
    provider: str,
    provider_id: str,
    model: str,
    tokens: dict,
    dimensions: dict,
    extra_usage: dict,
    context: dict,
) -> None:
    if not all(supports_usage_key(key) for key in extra_usage):
        pytest.skip(f"the installed genai-prices has no {sorted(extra_usage)} usage keys")
    if context and not supports_price_context():
        pytest.skip("the installed genai-prices has no price_context (batch / service tier prices)")
    r = record(model, provider, **tokens)
    r.dimensions.update(dimensions)
    usage = Usage(
        input_tokens=tokens["input_tokens"],
        output_tokens=tokens["output_tokens"],
        cache_read_tokens=tokens.get("cache_read_tokens"),
        cache_write_tokens=tokens.get("cache_write_tokens"),
        **extra_usage,
    )
    kwargs = {"price_context": context} if context else {}
    expected = calc_price(usage, model, provider_id=provider_id, **kwargs).total_price
    r = price_record(r)
    assert r.cost == expected and expected > 0
    assert r.price_version == price_version()
    if context:  # the variant really changes the price
        assert calc_price(usage, model, provider_id=provider_id).total_price != expected


def test_long_context_input_is_priced_at_the_higher_tier() -> None:
    below = record("claude-sonnet-4-5", "anthropic", input_tokens=200_000, output_tokens=0)
    above = record("claude-sonnet-4-5", "anthropic", input_tokens=200_001, output_tokens=0)
    assert price_record(above).cost > price_record(below).cost * Decimal("1.5")  # type: ignore[operator]


def test_without_price_context_support_batch_is_priced_at_standard_rates_with_one_warning(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """What an older genai-prices (no ``price_context``, e.g. 0.0.61 on Python 3.9) gets."""
    caplog.set_level(logging.WARNING, logger="usagetap")
    monkeypatch.setattr("usagetap._cost.supports_price_context", lambda: False)
    batch = record("gpt-4.1", input_tokens=1000, output_tokens=10)
    batch.dimensions["batch"] = True
    again = record("gpt-4.1", input_tokens=1001, output_tokens=10)
    again.dimensions["batch"] = True
    standard = calc_price(Usage(input_tokens=1000, output_tokens=10), "gpt-4.1", provider_id="openai")
    batch = price_record(batch)
    assert batch.cost == standard.total_price
    price_record(again)
    assert sum("no batch or service-tier prices" in r.getMessage() for r in caplog.records) == 1


def test_usage_keys_the_installed_genai_prices_lacks_are_left_out_with_one_warning(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="usagetap")
    monkeypatch.setattr("usagetap._cost.supports_usage_key", lambda key: key != "cache_write_1h_tokens")
    r = record("claude-sonnet-4-5", "anthropic", input_tokens=3000, output_tokens=10, cache_write_tokens=1000)
    r.dimensions["cache_write_1h_tokens"] = 1000
    expected = calc_price(
        Usage(input_tokens=3000, output_tokens=10, cache_write_tokens=1000), "claude-sonnet-4-5",
        provider_id="anthropic",
    ).total_price  # fmt: skip
    assert usage_of(r) == (("input_tokens", 3000), ("output_tokens", 10), ("cache_write_tokens", 1000))
    r = price_record(r)
    assert r.cost == expected
    assert sum("cache_write_1h_tokens" in rec.getMessage() for rec in caplog.records) == 1


def test_same_tokens_with_another_service_tier_are_priced_apart() -> None:
    if not supports_price_context():
        pytest.skip("the installed genai-prices has no service-tier prices")
    default = record("gpt-4.1", input_tokens=1000, output_tokens=10)
    priority = record("gpt-4.1", input_tokens=1000, output_tokens=10)
    priority.dimensions["service_tier"] = "priority"
    assert price_record(priority).cost > price_record(default).cost  # type: ignore[operator]


# -- user overrides and markup ------------------------------------------------------


def test_override_prices_a_private_model_from_its_rates() -> None:
    usagetap.prices.set("my-private-finetune", input_per_mtok=2, output_per_mtok="8", cache_read_per_mtok=0.5)
    r = record("my-private-finetune", input_tokens=1000, output_tokens=100, cache_read_tokens=200)
    expected = (800 * Decimal(2) + 200 * Decimal("0.5") + 100 * Decimal(8)) / 1_000_000
    r = price_record(r)
    assert r.cost == expected
    assert r.price_version is not None and "override" in r.price_version and "input=2" in r.price_version


def test_override_wins_over_the_table_and_can_be_limited_to_a_provider() -> None:
    usagetap.prices.set("gpt-4.1", "azure", input_per_mtok=1, output_per_mtok=1)
    on_azure = record("gpt-4.1", "azure", input_tokens=1_000_000, output_tokens=0)
    on_openai = record("gpt-4.1", "openai", input_tokens=1_000_000, output_tokens=0)
    on_azure = price_record(on_azure)
    assert on_azure.cost == Decimal(1)
    table = calc_price(Usage(input_tokens=1_000_000, output_tokens=0), "gpt-4.1", provider_id="openai")
    on_openai = price_record(on_openai)
    assert on_openai.cost == table.total_price != Decimal(1)
    usagetap.prices.unset("gpt-4.1", "azure")
    assert usagetap.prices.get("gpt-4.1", "azure") is None


def test_override_matches_the_requested_model_as_well() -> None:
    usagetap.prices.set("my-deployment", "azure", input_per_mtok=3, output_per_mtok=3)
    r = record("some-model-the-server-reports", "azure", input_tokens=1_000_000, output_tokens=0)
    r = dataclasses.replace(r, request_model="my-deployment")
    r = price_record(r)
    assert r.cost == Decimal(3)


def test_prices_are_validated() -> None:
    with pytest.raises(ValueError):
        usagetap.prices.set("m", input_per_mtok=-1, output_per_mtok=1)
    with pytest.raises(TypeError):
        usagetap.prices.set("m", input_per_mtok="cheap", output_per_mtok=1)
    with pytest.raises(ValueError):
        usagetap.prices.markup(float("inf"))


def test_markup_is_recorded_as_billed_cost_and_never_replaces_cost() -> None:
    usagetap.prices.markup(1.3)
    usagetap.prices.markup(Decimal(2), customer="org_vip")
    plain = record("gpt-4.1", input_tokens=1000, output_tokens=100)
    vip = record("gpt-4.1", input_tokens=1000, output_tokens=100)
    vip = dataclasses.replace(vip, customer="org_vip")
    table = calc_price(
        Usage(input_tokens=1000, output_tokens=100), "gpt-4.1", provider_id="openai"
    ).total_price
    plain, vip = price_record(plain), price_record(vip)
    assert plain.cost == table and plain.billed_cost == table * Decimal("1.3")
    assert vip.cost == table and vip.billed_cost == table * 2


def test_markup_can_be_a_function_of_the_record_and_unknown_models_are_never_billed() -> None:
    usagetap.prices.markup(lambda r: 3 if r.model == "gpt-4.1" else None)
    marked = record("gpt-4.1", input_tokens=10, output_tokens=1)
    other = record("gpt-4.1-mini", input_tokens=10, output_tokens=1)
    unknown = record("my-private-finetune", input_tokens=10, output_tokens=1)
    marked, other, unknown = (price_record(r) for r in (marked, other, unknown))
    assert marked.billed_cost == marked.cost * 3  # type: ignore[operator]
    assert other.billed_cost is None and other.cost is not None
    assert unknown.cost is None and unknown.billed_cost is None
    usagetap.prices.markup(None)
    cleared = record("gpt-4.1", input_tokens=11, output_tokens=1)
    assert price_record(cleared).billed_cost is None


def test_delivered_records_carry_cost_billed_cost_and_price_version(
    server: ProviderServer, sink: Memory
) -> None:
    client = usagetap.wrap(openai.OpenAI(base_url=server.openai_url, api_key="sk-test", max_retries=0))
    usagetap.prices.markup("1.25")
    with usagetap.track(customer="org_1") as run:
        client.chat.completions.create(model="gpt-4.1", messages=[{"role": "user", "content": "hi"}])
    assert usagetap.flush().pending == 0
    [r] = sink.records
    context = {"price_context": {"service_tier": "default"}} if supports_price_context() else {}
    usage = Usage(input_tokens=r.input_tokens, output_tokens=r.output_tokens)
    assert r.dimensions["service_tier"] == "default"
    assert r.cost == calc_price(usage, "gpt-4.1", provider_id="openai", **context).total_price
    assert r.billed_cost == r.cost * Decimal("1.25") and r.price_version == price_version()
    assert run.cost == r.cost and run.billed_cost == r.billed_cost


# -- the linear path: token counts that vary from call to call ------------------------------------


@pytest.mark.parametrize(
    ("provider", "model"),
    [
        ("openai", "gpt-4.1"),  # cache reads priced on their own; cache writes and reasoning as their whole
        ("anthropic", "claude-sonnet-4-5"),  # cache writes priced on their own too
        ("vertex", "gemini-2.5-pro"),  # tiered by input size: priced by genai-prices each time
    ],
)
def test_varying_counts_cost_exactly_what_genai_prices_says_same_decimal(provider: str, model: str) -> None:
    import random

    rng = random.Random(7)
    provider_id = {"vertex": "google"}.get(provider, provider)
    for i in range(120):
        total_in = rng.choice([rng.randint(1, 3000), rng.randint(1, 400_000), 1_000_000])
        total_out = rng.choice([rng.randint(0, 4000), 1_000_000])
        read = rng.choice([0, rng.randint(0, total_in // 2)])
        write = rng.choice([0, rng.randint(0, total_in - read)])
        reasoning = rng.choice([0, rng.randint(0, total_out), total_out])
        r = dataclasses.replace(
            record(model, provider, input_tokens=total_in, output_tokens=total_out),
            cache_read_tokens=read,
            cache_write_tokens=write,
            reasoning_tokens=reasoning,
            event_id=f"ev-{i}",
        )
        usage = {"input_tokens": total_in, "output_tokens": total_out}
        for key, value in (("cache_read_tokens", read), ("cache_write_tokens", write)):
            if value:
                usage[key] = value
        if reasoning and supports_usage_key("output_reasoning_tokens"):
            usage["output_reasoning_tokens"] = reasoning
        try:
            expected = calc_price(Usage(**usage), model, provider_id=provider_id).total_price
        except ValueError:  # detailed usage the model's prices refuse: priced without it
            base = {k: v for k, v in usage.items() if k != "output_reasoning_tokens"}
            expected = calc_price(Usage(**base), model, provider_id=provider_id).total_price
        cost = price_record(r).cost
        assert (cost, str(cost)) == (expected, str(expected)), usage


# The vendors' published list prices (USD per million tokens: input, cache read, cache write 5 m, output)
# of the models the demo calls. The same call costs the same on every supported Python: CI runs this on
# 3.10 (which resolves an older genai-prices) and 3.13 (the newest).
_LIST_PRICES = {
    ("openai", "gpt-4.1"): ("2", "0.5", None, "8"),
    ("openai", "gpt-4.1-mini"): ("0.4", "0.1", None, "1.6"),
    ("openai", "gpt-4.1-nano"): ("0.1", "0.025", None, "0.4"),
    ("openai", "o4-mini"): ("1.1", "0.275", None, "4.4"),
    ("anthropic", "claude-sonnet-4-6"): ("3", "0.3", "3.75", "15"),
    ("anthropic", "claude-haiku-4-5"): ("1", "0.1", "1.25", "5"),
}


@pytest.mark.parametrize(("provider", "model"), sorted(_LIST_PRICES))
def test_the_demo_models_cost_their_list_price_on_every_python(provider: str, model: str) -> None:
    rate_in, rate_read, rate_write, rate_out = (
        None if r is None else Decimal(r) for r in _LIST_PRICES[provider, model]
    )
    write = 300 if rate_write is not None else 0
    priced = record(
        model,
        provider,
        input_tokens=2000 + write,
        output_tokens=700,
        cache_read_tokens=600,
        cache_write_tokens=write,
    )
    expected = (1400 * rate_in + 600 * rate_read + write * (rate_write or 0) + 700 * rate_out) / 1_000_000
    priced = price_record(priced)
    assert priced.cost == expected


def test_the_declared_lowest_genai_prices_has_every_pricing_feature_usagetap_applies() -> None:
    from usagetap._cost import _DIMENSION_USAGE

    keys = ["cache_read_tokens", "cache_write_tokens", "output_reasoning_tokens", *_DIMENSION_USAGE.values()]
    assert [key for key in keys if not supports_usage_key(key)] == []
    assert supports_price_context()


@pytest.mark.parametrize(("vendor", "model"), [("anthropic", "claude-haiku-4-5"), ("openai", "gpt-4.1-mini")])
def test_an_unknown_host_is_priced_at_the_rates_of_the_sdk_vendor_whose_model_it_serves(
    vendor: str, model: str
) -> None:
    r = record(model, "llm-gateway.internal.example", input_tokens=4200, output_tokens=310)
    expected = calc_price(Usage(input_tokens=4200, output_tokens=310), model, provider_id=vendor).total_price
    r = price_record(r)
    assert r.cost == Decimal(expected) and expected > 0


def test_an_unknown_host_serving_another_vendor_model_has_no_price() -> None:
    r = record("llama-3.3-70b-versatile", "llm-gateway.internal.example", input_tokens=900, output_tokens=40)
    r = price_record(r)
    assert r.cost is None


def test_a_model_priced_by_the_time_of_day_is_priced_at_the_time_of_its_call() -> None:
    """DeepSeek's off-peak discount (genai-prices: a time-of-day price for deepseek-chat, 16:30-00:30 UTC)."""
    usage = Usage(input_tokens=4000, output_tokens=900)
    costs = {}
    for hour in (3, 20):
        at = datetime(2026, 3, 2, hour, 15, tzinfo=timezone.utc)
        chat = dataclasses.replace(
            record("deepseek-chat", "deepseek", input_tokens=4000, output_tokens=900), timestamp=at
        )
        costs[hour] = (
            price_record(chat).cost,
            calc_price(
                usage, "deepseek-chat", provider_id="deepseek", genai_request_timestamp=at
            ).total_price,
        )
    assert costs[3][0] == costs[3][1] and costs[20][0] == costs[20][1]
    assert costs[20][0] < costs[3][0]


def test_a_genai_prices_provider_id_as_provider_name_is_priced_at_that_provider() -> None:
    priced = price_record(record("grok-3", "x-ai", input_tokens=1000, output_tokens=200))
    usage = Usage(input_tokens=1000, output_tokens=200)
    assert priced.cost == calc_price(usage, "grok-3", provider_id="x-ai").total_price


@pytest.mark.parametrize("provider", ["ollama", "lmstudio", "vllm"])
def test_a_self_hosted_server_serving_a_model_named_like_openais_has_no_price(provider: str) -> None:
    priced = price_record(record("gpt-4o-mini", provider, input_tokens=1000, output_tokens=200))
    assert (priced.cost, priced.input_tokens) == (None, 1000)
