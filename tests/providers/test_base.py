"""Fitting extracted usage to the record's rules: counts bounded, parts within their totals."""

from __future__ import annotations

import pytest

from usagetap import _stats
from usagetap.providers.base import TokenUsage, fit_usage, unreadable


def test_reasoning_above_output_is_cut_to_the_output_and_named() -> None:
    usage = TokenUsage(input_tokens=43, output_tokens=10, reasoning_tokens=11)
    assert fit_usage(usage) == ["parts_exceed_total"]
    assert (usage.input_tokens, usage.output_tokens, usage.reasoning_tokens) == (43, 10, 10)
    assert usage.issue == "reasoning_tokens 11 over output_tokens 10, cut to 10"


def test_cache_reads_and_writes_above_the_input_are_cut_to_what_it_leaves() -> None:
    usage = TokenUsage(input_tokens=100, cache_read_tokens=90, cache_write_tokens=30)
    assert fit_usage(usage) == ["parts_exceed_total"]
    assert (usage.input_tokens, usage.cache_write_tokens, usage.cache_read_tokens) == (100, 30, 70)
    assert usage.issue == "cache_read_tokens 90 over input_tokens 100, cut to 70"


def test_a_count_above_a_trillion_is_not_billed_and_its_reported_value_kept_in_the_issue() -> None:
    usage = TokenUsage(input_tokens=2**63, output_tokens=7, cache_read_tokens=5)
    assert fit_usage(usage) == ["out_of_range", "parts_exceed_total"]
    assert (usage.input_tokens, usage.output_tokens, usage.cache_read_tokens) == (0, 7, 0)
    assert usage.issue == (
        "input_tokens 9223372036854775808 over 1000000000000, not billed; "
        "cache_read_tokens 5 over input_tokens 0, cut to 0"
    )


def test_consistent_usage_is_left_alone() -> None:
    fine = TokenUsage(input_tokens=10**12, output_tokens=5, cache_read_tokens=10**12, reasoning_tokens=5)
    assert fit_usage(fine) == []
    assert fine.issue is None


@pytest.mark.parametrize("value", [-5, 2.5, float("nan"), "12", None, True, [3]])
def test_a_count_that_is_no_count_is_not_billed_and_named_in_the_issue(value: object) -> None:
    usage = TokenUsage(input_tokens=value, output_tokens=7, cache_read_tokens=3)  # type: ignore[arg-type]
    assert fit_usage(usage)[0] == "not_a_count"
    assert (usage.input_tokens, usage.output_tokens) == (0, 7)
    assert usage.issue is not None and usage.issue.startswith(f"input_tokens {value!r} is not a count")


def test_a_whole_float_count_is_taken_as_its_integer() -> None:
    usage = TokenUsage(input_tokens=12.0, output_tokens=7)  # type: ignore[arg-type]
    assert fit_usage(usage) == []
    assert (type(usage.input_tokens), usage.input_tokens, usage.issue) == (int, 12, None)


@pytest.mark.internal_error("usage")
@pytest.mark.parametrize("usage", ["12 tokens", [1, 2], 42, 4.5])
def test_usage_that_is_not_an_object_is_an_issue_and_an_internal_error(usage: object) -> None:
    result = unreadable(usage, model="m", response_id="r")
    assert result.reported and result.issue == f"usage is a {type(usage).__name__}, not an object"
    assert (result.model, result.response_id, result.input_tokens, result.output_tokens) == ("m", "r", 0, 0)
    assert _stats.snapshot()["internal_errors"] == 1
