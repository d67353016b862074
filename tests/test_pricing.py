from __future__ import annotations

import logging
from datetime import datetime, timezone

import pytest
from genai_prices import Usage, calc_price

from usagetap.pricing import price_record, price_version
from usagetap.record import UsageRecord


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
    assert price_record(r) == expected
    assert r.cost == expected and expected > 0
    assert r.price_version == price_version()
    assert r.price_version.startswith("genai-prices ")


def test_unknown_model_costs_none_never_zero_and_warns_once(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="usagetap")
    first = record("my-private-finetune", input_tokens=10, output_tokens=5)
    second = record("my-private-finetune", input_tokens=11, output_tokens=5)
    assert price_record(first) is None
    assert price_record(second) is None
    assert first.cost is None and second.cost is None
    assert first.price_version is not None
    warnings = [r for r in caplog.records if "my-private-finetune" in r.getMessage()]
    assert len(warnings) == 1


def test_unknown_provider_host_is_unpriced() -> None:
    assert price_record(record("gpt-4.1", provider="localhost", input_tokens=10, output_tokens=1)) is None


def test_priced_record_is_not_priced_again() -> None:
    r = record("gpt-4.1", input_tokens=10, output_tokens=1)
    cost = price_record(r)
    r.input_tokens = 10_000
    assert price_record(r) == cost
