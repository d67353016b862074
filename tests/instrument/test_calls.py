"""From a finished call to its record: dimension caps and the invalid-record log."""

from __future__ import annotations

import json
import logging
from typing import Any

import openai
import pytest

import usagetap
from tests.instrument.conftest import delivered
from usagetap import _stats
from usagetap.sinks import Memory

MAX_DIMENSIONS, MAX_DIMENSION_VALUE = 50, 1000  # usagetap.record's caps, as the README documents them
MESSAGES = [{"role": "user", "content": "Count the tokens of this, please."}]


def test_a_huge_dimension_value_is_cut_before_it_reaches_the_record(
    client: openai.OpenAI, sink: Memory
) -> None:
    with usagetap.customer("org_7", note="x" * 5_000_000):
        for _ in range(3):
            client.chat.completions.create(model="gpt-4.1", messages=MESSAGES)
    records = delivered(sink)
    assert len(records) == 3
    assert all(r.dimensions["note"] == "x" * MAX_DIMENSION_VALUE for r in records)
    assert sum(len(json.dumps(r.dimensions)) for r in records) < 10_000
    assert _stats.snapshot()["dimensions_capped"] == 1, "cut once, when the scope captured it"


def test_nested_scopes_together_over_the_count_cap_keep_the_first_and_the_providers(
    client: openai.OpenAI, sink: Memory
) -> None:
    outer = {f"a{n}": n for n in range(MAX_DIMENSIONS)}
    inner = {f"b{n}": n for n in range(10)}
    with usagetap.customer("org_7", **outer), usagetap.customer(None, **inner):
        client.chat.completions.create(model="gpt-4.1", messages=MESSAGES)
    [record] = delivered(sink)
    user = {k: v for k, v in record.dimensions.items() if k[0] in "ab" and k[1:].isdigit()}
    assert user == outer
    assert _stats.snapshot()["dimensions_capped"] == 10


def test_invalid_records_are_kept_partial_and_logged_once_per_rule_not_once_per_bad_value(
    client: openai.OpenAI, sink: Memory, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from usagetap.providers.base import TokenUsage
    from usagetap.providers.openai import usage as extract

    caplog.set_level(logging.ERROR, logger="usagetap")
    bad = iter(range(5))

    def odd_dimension(_: Any) -> TokenUsage:
        return TokenUsage(model="gpt-4.1", input_tokens=5, dimensions={"tier": [next(bad)]})  # type: ignore[dict-item]

    monkeypatch.setattr(extract, "chat_usage", odd_dimension)
    for _ in range(5):
        client.chat.completions.create(model="gpt-4.1", messages=MESSAGES)
    usagetap.flush(timeout=5.0)
    lines = [r.getMessage() for r in caplog.records if "broke a rule" in r.getMessage()]
    assert len(lines) == 1 and "tier" in lines[0]
    records = delivered(sink)
    assert [r.status for r in records] == ["partial"] * 5
    assert all(r.dimensions["usage_issue"].startswith("invalid record: ") for r in records)
    assert (_stats.snapshot()["partial.invalid"], _stats.snapshot()["dropped.invalid"]) == (5, 0)
