"""Message Batches: creating one is free; each succeeded result read through the SDK is one record."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import anthropic
import pytest

import usagetap
from tests.instrument.conftest import delivered
from usagetap._record import derive_event_id
from usagetap.providers.base import field_of
from usagetap.sinks import Memory
from usagetap.testing import ProviderServer

MODEL = "claude-haiku-4-5"


def batches(client: Any) -> Any:
    """``messages.batches``, or ``beta.messages.batches`` in anthropic versions that have only that."""
    return getattr(client.messages, "batches", None) or client.beta.messages.batches


def requests(n: int = 2) -> list[Any]:
    good = [
        {
            "custom_id": f"req-{i}",
            "params": {
                "model": MODEL,
                "max_tokens": 10 + i,
                "messages": [{"role": "user", "content": "x " * (i + 1)}],
            },
        }
        for i in range(n)
    ]
    bad = {"custom_id": "req-bad", "params": {"model": MODEL, "max_tokens": 10, "messages": []}}
    return [*good, bad]


def test_results_meter_each_succeeded_item_with_batch_dimension(
    claude: anthropic.Anthropic, claude_server: ProviderServer, sink: Memory
) -> None:
    with usagetap.customer("org_batch", feature="nightly"):
        batch = batches(claude).create(requests=requests())  # type: ignore[arg-type]
    assert batch.processing_status == "in_progress"
    assert delivered(sink) == [], "creating a batch is not billed"
    lines = list(batches(claude).results(batch.id))
    assert [line.result.type for line in lines] == ["succeeded", "succeeded", "errored"]
    records = delivered(sink)
    assert len(records) == 2
    for record, line in zip(records, lines, strict=False):
        key = f"{batch.id}:{line.custom_id}"
        assert record.response_id == key
        assert record.event_id == derive_event_id("anthropic", "messages", key)
        assert record.customer == "org_batch", "the scope the batch was created in"
        assert record.dimensions["feature"] == "nightly"
        assert record.dimensions["batch"] is True and record.dimensions["service_tier"] == "batch"
        assert (record.input_tokens, record.output_tokens) == (
            claude_server.issued[key].input_tokens,
            claude_server.issued[key].output_tokens,
        )
        assert record.cost is not None
    assert sum(r.output_tokens for r in records) == claude_server.totals()["output_tokens"]


def test_reading_results_again_is_deduplicated(claude: anthropic.Anthropic, sink: Memory) -> None:
    batch = batches(claude).create(requests=requests())  # type: ignore[arg-type]
    first = list(batches(claude).results(batch.id))
    second = list(batches(claude).results(batch.id))
    assert len(first) == len(second) == 3
    assert len(delivered(sink)) == 2


def test_results_read_partly_meter_what_was_read(claude: anthropic.Anthropic, sink: Memory) -> None:
    batch = batches(claude).create(requests=requests(3))  # type: ignore[arg-type]
    for _ in batches(claude).results(batch.id):
        break
    [record] = delivered(sink)
    assert record.response_id == f"{batch.id}:req-0"


def test_the_scope_in_effect_when_reading_wins(claude: anthropic.Anthropic, sink: Memory) -> None:
    with usagetap.customer("creator"):
        batch = batches(claude).create(requests=requests(1))  # type: ignore[arg-type]
    with usagetap.customer("reader"):
        list(batches(claude).results(batch.id))
    [record] = delivered(sink)
    assert record.customer == "reader"


def test_retrieve_list_and_count_tokens_are_not_billed(claude: anthropic.Anthropic, sink: Memory) -> None:
    batch = batches(claude).create(requests=requests(1))  # type: ignore[arg-type]
    assert batches(claude).retrieve(batch.id).processing_status == "ended"
    assert delivered(sink) == []


def test_beta_batches(claude: anthropic.Anthropic, claude_server: ProviderServer, sink: Memory) -> None:
    with usagetap.customer("org_beta_batch"):
        batch = claude.beta.messages.batches.create(requests=requests(1))  # type: ignore[arg-type]
        lines = list(claude.beta.messages.batches.results(batch.id))
    assert [line.result.type for line in lines] == ["succeeded", "errored"]
    [record] = delivered(sink)
    assert record.customer == "org_beta_batch" and record.dimensions["batch"] is True


async def test_async_batch_results(
    aclaude: anthropic.AsyncAnthropic, claude_server: ProviderServer, sink: Memory
) -> None:
    with usagetap.customer("org_async_batch"):
        batch = await batches(aclaude).create(requests=requests())  # type: ignore[arg-type]
    results = await batches(aclaude).results(batch.id)
    types = [line.result.type async for line in results]
    assert types == ["succeeded", "succeeded", "errored"]
    records = delivered(sink)
    assert [r.customer for r in records] == ["org_async_batch"] * 2
    assert {r.response_id for r in records} == {f"{batch.id}:req-0", f"{batch.id}:req-1"}


def test_results_read_raw_without_parse_are_metered_for_the_creator(
    claude: anthropic.Anthropic, claude_server: ProviderServer, sink: Memory
) -> None:
    with usagetap.customer("org_raw_batch"):
        created = batches(claude).with_raw_response.create(requests=requests())  # type: ignore[arg-type]
    batch_id = created.http_response.json()["id"]
    if not hasattr(batches(claude).with_raw_response, "results"):
        pytest.skip("batch results have no raw response in this anthropic version")
    body = batches(claude).with_raw_response.results(batch_id).http_response.read()
    assert body.count(b'"succeeded"') == 2
    records = delivered(sink)
    assert [r.response_id for r in records] == [f"{batch_id}:req-0", f"{batch_id}:req-1"]
    assert all(r.customer == "org_raw_batch" and r.dimensions["batch"] is True for r in records)
    assert sum(r.output_tokens for r in records) == claude_server.totals()["output_tokens"]


def test_code_execution_in_a_batch_result_is_counted_on_its_record(
    claude: anthropic.Anthropic, claude_server: ProviderServer, sink: Memory
) -> None:
    tool = {"type": "code_execution_20250825", "name": "code_execution"}
    request = {
        "custom_id": "req-code",
        "params": {
            "model": MODEL,
            "max_tokens": 12,
            "messages": [{"role": "user", "content": "run"}],
            "tools": [tool],
        },
    }
    batch = batches(claude).create(requests=[request])  # type: ignore[arg-type]
    [line] = list(batches(claude).results(batch.id))
    [record] = delivered(sink)
    issued = claude_server.issued[f"{batch.id}:req-code"].dimensions
    assert record.fees == {"code_execution": issued["code_execution_requests"]} == {"code_execution": 1}
    container = line.result.message.container  # a dict where the SDK predates the field
    assert record.dimensions["container_id"] == issued["container_id"] == field_of(container, "id")


def test_a_batch_request_offering_a_2026_02_09_web_tool_runs_code_for_free(
    claude: anthropic.Anthropic, sink: Memory
) -> None:
    code = {"type": "code_execution_20250825", "name": "code_execution"}
    fetch = {"type": "web_fetch_20260209", "name": "web_fetch"}
    params = {"model": MODEL, "max_tokens": 12, "messages": [{"role": "user", "content": "run"}]}
    batch = batches(claude).create(  # type: ignore[arg-type]
        requests=[
            {"custom_id": "with-fetch", "params": {**params, "tools": [code, fetch]}},
            {"custom_id": "code-only", "params": {**params, "tools": [code]}},
        ]
    )
    list(batches(claude).results(batch.id))
    free, paid = delivered(sink)
    assert free.dimensions["code_execution_free"] is True and free.cost_items["code_execution"] == "0"
    assert free.cost == Decimal(str(free.cost_items["tokens"]))
    assert "code_execution_free" not in paid.dimensions and paid.cost is None
