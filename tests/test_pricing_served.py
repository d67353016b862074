"""Calls priced as they were served: tier, batch, data residency, long context, cache-write TTL.

Every expected cost is worked out by hand from the provider's documented price (USD per million
tokens, cited per test), never from genai-prices.
"""

from __future__ import annotations

from datetime import datetime, timezone
from decimal import Decimal
from typing import Any, Optional

import pytest

import usagetap
from usagetap._cost import price_record, price_version
from usagetap._record import UsageRecord

M = Decimal(1_000_000)


def served(
    model: str,
    provider: str,
    dimensions: Optional[dict[str, Any]] = None,
    *,
    day: Optional[datetime] = None,
    **tokens: int,
) -> UsageRecord:
    """A record of ``model`` served under ``dimensions``, priced."""
    record = UsageRecord(
        event_id=f"ev-{model}-{dimensions}-{tokens}",
        timestamp=day or datetime.now(timezone.utc),
        customer="org_1",
        provider=provider,
        model=model,
        request_model=model,
        operation="chat",
        dimensions=dict(dimensions or {}),
        **tokens,
    )
    return price_record(record)


# -- OpenAI service_tier ------------------------------------------------------------------


def test_openai_flex_is_priced_at_half_the_standard_rates() -> None:
    # gpt-5: $1.25 in / $10 out; Flex processing is 50 % of that: $0.625 / $5
    r = served("gpt-5", "openai", {"service_tier": "flex"}, input_tokens=10_000, output_tokens=2_000)
    assert r.cost == (10_000 * Decimal("0.625") + 2_000 * Decimal(5)) / M
    assert r.price_source == price_version() and r.price_issue is None


def test_openai_flex_before_genai_prices_has_it_is_priced_by_the_overlay() -> None:
    # genai-prices 0.2.3 holds gpt-5's flex rates from 2026-10-12; Flex was documented at 50 % before that
    day = datetime(2026, 9, 1, 12, tzinfo=timezone.utc)
    r = served("gpt-5", "openai", {"service_tier": "flex"}, day=day, input_tokens=10_000, output_tokens=2_000)
    assert r.cost == (10_000 * Decimal("0.625") + 2_000 * Decimal(5)) / M
    assert r.price_source == f"{price_version()} + overlay:openai-flex-50pct"


def test_openai_priority_is_priced_at_the_priority_rates() -> None:
    # gpt-4.1 Priority: $3.50 in / $14 out (standard $2 / $8)
    r = served("gpt-4.1", "openai", {"service_tier": "priority"}, input_tokens=10_000, output_tokens=2_000)
    assert r.cost == (10_000 * Decimal("3.5") + 2_000 * Decimal(14)) / M
    assert r.price_source == price_version()


def test_openai_default_tier_is_priced_at_the_standard_rates() -> None:
    r = served("gpt-4.1", "openai", {"service_tier": "default"}, input_tokens=10_000, output_tokens=2_000)
    assert r.cost == (10_000 * Decimal(2) + 2_000 * Decimal(8)) / M and r.price_issue is None


def test_openai_scale_tier_has_no_per_token_price_and_says_so() -> None:
    r = served("gpt-4.1", "openai", {"service_tier": "scale"}, input_tokens=10_000, output_tokens=2_000)
    assert r.cost is None and r.price_source is None
    assert r.price_issue == "no price for service_tier=scale of 'gpt-4.1' at 'openai'"


def test_flex_on_a_model_without_flex_prices_is_not_priced_at_list_price() -> None:
    r = served("gpt-4.1", "openai", {"service_tier": "flex"}, input_tokens=10_000, output_tokens=2_000)
    assert r.cost is None and r.price_issue is not None and "service_tier=flex" in r.price_issue


# -- Anthropic: service_tier, batch, inference_geo --------------------------------------------


def test_anthropic_batch_is_half_price_from_the_overlay_where_genai_prices_has_no_batch_rate() -> None:
    # Claude Opus 4.1: $15 in / $75 out; the Message Batches API charges 50 %
    r = served("claude-opus-4-1", "anthropic", {"batch": True}, input_tokens=10_000, output_tokens=2_000)
    assert r.cost == (10_000 * Decimal("7.5") + 2_000 * Decimal("37.5")) / M
    assert r.price_source == f"{price_version()} + overlay:anthropic-batch-50pct"


def test_anthropic_batch_results_use_genai_prices_batch_rates_where_it_has_them() -> None:
    # Claude Haiku 4.5: $1 in / $5 out; batch $0.50 / $2.50
    r = served("claude-haiku-4-5", "anthropic", {"batch": True}, input_tokens=10_000, output_tokens=2_000)
    assert r.cost == (10_000 * Decimal("0.5") + 2_000 * Decimal("2.5")) / M
    assert r.price_source == price_version()


def test_anthropic_priority_tier_has_no_public_price_and_says_so() -> None:
    r = served(
        "claude-opus-4-6", "anthropic", {"service_tier": "priority"}, input_tokens=1_000, output_tokens=100
    )
    assert r.cost is None
    assert r.price_issue == "no price for service_tier=priority of 'claude-opus-4-6' at 'anthropic'"


def test_anthropic_standard_tier_is_the_standard_price() -> None:
    # Claude Opus 4.6: $5 in / $25 out
    r = served(
        "claude-opus-4-6", "anthropic", {"service_tier": "standard", "inference_geo": "global"},
        input_tokens=10_000, output_tokens=2_000,
    )  # fmt: skip
    assert r.cost == (10_000 * Decimal(5) + 2_000 * Decimal(25)) / M and r.price_issue is None


def test_us_only_inference_costs_1_1_times_on_models_that_offer_it() -> None:
    # Claude Opus 4.6 with inference_geo "us": 1.1 x ($5 in / $25 out)
    r = served(
        "claude-opus-4-6", "anthropic", {"inference_geo": "us"}, input_tokens=10_000, output_tokens=2_000
    )
    assert r.cost == (10_000 * Decimal(5) + 2_000 * Decimal(25)) * Decimal("1.1") / M
    assert r.price_source == f"{price_version()} + overlay:anthropic-us-inference-1.1x"


def test_us_only_inference_in_a_batch_takes_both_the_batch_rate_and_the_premium() -> None:
    # Opus 4.6 batch: $2.50 in / $12.50 out, times 1.1
    r = served(
        "claude-opus-4-6", "anthropic", {"inference_geo": "us", "batch": True},
        input_tokens=10_000, output_tokens=2_000,
    )  # fmt: skip
    assert r.cost == (10_000 * Decimal("2.5") + 2_000 * Decimal("12.5")) * Decimal("1.1") / M


def test_a_geography_without_a_documented_price_is_not_priced() -> None:
    r = served("claude-opus-4-1", "anthropic", {"inference_geo": "us"}, input_tokens=1_000, output_tokens=10)
    assert r.cost is None and r.price_issue is not None and "inference_geo=us" in r.price_issue


# -- Gemini traffic type ------------------------------------------------------------------------


def test_gemini_flex_is_half_the_standard_rates_from_the_overlay_where_genai_prices_lacks_it() -> None:
    # Gemini 2.5 Flash: $0.30 in / $2.50 out; the Flex tier costs 50 %: $0.15 / $1.25
    r = served(
        "gemini-2.5-flash", "google", {"service_tier": "flex"}, input_tokens=10_000, output_tokens=2_000
    )
    assert r.cost == (10_000 * Decimal("0.15") + 2_000 * Decimal("1.25")) / M
    assert r.price_source == f"{price_version()} + overlay:google-flex-50pct" and r.price_issue is None


def _genai_prices_has_gemini_flex() -> bool:
    try:
        from genai_prices.data_snapshot import get_snapshot

        models = next(p.models for p in get_snapshot().providers if p.id == "google")
    except (ImportError, StopIteration, AttributeError):
        return False
    return any(
        variant.when == {"service_tier": "flex"}
        for model in models
        if model.id == "gemini-3.8-flash-tts"
        for variant in getattr(model, "price_variants", None) or ()
    )


@pytest.mark.skipif(
    not _genai_prices_has_gemini_flex(), reason="this genai-prices has no Gemini flex prices of its own"
)
def test_gemini_flex_takes_genai_prices_own_flex_rates_where_it_has_them() -> None:
    # Gemini 3.8 Flash TTS Flex (genai-prices, from 2026-10-15): $0.25 in / $4.50 out
    day = datetime(2026, 11, 2, 12, tzinfo=timezone.utc)
    r = served("gemini-3.8-flash-tts", "google", {"service_tier": "flex"}, day=day,
               input_tokens=10_000, output_tokens=2_000)  # fmt: skip
    assert r.cost == (10_000 * Decimal("0.25") + 2_000 * Decimal("4.5")) / M
    assert r.price_source == price_version()


def test_vertex_flex_paygo_is_half_the_standard_paygo_rates() -> None:
    # Vertex AI Gemini 2.5 Flash: $0.30 in / $2.50 out; Flex PayGo (ON_DEMAND_FLEX) 50 %
    r = served("gemini-2.5-flash", "vertex", {"traffic_type": "ON_DEMAND_FLEX", "service_tier": "flex"},
               input_tokens=10_000, output_tokens=2_000)  # fmt: skip
    assert r.cost == (10_000 * Decimal("0.15") + 2_000 * Decimal("1.25")) / M
    assert r.price_source == f"{price_version()} + overlay:google-flex-50pct"


def test_gemini_priority_without_a_genai_prices_price_is_not_priced_at_standard() -> None:
    priority = {"traffic_type": "ON_DEMAND_PRIORITY", "service_tier": "priority"}
    r = served("gemini-2.5-flash", "vertex", priority, input_tokens=1_000, output_tokens=10)
    assert r.cost is None and r.price_source is None
    assert r.price_issue == "no price for service_tier=priority of 'gemini-2.5-flash' at 'vertex'"


def test_gemini_provisioned_throughput_is_prepaid_and_says_so() -> None:
    r = served("gemini-2.5-flash", "vertex", {"traffic_type": "PROVISIONED_THROUGHPUT", "prepaid": True},
               input_tokens=1_000, output_tokens=10)  # fmt: skip
    assert r.cost is None and r.price_issue == "provisioned throughput is prepaid, not priced per token"


# -- long context, keyed per model ----------------------------------------------------------------


def test_claude_sonnet_4_5_above_200k_input_is_priced_at_its_long_context_rates() -> None:
    # Sonnet 4.5 over 200k input tokens: $6 in / $22.50 out for the whole request
    r = served("claude-sonnet-4-5", "anthropic", input_tokens=300_000, output_tokens=1_000)
    assert r.cost == (300_000 * Decimal(6) + 1_000 * Decimal("22.5")) / M
    assert r.price_source == price_version()


def test_gemini_2_5_pro_above_200k_input_is_priced_at_its_long_context_rates() -> None:
    # Gemini 2.5 Pro over 200k prompt tokens: $2.50 in / $15 out
    r = served("gemini-2.5-pro", "google", input_tokens=300_000, output_tokens=1_000)
    assert r.cost == (300_000 * Decimal("2.5") + 1_000 * Decimal(15)) / M
    assert r.price_source == price_version()


def test_gpt_4_1_has_no_long_context_tier() -> None:
    # GPT-4.1: $2 in / $8 out at any length of its 1M window
    r = served("gpt-4.1", "openai", input_tokens=300_000, output_tokens=1_000)
    assert r.cost == (300_000 * Decimal(2) + 1_000 * Decimal(8)) / M
    assert r.price_source == price_version()


# -- cache-write TTL ------------------------------------------------------------------------------


def test_one_hour_cache_writes_cost_twice_the_base_input_price() -> None:
    # Claude Sonnet 4.6: input $3, 5-minute write $3.75, 1-hour write $6, output $15
    r = served(
        "claude-sonnet-4-6", "anthropic", {"cache_write_5m_tokens": 1_000, "cache_write_1h_tokens": 2_000},
        input_tokens=4_000, cache_write_tokens=3_000, output_tokens=100,
    )  # fmt: skip
    expected = 1_000 * Decimal(3) + 1_000 * Decimal("3.75") + 2_000 * Decimal(6) + 100 * Decimal(15)
    assert r.cost == expected / M and r.price_source == price_version()


def test_one_hour_cache_writes_without_a_table_price_take_the_overlay_2x_input(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A genai-prices without the model's 1-hour write price: the overlay's 2 x input prices them."""
    from usagetap import _cost

    calculate = _cost._calculate

    def without_one_hour(*args: Any) -> Any:
        calculation = calculate(*args)
        calculation.model_price = _copy_without(calculation.model_price, "cache_write_1h_mtok")
        return calculation

    monkeypatch.setattr(_cost, "_calculate", without_one_hour)
    _cost._plan.cache_clear()
    try:
        r = served(
            "claude-sonnet-4-6", "anthropic", {"cache_write_5m_tokens": 0, "cache_write_1h_tokens": 2_000},
            input_tokens=3_000, cache_write_tokens=2_000, output_tokens=100,
        )  # fmt: skip
    finally:
        _cost._plan.cache_clear()
        _cost._overlay_price.cache_clear()
    assert r.cost == (1_000 * Decimal(3) + 2_000 * Decimal(6) + 100 * Decimal(15)) / M
    assert r.price_source == f"{price_version()} + overlay:anthropic-cache-write-1h-2x"


# Amazon Bedrock offers the 1-hour TTL on Claude Sonnet 4.5, Haiku 4.5, Opus 4.5 and later, priced on
# https://aws.amazon.com/bedrock/pricing/ (cross-Region "us." profiles: 1.1 x the global rates); older
# Claude models have no 1-hour write price there
# (https://docs.aws.amazon.com/bedrock/latest/userguide/prompt-caching.html).


def test_bedrock_one_hour_cache_writes_are_priced_at_bedrocks_one_hour_rate() -> None:
    # us.anthropic.claude-sonnet-4-6: input $3.30, 5-minute write $4.125, 1-hour write $6.60, output $16.50
    r = served(
        "us.anthropic.claude-sonnet-4-6", "bedrock",
        {"cache_write_5m_tokens": 1_000, "cache_write_1h_tokens": 2_000},
        input_tokens=4_000, cache_write_tokens=3_000, output_tokens=100,
    )  # fmt: skip
    writes = 1_000 * Decimal("4.125") + 2_000 * Decimal("6.6")
    expected = 1_000 * Decimal("3.3") + writes + 100 * Decimal("16.5")
    assert r.cost == expected / M and r.price_source == price_version()


def test_one_hour_cache_writes_without_a_one_hour_price_anywhere_are_not_priced_as_5_minute_writes() -> None:
    # Claude Sonnet 4 on Bedrock: $3 in, $3.75 5-minute write, no 1-hour write price; genai-prices alone
    # would charge the 2,000 1-hour tokens at $3.75 (a total of $0.012)
    r = served(
        "us.anthropic.claude-sonnet-4-20250514-v1:0", "bedrock",
        {"cache_write_5m_tokens": 0, "cache_write_1h_tokens": 2_000},
        input_tokens=3_000, cache_write_tokens=2_000, output_tokens=100,
    )  # fmt: skip
    assert r.cost is None and r.price_source is None
    assert r.price_issue == (
        "no price for 1-hour cache writes of 'us.anthropic.claude-sonnet-4-20250514-v1:0' at 'bedrock'"
    )


def test_five_minute_cache_writes_of_a_model_without_a_one_hour_price_are_priced() -> None:
    # Claude Sonnet 4 on Bedrock: $3 in, $3.75 5-minute write, $15 out
    r = served(
        "us.anthropic.claude-sonnet-4-20250514-v1:0", "bedrock",
        {"cache_write_5m_tokens": 2_000, "cache_write_1h_tokens": 0},
        input_tokens=3_000, cache_write_tokens=2_000, output_tokens=100,
    )  # fmt: skip
    assert r.cost == (1_000 * Decimal(3) + 2_000 * Decimal("3.75") + 100 * Decimal(15)) / M


def _copy_without(model_price: Any, name: str) -> Any:
    import copy

    out = copy.copy(model_price)
    vars(out)[name] = None
    return out


# -- user prices win --------------------------------------------------------------------------


def test_a_user_price_wins_over_every_served_tier() -> None:
    usagetap.prices.set("gpt-4.1", "openai", input_per_mtok=1, output_per_mtok=2)
    r = served("gpt-4.1", "openai", {"service_tier": "scale"}, input_tokens=10_000, output_tokens=2_000)
    assert r.cost == (10_000 * Decimal(1) + 2_000 * Decimal(2)) / M
    assert r.price_source == "prices.set" and r.price_issue is None
