"""Each provider's request reaches the budget check: its output cap is what is reserved.

The limit (3000 tokens) is below the default reservation for an uncapped request (4096 output
tokens), so a call capped at 100 goes through only if its cap was read, and one capped at 5000
is refused before the provider is called.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import usagetap
from usagetap import limits
from usagetap.sinks import Memory
from usagetap.testing import ProviderServer

MESSAGES = [{"role": "user", "content": "a question about budgets"}]


def openai_call(server: ProviderServer) -> Callable[[int], Any]:
    import openai

    client = usagetap.wrap(openai.OpenAI(base_url=server.openai_url, api_key="sk-test", max_retries=0))
    return lambda cap: client.chat.completions.create(model="gpt-4.1", messages=MESSAGES, max_tokens=cap)


def responses_call(server: ProviderServer) -> Callable[[int], Any]:
    import openai

    client = usagetap.wrap(openai.OpenAI(base_url=server.openai_url, api_key="sk-test", max_retries=0))
    return lambda cap: client.responses.create(model="gpt-4.1", input="hello", max_output_tokens=cap)


def anthropic_call(server: ProviderServer) -> Callable[[int], Any]:
    anthropic = pytest.importorskip("anthropic")
    client = usagetap.wrap(
        anthropic.Anthropic(base_url=server.anthropic_url, api_key="sk-test", max_retries=0)
    )
    return lambda cap: client.messages.create(model="claude-sonnet-4-5", messages=MESSAGES, max_tokens=cap)


def gemini_call(server: ProviderServer) -> Callable[[int], Any]:
    genai = pytest.importorskip("google.genai")
    from google.genai import types

    client = usagetap.wrap(
        genai.Client(api_key="gemini-test-key", http_options=types.HttpOptions(base_url=server.url))
    )
    return lambda cap: client.models.generate_content(
        model="gemini-2.0-flash",
        contents="a question about budgets",
        config=types.GenerateContentConfig(max_output_tokens=cap),
    )


def bedrock_call(server: ProviderServer) -> Callable[[int], Any]:
    boto3 = pytest.importorskip("boto3")
    from botocore.config import Config

    client = usagetap.wrap(
        boto3.client(
            "bedrock-runtime",
            endpoint_url=server.url,
            region_name="eu-west-1",
            aws_access_key_id="AKIDLOOPBACK",
            aws_secret_access_key="loopback-secret",
            config=Config(retries={"max_attempts": 1, "mode": "standard"}),
        )
    )
    return lambda cap: client.converse(
        modelId="anthropic.claude-3-haiku-20240307-v1:0",
        messages=[{"role": "user", "content": [{"text": "a question about budgets"}]}],
        inferenceConfig={"maxTokens": cap},
    )


def mistral_call(server: ProviderServer) -> Callable[[int], Any]:
    pytest.importorskip("mistralai")
    try:
        from mistralai.client import Mistral
    except ImportError:
        from mistralai import Mistral
    client = usagetap.wrap(Mistral(api_key="test-key", server_url=server.mistral_url))
    return lambda cap: client.chat.complete(model="mistral-small-latest", messages=MESSAGES, max_tokens=cap)


@pytest.mark.parametrize(
    "make",
    [openai_call, responses_call, anthropic_call, gemini_call, bedrock_call, mistral_call],
    ids=lambda make: make.__name__.removesuffix("_call"),
)
def test_the_request_output_cap_is_what_the_call_reserves(
    make: Callable[[ProviderServer], Callable[[int], Any]],
    server: ProviderServer,
    sink: Memory,
    tmp_path: Path,
) -> None:
    limits.use_store(tmp_path / "budgets.db")
    limits.set("org_r", max_tokens=3000, period="day")
    call = make(server)
    with usagetap.customer("org_r"):
        call(100)
        sent = len(server.requests)
        with pytest.raises(usagetap.BudgetExceeded):
            call(5000)
    assert sent >= 1 and len(server.requests) == sent
    assert limits.spent("org_r", "day").calls == 1
