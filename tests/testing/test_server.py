"""``ProviderServer``: every SDK family on its own paths of one server, each under its own identity."""

from __future__ import annotations

import anthropic
import openai
import pytest

import usagetap
from usagetap.sinks import Memory
from usagetap.testing import ProviderServer

CHAT = [{"role": "user", "content": "which family am I"}]


def test_each_familys_base_url_by_name_serves_it_under_its_own_identity(
    server: ProviderServer, sink: Memory
) -> None:
    oai = usagetap.wrap(openai.OpenAI(base_url=server.base_url("openai"), api_key="test", max_retries=0))
    claude = usagetap.wrap(
        anthropic.Anthropic(base_url=server.base_url("anthropic"), api_key="test", max_retries=0)
    )
    oai.chat.completions.create(model="gpt-4.1", messages=CHAT)  # type: ignore[arg-type]
    claude.messages.create(model="claude-haiku-4-5", max_tokens=5, messages=CHAT)  # type: ignore[arg-type]
    usagetap.flush()
    assert sorted((r.provider, r.operation) for r in sink.records) == [
        ("anthropic", "messages"),
        ("openai", "chat"),
    ]
    assert {r["path"] for r in server.requests} == {"/v1/chat/completions", "/v1/messages"}


def test_base_url_refuses_a_family_it_does_not_serve(server: ProviderServer) -> None:
    with pytest.raises(ValueError, match="'cohere'"):
        server.base_url("cohere")


def test_an_anthropic_client_given_the_openai_url_is_told_which_url_to_take(server: ProviderServer) -> None:
    client = anthropic.Anthropic(base_url=server.openai_url, api_key="test", max_retries=0)
    with pytest.raises(anthropic.NotFoundError, match=r"ProviderServer\.anthropic_url"):
        client.messages.create(model="claude-haiku-4-5", max_tokens=5, messages=CHAT)  # type: ignore[arg-type]


def test_an_openai_client_given_the_root_url_is_told_which_url_to_take(server: ProviderServer) -> None:
    client = openai.OpenAI(base_url=server.url, api_key="test", max_retries=0)
    with pytest.raises(openai.NotFoundError, match=r"ProviderServer\.openai_url"):
        client.chat.completions.create(model="gpt-4.1", messages=CHAT)  # type: ignore[arg-type]
