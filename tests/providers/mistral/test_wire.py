"""The loopback server speaks Mistral under its own prefix, beside OpenAI at the same API paths."""

from __future__ import annotations

from typing import Any

import httpx
import openai

import usagetap
from tests.instrument.conftest import delivered
from usagetap.sinks import Memory
from usagetap.testing import ProviderServer

from .conftest import MESSAGES


def test_mistral_and_openai_clients_of_one_server_each_get_their_own_api(
    server: ProviderServer, mistral: Any, sink: Memory
) -> None:
    gpt = usagetap.wrap(openai.OpenAI(base_url=server.openai_url, api_key="sk-test", max_retries=0))
    chat = gpt.chat.completions.create(model="gpt-4.1", messages=MESSAGES)  # type: ignore[arg-type]
    response = mistral.chat.complete(model="mistral-small-latest", messages=MESSAGES)
    assert chat.object == "chat.completion" and chat.id.startswith("chatcmpl-")
    assert not response.id.startswith("chatcmpl-")
    assert [(r.provider, r.model) for r in delivered(sink)] == [
        ("openai", "gpt-4.1"),
        ("mistral", "mistral-small-latest"),
    ]


def test_the_mistral_server_url_is_the_prefix_of_mistrals_paths(server: ProviderServer) -> None:
    assert server.mistral_url == f"{server.url}/mistral"
    reply = httpx.post(
        f"{server.mistral_url}/v1/chat/completions",
        json={"model": "mistral-tiny", "messages": MESSAGES, "stream": True, "max_tokens": 1},
        headers={"authorization": "Bearer test"},
    )
    frames = [line for line in reply.text.splitlines() if line.startswith("data: ")]
    assert reply.headers["content-type"] == "text/event-stream"
    assert '"usage"' in frames[-2] and frames[-1] == "data: [DONE]"


def test_a_request_without_model_is_refused_like_mistral_does(server: ProviderServer) -> None:
    reply = httpx.post(
        f"{server.mistral_url}/v1/chat/completions",
        json={"messages": MESSAGES},
        headers={"authorization": "Bearer t"},
    )
    assert reply.status_code == 422 and reply.json()["object"] == "error"
