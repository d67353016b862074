"""usagetap.record(): meter a response obtained without a wrapped client."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import openai
import pytest
from genai_prices import Usage, calc_price

import usagetap
from tests.instrument.conftest import delivered, needs_responses
from usagetap._record import MAX_TOKENS
from usagetap.sinks import Memory
from usagetap.testing import ProviderServer

FIXTURE = Path(__file__).parent.parent / "fixtures" / "openai" / "chat_completion.json"


def test_record_meters_an_sdk_response_and_returns_its_event_id(server: ProviderServer, sink: Memory) -> None:
    bare = openai.OpenAI(base_url=server.openai_url, api_key="sk-test")
    completion = bare.chat.completions.create(model="gpt-4.1", messages=[{"role": "user", "content": "x"}])
    with usagetap.customer("scoped", feature="import"):
        event_id = usagetap.record(completion, customer="explicit", dimensions={"source": "batch-job"})
    [record] = delivered(sink)
    assert record.event_id == event_id
    assert record.customer == "explicit"
    assert record.dimensions == {"feature": "import", "source": "batch-job", "service_tier": "default"}
    assert (record.operation, record.provider, record.model) == ("chat", "openai", "gpt-4.1")
    assert record.input_tokens == server.issued[completion.id].input_tokens


def test_record_takes_an_int_customer_as_its_decimal_string(sink: Memory) -> None:
    usagetap.record(json.loads(FIXTURE.read_text()), provider="openai", customer=4711)
    assert [r.customer for r in delivered(sink)] == ["4711"]


def test_recording_the_same_response_twice_is_deduplicated(sink: Memory) -> None:
    data = json.loads(FIXTURE.read_text())
    first = usagetap.record(data, provider="openai", customer="org_1")
    second = usagetap.record(data, provider="openai", customer="org_1")
    assert first == second
    [record] = delivered(sink)
    assert (record.input_tokens, record.cache_read_tokens, record.output_tokens) == (1117, 1024, 46)


def test_record_refuses_what_it_cannot_meter(sink: Memory) -> None:
    with pytest.raises(TypeError, match=r"response of a provider SDK \(openai, anthropic[,)]"):
        usagetap.record(object())
    with pytest.raises(TypeError, match="cannot meter"):
        usagetap.record({"object": "list"}, provider="openai")


def test_record_keeps_a_response_with_a_negative_count_as_a_partial_record(sink: Memory) -> None:
    data = json.loads(FIXTURE.read_text())
    data["usage"]["completion_tokens"] = -3
    usagetap.record(data, provider="openai")
    [record] = delivered(sink)
    assert (record.status, record.output_tokens) == ("partial", 0)
    assert record.dimensions["usage_issue"].startswith("output_tokens -3 is not a count")


def test_record_keeps_usage_that_does_not_add_up_as_a_partial_record(sink: Memory) -> None:
    data = json.loads(FIXTURE.read_text())
    data["usage"]["prompt_tokens"] = 10  # fewer than the cached 1024
    usagetap.record(data, provider="openai")
    [record] = delivered(sink)
    assert (record.status, record.input_tokens, record.cache_read_tokens) == ("partial", 10, 10)
    assert record.dimensions["usage_issue"] == "cache_read_tokens 1024 over input_tokens 10, cut to 10"


@needs_responses
def test_record_meters_responses_embeddings_and_completions(server: ProviderServer, sink: Memory) -> None:
    bare = openai.OpenAI(base_url=server.openai_url, api_key="sk-test")
    response = bare.responses.create(model="o4-mini", input="recorded by hand")
    embedding = bare.embeddings.create(model="text-embedding-3-small", input="to embed")
    completion = bare.completions.create(model="gpt-3.5-turbo-instruct", prompt="complete this")
    ids = [usagetap.record(obj, customer="manual") for obj in (response, embedding, completion)]
    assert usagetap.record(response, customer="manual") == ids[0], "the same response, the same event id"
    records = delivered(sink)
    assert [r.event_id for r in records] == ids
    assert [r.operation for r in records] == ["responses", "embeddings", "completions"]
    assert [r.input_tokens for r in records] == [i.input_tokens for i in server.issued.values()]


@needs_responses
def test_record_refuses_a_background_response_that_has_not_finished(
    server: ProviderServer, sink: Memory
) -> None:
    bare = openai.OpenAI(base_url=server.openai_url, api_key="sk-test")
    queued = bare.responses.create(model="o3", input="later", background=True)
    with pytest.raises(TypeError, match="cannot meter"):
        usagetap.record(queued)
    assert delivered(sink) == []


# -- usage by hand: any provider, no wrapper ------------------------------------------------


def _genai_cost(model: str, provider_id: str, **tokens: int) -> Decimal:
    return Decimal(calc_price(Usage(**tokens), model, provider_id=provider_id).total_price)


def test_record_by_hand_meters_a_provider_usagetap_has_no_wrapper_for_priced_by_genai_prices(
    sink: Memory,
) -> None:
    event_id = usagetap.record(
        provider="cohere", model="command-r-plus", input_tokens=1200, output_tokens=250, customer="org_1"
    )
    [record] = delivered(sink)
    assert (record.event_id, record.provider, record.model, record.operation) == (
        event_id,
        "cohere",
        "command-r-plus",
        "chat",
    )
    assert (record.input_tokens, record.output_tokens, record.status) == (1200, 250, "ok")
    assert record.cost == _genai_cost("command-r-plus", "cohere", input_tokens=1200, output_tokens=250)


def test_record_by_hand_prices_cache_reads_and_writes_at_their_rates(sink: Memory) -> None:
    usagetap.record(
        provider="anthropic",
        model="claude-sonnet-4-5",
        input_tokens=5000,
        output_tokens=300,
        cache_read_tokens=3000,
        cache_write_tokens=1000,
        reasoning_tokens=120,
    )
    [record] = delivered(sink)
    parts = (record.cache_read_tokens, record.cache_write_tokens, record.reasoning_tokens)
    assert parts == (3000, 1000, 120)
    assert record.cost == _genai_cost(
        "claude-sonnet-4-5",
        "anthropic",
        input_tokens=5000,
        output_tokens=300,
        cache_read_tokens=3000,
        cache_write_tokens=1000,
    )


def test_record_by_hand_is_attributed_to_the_scope_with_keyword_dimensions(sink: Memory) -> None:
    with usagetap.customer("org_scoped", feature="search"):
        usagetap.record(
            provider="groq",
            model="llama-3.1-8b-instant",
            input_tokens=10,
            output_tokens=5,
            source="batch-job",
        )
    [record] = delivered(sink)
    assert record.customer == "org_scoped"
    assert record.dimensions == {"feature": "search", "source": "batch-job"}


def test_record_by_hand_counts_in_the_runs_totals(sink: Memory) -> None:
    with usagetap.track(customer="org_run") as run:
        usagetap.record(provider="x-ai", model="grok-3", input_tokens=100, output_tokens=40)
        usagetap.record(provider="deepseek", model="deepseek-chat", input_tokens=300, output_tokens=60)
    records = delivered(sink)
    assert (run.calls, run.input_tokens, run.output_tokens) == (2, 400, 100)
    assert run.cost == sum(r.cost for r in records if r.cost is not None) and len(records) == 2
    assert {r.run_id for r in records} == {run.id}


def test_record_by_hand_counts_toward_the_customers_limit(server: ProviderServer, sink: Memory) -> None:
    usagetap.limits.set("org_capped", max_tokens=1000, period="day")
    usagetap.record(
        provider="mistral",
        model="mistral-large-latest",
        input_tokens=900,
        output_tokens=200,
        customer="org_capped",
    )
    client = usagetap.wrap(openai.OpenAI(base_url=server.openai_url, api_key="sk-test", max_retries=0))
    with pytest.raises(usagetap.BudgetExceeded), usagetap.customer("org_capped"):
        client.chat.completions.create(model="gpt-4.1", messages=[{"role": "user", "content": "x"}])
    assert usagetap.limits.spent("org_capped", "day").tokens == 1100
    assert server.requests == []


def test_record_by_hand_with_a_response_id_is_deduplicated(sink: Memory) -> None:
    usage = {
        "provider": "fireworks",
        "model": "llama-v3p1-8b-instruct",
        "input_tokens": 8,
        "output_tokens": 3,
    }
    first = usagetap.record(**usage, response_id="fw-123")
    second = usagetap.record(**usage, response_id="fw-123")
    assert first == second
    assert len(delivered(sink)) == 1


def test_record_by_hand_at_a_self_hosted_server_has_no_price_unless_one_is_set(sink: Memory) -> None:
    usagetap.record(provider="vllm", model="gpt-4o-mini", input_tokens=1000, output_tokens=100)
    [unpriced] = delivered(sink)
    usagetap.prices.set("gpt-4o-mini", "vllm", input_per_mtok=1, output_per_mtok=4)
    try:
        usagetap.record(provider="vllm", model="gpt-4o-mini", input_tokens=1000, output_tokens=100)
        priced = delivered(sink)[-1]
    finally:
        usagetap.prices.clear()
    assert unpriced.cost is None
    assert priced.cost == Decimal("0.0014")


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ({"input_tokens": -1}, "input_tokens must be >= 0"),
        ({"output_tokens": 2.5}, "output_tokens must be an int"),
        ({"input_tokens": True}, "input_tokens must be an int"),
        ({"output_tokens": MAX_TOKENS + 1}, "output_tokens must be <="),
        ({"cache_read_tokens": 80, "cache_write_tokens": 30}, "exceed input_tokens"),
        ({"reasoning_tokens": 60}, "reasoning_tokens .60. exceed output_tokens"),
        ({"provider": ""}, "provider must be a non-empty string"),
        ({"model": 7}, "model must be a non-empty string"),
    ],
    ids=[
        "negative",
        "float",
        "bool",
        "over-max",
        "cache-over-input",
        "reasoning-over-output",
        "provider",
        "model",
    ],
)
def test_record_by_hand_refuses_invalid_usage_and_delivers_nothing(
    sink: Memory, bad: dict[str, Any], message: str
) -> None:
    usage: dict[str, Any] = {
        "provider": "groq",
        "model": "llama-3.1-8b-instant",
        "input_tokens": 100,
        "output_tokens": 50,
    }
    with pytest.raises(usagetap.InvalidRecord, match=message):
        usagetap.record(**{**usage, **bad})
    assert delivered(sink) == []


def test_record_by_hand_needs_provider_model_and_both_totals(sink: Memory) -> None:
    with pytest.raises(TypeError, match="by hand provider=, output_tokens="):
        usagetap.record(model="command-r", input_tokens=3)
    assert delivered(sink) == []


def test_record_takes_a_response_or_usage_by_hand_not_both(sink: Memory) -> None:
    with pytest.raises(TypeError, match="not both"):
        usagetap.record(json.loads(FIXTURE.read_text()), provider="openai", input_tokens=5)
    assert delivered(sink) == []
