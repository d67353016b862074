"""Provider names per base URL: a loopback server impersonates per SDK family; an unknown host is its name."""

from __future__ import annotations

import anthropic
import openai
from genai_prices import Usage, calc_price

import usagetap
from tests.instrument.conftest import delivered
from usagetap.sinks import Memory
from usagetap.testing import ProviderServer

MESSAGES = [{"role": "user", "content": "which provider am I?"}]


def _call_both(server: ProviderServer) -> None:
    oai = usagetap.wrap(openai.OpenAI(base_url=server.openai_url, api_key="sk-test", max_retries=0))
    claude = usagetap.wrap(
        anthropic.Anthropic(base_url=server.anthropic_url, api_key="sk-ant", max_retries=0)
    )
    oai.chat.completions.create(model="gpt-4.1-mini", messages=MESSAGES)  # type: ignore[arg-type]
    claude.messages.create(model="claude-haiku-4-5", max_tokens=12, messages=MESSAGES)  # type: ignore[arg-type]


def test_one_loopback_server_reports_each_sdk_family_as_its_own_provider(sink: Memory) -> None:
    with ProviderServer() as server:
        _call_both(server)
    chat, messages = delivered(sink)
    assert [(r.operation, r.provider) for r in (chat, messages)] == [
        ("chat", "openai"),
        ("messages", "anthropic"),
    ]
    assert chat.cost is not None and messages.cost is not None


def test_impersonating_one_family_leaves_the_other_family_at_its_host(sink: Memory) -> None:
    with ProviderServer(impersonate="anthropic") as server:
        _call_both(server)
    chat, messages = delivered(sink)
    assert (chat.provider, messages.provider) == ("127.0.0.1", "anthropic")


def test_an_anthropic_client_at_an_unknown_host_is_named_by_it_and_priced_as_anthropic(sink: Memory) -> None:
    with ProviderServer(impersonate=None) as server:
        claude = usagetap.wrap(anthropic.Anthropic(base_url=server.url, api_key="sk-ant", max_retries=0))
        claude.messages.create(model="claude-haiku-4-5", max_tokens=12, messages=MESSAGES)  # type: ignore[arg-type]
    [record] = delivered(sink)
    assert record.provider == "127.0.0.1"
    usage = Usage(input_tokens=record.input_tokens, output_tokens=record.output_tokens)
    assert record.cost == calc_price(usage, "claude-haiku-4-5", provider_id="anthropic").total_price
