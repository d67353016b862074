"""Non-token fees: counted on the record as named quantities and priced as line items of ``cost``.

Expected costs are worked out by hand from the documented prices: web search $10 per 1,000
searches (OpenAI, Anthropic), file search $2.50 per 1,000 calls (OpenAI), web fetch free
beyond its tokens (Anthropic), grounding with Google Search $35 per 1,000 grounded prompts
(Gemini 2.5) or $14 per 1,000 search queries (Gemini 3).
"""

from __future__ import annotations

from datetime import datetime, timezone
from decimal import Decimal
from typing import Any, Optional

import anthropic
import openai
import pytest

import usagetap
from usagetap._cost import price_record, price_version
from usagetap._record import UsageRecord
from usagetap.providers.google.usage import content_usage
from usagetap.sinks import Memory
from usagetap.testing import ProviderServer

M = Decimal(1_000_000)


def priced(model: str, provider: str, dimensions: dict[str, Any], **tokens: int) -> UsageRecord:
    record = UsageRecord(
        event_id=f"ev-{model}-{dimensions}",
        timestamp=datetime.now(timezone.utc),
        customer="org_1",
        provider=provider,
        model=model,
        request_model=model,
        operation="chat",
        dimensions=dimensions,
        **tokens,
    )
    return price_record(record)


def delivered(sink: Memory) -> list[UsageRecord]:
    assert usagetap.flush(timeout=5.0).pending == 0
    return list(sink.records)


def test_anthropic_web_searches_are_a_line_item_of_cost() -> None:
    # Claude Opus 4.1: $15 in / $75 out; 3 searches at $10 per 1,000
    r = priced(
        "claude-opus-4-1", "anthropic", {"web_search_requests": 3}, input_tokens=5_000, output_tokens=700
    )
    tokens = (5_000 * Decimal(15) + 700 * Decimal(75)) / M
    assert r.fees == {"web_search": 3}
    assert r.cost == tokens + 3 * Decimal("0.01")
    assert r.cost_items == {"tokens": str(tokens), "web_search": "0.03"}
    assert r.price_source == price_version()


def test_anthropic_web_fetches_are_counted_and_cost_nothing_beyond_their_tokens() -> None:
    r = priced(
        "claude-opus-4-1", "anthropic", {"web_fetch_requests": 2}, input_tokens=5_000, output_tokens=700
    )
    tokens = (5_000 * Decimal(15) + 700 * Decimal(75)) / M
    assert r.fees == {"web_fetch": 2} and r.cost == tokens
    assert r.cost_items == {"tokens": str(tokens), "web_fetch": "0"}
    assert r.price_source == f"{price_version()} + overlay:anthropic-web-fetch-free"


def test_openai_file_search_calls_are_priced_per_call() -> None:
    # gpt-4.1: $2 in / $8 out; 2 file search calls at $2.50 per 1,000
    r = priced("gpt-4.1", "openai", {"file_search_calls": 2}, input_tokens=1_000, output_tokens=100)
    tokens = (1_000 * Decimal(2) + 100 * Decimal(8)) / M
    assert r.cost == tokens + 2 * Decimal("0.0025") and r.cost_items["file_search"] == "0.0050"


def test_openai_web_search_on_a_model_genai_prices_has_no_search_price_for_takes_the_overlay() -> None:
    # gpt-4.1-nano: $0.10 in / $0.40 out; web search $10 per 1,000 calls for every model
    r = priced("gpt-4.1-nano", "openai", {"web_search_calls": 1}, input_tokens=1_000, output_tokens=100)
    tokens = (1_000 * Decimal("0.1") + 100 * Decimal("0.4")) / M
    assert r.cost == tokens + Decimal("0.01")
    assert r.price_source == f"{price_version()} + overlay:openai-web-search-10-per-1k"


def test_a_fee_without_a_price_leaves_cost_none_and_keeps_the_token_line_item() -> None:
    r = priced("gpt-4.1", "openai", {"code_interpreter_calls": 1}, input_tokens=1_000, output_tokens=100)
    tokens = (1_000 * Decimal(2) + 100 * Decimal(8)) / M
    assert r.fees == {"code_execution": 1}
    assert r.cost is None and r.cost_items == {"tokens": str(tokens)}
    assert r.price_issue == "no price for the code_execution fee of 'gpt-4.1' at 'openai'"


def test_a_responses_web_search_call_through_the_sdk_is_billed_as_a_fee(
    server: ProviderServer, sink: Memory
) -> None:
    bare = openai.OpenAI(base_url=server.openai_url, api_key="sk-test", max_retries=0)
    client = usagetap.wrap(bare, customer="org_1")
    client.responses.create(model="gpt-4.1", input="What happened today?", tools=[{"type": "web_search"}])
    [r] = delivered(sink)
    tokens = ((r.input_tokens - r.cache_read_tokens) * Decimal(2) + r.cache_read_tokens * Decimal("0.5")
              + r.output_tokens * Decimal(8)) / M  # fmt: skip
    assert r.fees == {"web_search": 1}
    assert r.cost == tokens + Decimal("0.01")
    assert Decimal(str(r.cost_items["tokens"])) == tokens and r.cost_items["web_search"] == "0.01"


def test_anthropic_server_tools_through_the_sdk_are_billed_as_fees(
    server: ProviderServer, sink: Memory
) -> None:
    bare = anthropic.Anthropic(base_url=server.anthropic_url, api_key="sk-ant-x", max_retries=0)
    client = usagetap.wrap(bare, customer="org_1")
    client.messages.create(
        model="claude-sonnet-4-6",
        max_tokens=40,
        messages=[{"role": "user", "content": "Look it up"}],
        tools=[  # type: ignore[list-item]
            {"type": "web_search_20250305", "name": "web_search", "max_uses": 3},
            {"type": "web_fetch_20250910", "name": "web_fetch", "max_uses": 1},
        ],
    )
    [r] = delivered(sink)
    assert r.fees == {"web_search": 1, "web_fetch": 1}
    assert r.cost_items["web_search"] == "0.01" and r.cost_items["web_fetch"] == "0"
    assert r.cost == Decimal(r.cost_items["tokens"]) + Decimal("0.01")  # type: ignore[arg-type]


def _grounded(model: str, queries: list[str], usage: Optional[dict[str, int]] = None) -> dict[str, Any]:
    return {
        "modelVersion": model,
        "responseId": "resp-grounded",
        "candidates": [
            {
                "index": 0,
                "content": {"role": "model", "parts": [{"text": "It is sunny."}]},
                "finishReason": "STOP",
                "groundingMetadata": {"webSearchQueries": queries, "groundingChunks": []},
            }
        ],
        "usageMetadata": usage
        or {
            "promptTokenCount": 40,
            "candidatesTokenCount": 60,
            "toolUsePromptTokenCount": 100,
            "totalTokenCount": 200,
        },
    }


def test_gemini_2_5_grounding_is_one_grounded_prompt_whatever_its_queries() -> None:
    usage = content_usage(_grounded("gemini-2.5-flash", ["weather lisbon", "lisbon forecast"]))
    assert usage.dimensions["grounding_searches"] == 1
    # Gemini 2.5 Flash: $0.30 in / $2.50 out; $35 per 1,000 grounded prompts
    r = priced("gemini-2.5-flash", "google", usage.dimensions, input_tokens=140, output_tokens=60)
    assert r.fees == {"web_search": 1}
    assert r.cost == (140 * Decimal("0.3") + 60 * Decimal("2.5")) / M + Decimal("0.035")


def test_gemini_3_grounding_is_billed_per_search_query() -> None:
    usage = content_usage(_grounded("gemini-3-flash-preview", ["weather lisbon", "lisbon forecast"]))
    assert usage.dimensions["grounding_searches"] == 2
    # Gemini 3 Flash: $0.50 in / $3 out; $14 per 1,000 search queries
    r = priced("gemini-3-flash-preview", "google", usage.dimensions, input_tokens=140, output_tokens=60)
    assert r.cost == (140 * Decimal("0.5") + 60 * Decimal(3)) / M + 2 * Decimal("0.014")


# -- Anthropic code execution: counted per call, billed per container-hour -----------------------

CODE_EXECUTION = {"type": "code_execution_20250825", "name": "code_execution"}


def _claude(server: ProviderServer) -> anthropic.Anthropic:
    bare = anthropic.Anthropic(base_url=server.anthropic_url, api_key="sk-ant-x", max_retries=0)
    return usagetap.wrap(bare, customer="org_1")


def _run_code(client: anthropic.Anthropic, *tools: dict[str, Any]) -> Any:
    return client.messages.create(
        model="claude-sonnet-4-6",
        max_tokens=40,
        messages=[{"role": "user", "content": "Compute 6 x 7"}],
        tools=[CODE_EXECUTION, *tools],  # type: ignore[list-item]
    )


def _sonnet_4_6_tokens(r: UsageRecord) -> Decimal:
    # Claude Sonnet 4.6: $3 in / $15 out (the loopback server writes no cache without cache_control)
    assert r.cache_read_tokens == r.cache_write_tokens == 0
    return (r.input_tokens * Decimal(3) + r.output_tokens * Decimal(15)) / M


def test_anthropic_code_execution_is_counted_with_its_container_and_unpriced_per_call(
    server: ProviderServer, sink: Memory
) -> None:
    message = _run_code(_claude(server))
    [r] = delivered(sink)
    issued = server.issued[message.id].dimensions
    assert r.fees == {"code_execution": issued["code_execution_requests"]} == {"code_execution": 1}
    assert r.dimensions["container_id"] == issued["container_id"] == message.container.id
    assert r.cost is None and r.cost_items == {"tokens": str(_sonnet_4_6_tokens(r))}
    assert r.price_issue is not None and "Anthropic bills code execution per container-hour" in r.price_issue
    assert "usagetap.prices.set_fee('code_execution', 'anthropic', unit_price=...)" in r.price_issue


def test_anthropic_streamed_code_execution_is_counted_like_the_server_issued_it(
    server: ProviderServer, sink: Memory
) -> None:
    client = _claude(server)
    with client.messages.stream(
        model="claude-sonnet-4-6",
        max_tokens=40,
        messages=[{"role": "user", "content": "Compute 6 x 7"}],
        tools=[CODE_EXECUTION],  # type: ignore[list-item]
    ) as stream:
        final = stream.get_final_message()
    [r] = delivered(sink)
    issued = server.issued[final.id].dimensions
    assert r.dimensions["code_execution_requests"] == issued["code_execution_requests"] == 1
    assert r.dimensions["container_id"] == issued["container_id"] == final.container.id  # type: ignore[union-attr]
    assert r.cost is None and r.price_issue is not None and "container-hour" in r.price_issue


def test_anthropic_code_execution_with_a_web_fetch_tool_of_2026_02_09_costs_only_its_tokens(
    server: ProviderServer, sink: Memory
) -> None:
    _run_code(_claude(server), {"type": "web_fetch_20260209", "name": "web_fetch"})
    [r] = delivered(sink)
    tokens = _sonnet_4_6_tokens(r)
    assert r.fees == {"web_fetch": 1, "code_execution": 1} and r.dimensions["code_execution_free"] is True
    assert r.cost == tokens and r.cost_items == {
        "tokens": str(tokens),
        "web_fetch": "0",
        "code_execution": "0",
    }
    assert r.price_source is not None
    assert "overlay:anthropic-code-execution-free-with-web-tools-20260209" in r.price_source.split(" + ")


def test_anthropic_streamed_code_execution_with_web_search_2026_02_09_pays_only_the_search(
    server: ProviderServer, sink: Memory
) -> None:
    stream = _claude(server).messages.create(
        model="claude-sonnet-4-6",
        max_tokens=40,
        messages=[{"role": "user", "content": "Compute 6 x 7"}],
        tools=[CODE_EXECUTION, {"type": "web_search_20260209", "name": "web_search"}],  # type: ignore[list-item]
        stream=True,
    )
    for _ in stream:
        pass
    [r] = delivered(sink)
    assert r.fees == {"web_search": 1, "code_execution": 1}
    assert r.cost == _sonnet_4_6_tokens(r) + Decimal("0.01") and r.cost_items["code_execution"] == "0"


def test_anthropic_code_execution_with_an_older_web_search_tool_is_not_free(
    server: ProviderServer, sink: Memory
) -> None:
    _run_code(_claude(server), {"type": "web_search_20250305", "name": "web_search"})
    [r] = delivered(sink)
    assert r.fees == {"web_search": 1, "code_execution": 1} and "code_execution_free" not in r.dimensions
    assert r.cost is None and r.price_issue is not None and "container-hour" in r.price_issue


def test_a_fee_price_set_by_the_user_prices_each_code_execution_call(
    server: ProviderServer, sink: Memory
) -> None:
    usagetap.prices.set_fee("code_execution", "anthropic", unit_price="0.004")
    _run_code(_claude(server))
    [r] = delivered(sink)
    tokens = _sonnet_4_6_tokens(r)
    assert r.cost == tokens + 1 * Decimal("0.004")
    assert r.cost_items == {"tokens": str(tokens), "code_execution": "0.004"}
    assert r.price_source == f"{price_version()} + prices.set_fee" and r.price_issue is None


def test_a_fee_price_set_by_the_user_wins_over_genai_prices_and_the_overlay() -> None:
    usagetap.prices.set_fee("web_search", unit_price="0.02")
    usagetap.prices.set_fee("web_fetch", "anthropic", unit_price="0.001")
    r = priced(
        "claude-opus-4-1", "anthropic", {"web_search_requests": 2, "web_fetch_requests": 3},
        input_tokens=5_000, output_tokens=700,
    )  # fmt: skip
    tokens = (5_000 * Decimal(15) + 700 * Decimal(75)) / M
    assert r.cost == tokens + 2 * Decimal("0.02") + 3 * Decimal("0.001")
    assert r.price_source == f"{price_version()} + prices.set_fee"


def test_a_fee_price_for_one_provider_leaves_the_others_to_the_tables() -> None:
    usagetap.prices.set_fee("web_search", "openai", unit_price="0.5")
    r = priced(
        "claude-opus-4-1", "anthropic", {"web_search_requests": 1}, input_tokens=5_000, output_tokens=700
    )
    assert r.cost_items["web_search"] == "0.01" and r.price_source == price_version()


def test_an_unset_fee_price_gives_the_fee_back_to_the_tables() -> None:
    usagetap.prices.set_fee("web_search", "anthropic", unit_price="0.5")
    usagetap.prices.unset_fee("web_search", "anthropic")
    r = priced(
        "claude-opus-4-1", "anthropic", {"web_search_requests": 1}, input_tokens=5_000, output_tokens=700
    )
    assert r.cost_items["web_search"] == "0.01"


def test_a_fee_price_beside_a_user_token_price_names_both() -> None:
    usagetap.prices.set("house-claude", "anthropic", input_per_mtok=1, output_per_mtok=2)
    usagetap.prices.set_fee("code_execution", unit_price="0.003")
    r = priced(
        "house-claude", "anthropic", {"code_execution_requests": 2}, input_tokens=1_000, output_tokens=500
    )
    assert r.cost == (1_000 * Decimal(1) + 500 * Decimal(2)) / M + 2 * Decimal("0.003")
    assert r.price_source == "prices.set + prices.set_fee"


@pytest.mark.parametrize(
    ("fee", "provider", "unit_price", "error"),
    [
        ("code_interpreter", None, 1, ValueError),
        (7, None, 1, TypeError),
        ("web_search", "", 1, TypeError),
        ("web_search", None, -1, ValueError),
        ("web_search", None, "cheap", TypeError),
        ("web_search", None, True, TypeError),
    ],
)
def test_fee_prices_are_validated(fee: Any, provider: Any, unit_price: Any, error: type[Exception]) -> None:
    with pytest.raises(error):
        usagetap.prices.set_fee(fee, provider, unit_price=unit_price)
