"""Matching metered records with the provider's rows, bucket by bucket."""

from __future__ import annotations

from decimal import Decimal

from usagetap.reconcile._match import match
from usagetap.reconcile._model import CostRow, Key, UsageRow

DAY = "2026-11-03"


def _key(
    model: str = "gpt-4.1", scope: str = "", tier: str = "default", batch: bool = False, api_key: str = ""
) -> Key:
    return Key(DAY, model, scope, tier, batch, api_key)


def test_records_without_a_project_match_the_providers_usage_summed_over_projects() -> None:
    usage = [UsageRow(_key(scope="proj_a"), 10, 5), UsageRow(_key(scope="proj_b"), 20, 5)]
    ledger = [(DAY, "gpt-4.1", {}, 30, 10, Decimal("0.01"))]
    result = match("openai", DAY, DAY, usage, [], ledger, max_drift=Decimal(1), costs_per_bucket=False)
    (bucket,) = result.buckets
    assert (bucket.key.scope, bucket.residual_tokens, result.scope) == ("", 0, None)


def test_records_that_all_name_a_project_are_matched_per_project() -> None:
    usage = [UsageRow(_key(scope="proj_a"), 10, 5), UsageRow(_key(scope="proj_b"), 20, 5)]
    ledger = [(DAY, "gpt-4.1", {"openai_project": "proj_a"}, 10, 5, Decimal("0.01"))]
    result = match("openai", DAY, DAY, usage, [], ledger, max_drift=Decimal(1), costs_per_bucket=False)
    assert [(b.key.scope, b.residual_tokens) for b in result.buckets] == [("proj_a", 0), ("proj_b", 25)]


def test_anthropic_batch_records_match_the_providers_batch_tier() -> None:
    usage = [UsageRow(_key("claude-sonnet-4-0", tier="batch", batch=True), 100, 50)]
    ledger = [(DAY, "claude-sonnet-4-0", {"batch": True, "service_tier": "batch"}, 100, 50, Decimal("0.001"))]
    costs = [CostRow(DAY, Decimal("0.001"), _key("claude-sonnet-4-0", tier="batch", batch=True))]
    result = match("anthropic", DAY, DAY, usage, costs, ledger, max_drift=Decimal(1), costs_per_bucket=True)
    (bucket,) = result.buckets
    assert (bucket.residual_tokens, bucket.residual_cost, result.drifted) == (0, Decimal(0), [])


def test_metering_more_than_the_provider_counted_is_drift_too() -> None:
    usage = [UsageRow(_key(), 10, 0)]
    ledger = [(DAY, "gpt-4.1", {}, 20, 0, None)]
    result = match("openai", DAY, DAY, usage, [], ledger, max_drift=Decimal(1), costs_per_bucket=False)
    (bucket,) = result.buckets
    assert (bucket.coverage, bucket.residual_tokens, result.unpriced) == (Decimal("200.00"), -10, 1)
    assert result.drifted == [f"{DAY} gpt-4.1 default: coverage 200.00%"]


def test_a_cost_drift_within_max_drift_passes() -> None:
    usage = [UsageRow(_key(), 10, 0)]
    costs = [CostRow(DAY, Decimal("1.000"))]
    ledger = [(DAY, "gpt-4.1", {}, 10, 0, Decimal("0.995"))]
    result = match("openai", DAY, DAY, usage, costs, ledger, max_drift=Decimal(1), costs_per_bucket=False)
    assert (result.days[0].cost_drift, result.drifted) == (Decimal("0.50"), [])


def test_records_are_matched_per_key_when_the_key_listing_is_given() -> None:
    usage = [UsageRow(_key(api_key="key_a"), 10, 5), UsageRow(_key(api_key="key_b"), 20, 5)]
    ledger = [
        (DAY, "gpt-4.1", {"api_key_hint": "sk-...aaaa"}, 10, 5, Decimal("0.01")),
        (DAY, "gpt-4.1", {"api_key_hint": "sk-...bbbb"}, 12, 5, Decimal("0.01")),
    ]
    keys = {"key_a": "sk-abc...aaa", "key_b": "sk-def...bbb"}
    result = match(
        "openai", DAY, DAY, usage, [], ledger, max_drift=Decimal(1), costs_per_bucket=False, api_keys=keys
    )
    assert [(b.key.api_key, b.residual_tokens) for b in result.buckets] == [("key_a", 0), ("key_b", 8)]
    assert f"{DAY} gpt-4.1 default key sk-def...bbb (key_b): coverage 68.00%" in result.drifted


def test_a_record_whose_hint_names_no_listed_key_goes_to_a_bucket_without_a_key() -> None:
    usage = [UsageRow(_key(api_key="key_a"), 10, 5)]
    ledger = [(DAY, "gpt-4.1", {"api_key_hint": "sk-...zzzz"}, 10, 5, Decimal("0.01"))]
    result = match(
        "openai",
        DAY,
        DAY,
        usage,
        [],
        ledger,
        max_drift=Decimal(1),
        costs_per_bucket=False,
        api_keys={"key_a": "sk-abc...aaa"},
    )
    assert [(b.key.api_key, b.provider.tokens, b.metered.tokens) for b in result.buckets] == [
        ("", 0, 15),
        ("key_a", 15, 0),
    ]


def test_without_a_key_listing_the_providers_rows_are_summed_over_keys() -> None:
    usage = [UsageRow(_key(api_key="key_a"), 10, 5), UsageRow(_key(api_key="key_b"), 20, 5)]
    ledger = [(DAY, "gpt-4.1", {"api_key_hint": "sk-...aaaa"}, 30, 10, Decimal("0.01"))]
    result = match("openai", DAY, DAY, usage, [], ledger, max_drift=Decimal(1), costs_per_bucket=False)
    (bucket,) = result.buckets
    assert (bucket.key.api_key, bucket.residual_tokens, result.api_keys) == ("", 0, None)
