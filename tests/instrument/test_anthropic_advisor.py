"""An advisor model's turn inside a Messages call (``usage.iterations``): its own record, on its model."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import anthropic
import pytest
from genai_prices import Usage, calc_price

import usagetap
from tests.instrument.conftest import delivered
from usagetap.sinks import Memory
from usagetap.testing import ProviderServer
from usagetap.testing._server import Reply

FIXTURES = Path(__file__).parent.parent / "fixtures" / "anthropic"
MESSAGES = [{"role": "user", "content": "what is 3 + 4? ask the advisor"}]
MODEL = "claude-sonnet-4-5"
ADVISOR = "claude-opus-4-1"


def _sse_events() -> list[tuple[str, dict[str, Any]]]:
    events = []
    for block in (FIXTURES / "stream_advisor.sse").read_text().split("\n\n"):
        lines = block.splitlines()
        if lines:
            events.append((lines[0][len("event: ") :], json.loads(lines[1][len("data: ") :])))
    return events


def _advised(server: ProviderServer, body: dict[str, Any], headers: dict[str, str]) -> Reply:
    if body.get("stream"):
        return Reply(events=_sse_events())  # type: ignore[arg-type]
    return Reply(body=json.loads((FIXTURES / "message_advisor.json").read_text()))


@pytest.fixture
def advised(claude_server: ProviderServer) -> anthropic.Anthropic:
    """A client of a server whose every message had two advisor turns."""
    claude_server.routes["POST /v1/messages"] = _advised
    client = anthropic.Anthropic(base_url=claude_server.anthropic_url, api_key="sk-ant-test", max_retries=0)
    return usagetap.wrap(client, customer="org_adv")


def _check(records: list[Any]) -> None:
    """The call's record first, then one per advisor turn, on the advisor's model, linked to the call."""
    call, first, second = records
    assert (call.model, call.input_tokens, call.output_tokens, call.reasoning_tokens) == (MODEL, 2230, 97, 12)
    assert [r.model for r in (first, second)] == [ADVISOR, ADVISOR]
    assert [(r.input_tokens, r.output_tokens) for r in (first, second)] == [(1964, 31), (2074, 9)]
    assert (first.cache_write_tokens, second.cache_read_tokens) == (64, 64)
    assert [r.response_id for r in (first, second)] == [f"{call.response_id}:advisor:{n}" for n in (1, 2)]
    assert [r.dimensions["parent_event_id"] for r in (first, second)] == [call.event_id] * 2
    assert len({r.event_id for r in records}) == 3
    assert all(
        (r.status, r.provider, r.request_model, r.customer) == ("ok", "anthropic", MODEL, "org_adv")
        for r in records
    )


def test_advisor_turns_of_a_message_are_records_of_their_own(
    advised: anthropic.Anthropic, sink: Memory
) -> None:

    advised.messages.create(model=MODEL, max_tokens=64, messages=MESSAGES)  # type: ignore[arg-type]
    _check(delivered(sink))


def test_an_advisor_turn_is_priced_at_the_advisor_model(advised: anthropic.Anthropic, sink: Memory) -> None:

    advised.messages.create(model=MODEL, max_tokens=64, messages=MESSAGES)  # type: ignore[arg-type]
    second = delivered(sink)[2]
    expected = calc_price(
        Usage(input_tokens=2074, cache_read_tokens=64, output_tokens=9), ADVISOR, provider_id="anthropic"
    ).total_price
    assert second.cost == Decimal(expected) and second.cost > 0


@pytest.mark.parametrize("how", ["create", "stream_helper", "raw_body"])
def test_advisor_turns_of_a_stream_are_records_of_their_own(
    how: str, advised: anthropic.Anthropic, sink: Memory
) -> None:

    if how == "create":
        assert [
            e.type
            for e in advised.messages.create(model=MODEL, max_tokens=64, messages=MESSAGES, stream=True)
        ]  # type: ignore[arg-type]
    elif how == "stream_helper":
        with advised.messages.stream(model=MODEL, max_tokens=64, messages=MESSAGES) as stream:  # type: ignore[arg-type]
            assert stream.get_final_message().usage.output_tokens == 97
    else:
        raw = advised.messages.with_raw_response.create(
            model=MODEL, max_tokens=64, messages=MESSAGES, stream=True
        )  # type: ignore[arg-type]
        assert b"advisor_message" in raw.http_response.read()
    _check(delivered(sink))


async def test_advisor_turns_of_an_async_stream_are_records_of_their_own(
    claude_server: ProviderServer, sink: Memory
) -> None:
    claude_server.routes["POST /v1/messages"] = _advised
    claude = usagetap.wrap(
        anthropic.AsyncAnthropic(base_url=claude_server.anthropic_url, api_key="sk-ant-test", max_retries=0),
        customer="org_adv",
    )
    async with claude.messages.stream(model=MODEL, max_tokens=64, messages=MESSAGES) as stream:  # type: ignore[arg-type]
        async for _ in stream:
            pass
    _check(delivered(sink))
