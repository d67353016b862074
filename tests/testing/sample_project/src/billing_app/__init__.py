"""A tiny app that bills its customers for the summaries it asks a model for."""

from __future__ import annotations

import contextlib
from typing import Any, Optional

import usagetap


def summarize(client: Any, text: str, *, customer: Optional[str]) -> str:
    """One OpenAI chat call, metered for ``customer`` (None: the bug the marker catches)."""
    with usagetap.customer(customer) if customer else contextlib.nullcontext():
        reply = client.chat.completions.create(
            model="gpt-4.1-mini", messages=[{"role": "user", "content": f"Summarize: {text}"}]
        )
    return str(reply.choices[0].message.content)


def translate(client: Any, text: str, *, customer: str) -> str:
    """One Anthropic messages call, metered for ``customer``."""
    with usagetap.customer(customer):
        reply = client.messages.create(
            model="claude-haiku-4-5", max_tokens=12, messages=[{"role": "user", "content": text}]
        )
    return str(reply.content[0].text)
