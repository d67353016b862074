"""A mixed workload through the real OpenAI SDK, and what the provider issued per customer."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any, Optional

import openai

import usagetap
from usagetap.testing import ProviderServer

TOKEN_KEYS = ("input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens", "reasoning_tokens")
MODELS = ("gpt-4.1", "gpt-4.1-mini", "o4-mini")
LONG_PROMPT = "please meter every token of this rather long prompt " * 12


def run_workload(
    server: ProviderServer,
    customers: Sequence[str],
    *,
    rounds: int = 3,
    dimensions: Optional[dict[str, Any]] = None,
) -> dict[str, Counter[str]]:
    """Calls for each customer (plain, streamed, repeated prompts that hit the cache, a reasoning model).

    Returns what the provider issued per customer, in usagetap's convention.
    """
    client = usagetap.wrap(openai.OpenAI(base_url=server.openai_url, api_key="sk-test", max_retries=0))
    issued: dict[str, Counter[str]] = {}
    for n in range(rounds):
        for index, customer in enumerate(customers):
            model = MODELS[(n + index) % len(MODELS)]
            messages = [{"role": "user", "content": f"{LONG_PROMPT} {customer}"}]
            with usagetap.customer(customer, round=n, **(dimensions or {})):
                if (n + index) % 2:
                    stream = client.chat.completions.create(
                        model=model,
                        messages=messages,
                        max_tokens=8 + n,
                        stream=True,
                        stream_options={"include_usage": True},
                    )
                    response_id = [chunk.id for chunk in stream][-1]
                else:
                    response_id = client.chat.completions.create(
                        model=model, messages=messages, max_tokens=10 + index
                    ).id
            usage = server.issued[response_id]
            row = issued.setdefault(customer, Counter())
            row["calls"] += 1
            for key in TOKEN_KEYS:
                row[key] += getattr(usage, key)
    return issued
