"""``usagetap demo``: a small multi-customer workload through the real OpenAI SDK, offline."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Optional

from . import _stats
from ._runtime import configure, shutdown
from .context import customer
from .instrument import wrap
from .sinks.ledger import Ledger, default_path
from .testing import ProviderServer

if TYPE_CHECKING:
    from openai.types.chat import ChatCompletionMessageParam

__all__ = ["run_demo"]

_SUPPORT_PROMPT: list[ChatCompletionMessageParam] = [
    {"role": "system", "content": "You are a support assistant for a project management tool. " * 12},
    {"role": "user", "content": "How do I archive a board?"},
]


def _ask(text: str) -> list[ChatCompletionMessageParam]:
    return [{"role": "user", "content": text}]


def run_demo(db: Optional[str] = None) -> str:
    """Run the workload, write the ledger at ``db`` (default: ``$USAGETAP_DB`` or ``./.usagetap/ledger.db``).

    Returns the ledger path. Raises ImportError when the ``openai`` SDK is missing.
    """
    from openai import AsyncOpenAI, OpenAI

    path = db or default_path()
    captured = _stats.snapshot().get("captured", 0)
    configure(sink=Ledger(path), flush_interval=0.2)
    with ProviderServer() as server:
        client = wrap(OpenAI(base_url=server.openai_url, api_key="demo-key", max_retries=0))
        aclient = wrap(AsyncOpenAI(base_url=server.openai_url, api_key="demo-key", max_retries=0))

        with customer("acme", feature="support-chat"):
            for _ in range(3):  # the same long system prompt: later calls read it from the cache
                client.chat.completions.create(model="gpt-4.1", messages=_SUPPORT_PROMPT, max_tokens=120)

        with customer("globex", feature="summarize"):
            for text in ("Summarize the Q3 roadmap in three bullets", "Summarize the incident report"):
                stream = client.chat.completions.create(
                    model="gpt-4.1-mini", messages=_ask(text), max_tokens=60, stream=True
                )
                for _ in stream:
                    pass

        async def research() -> None:
            with customer("initech", feature="research"):
                await aclient.chat.completions.create(
                    model="o4-mini", messages=_ask("Plan a migration from MySQL to Postgres"), max_tokens=400
                )
                stream = await aclient.chat.completions.create(
                    model="gpt-4.1-nano", messages=_ask("List three risks"), max_tokens=40, stream=True
                )
                async for _ in stream:
                    pass
            await aclient.close()

        asyncio.run(research())
        client.close()
    result = shutdown(timeout=10.0)
    metered = _stats.snapshot().get("captured", 0) - captured
    print(
        f"usagetap demo: {metered} calls metered through the real OpenAI SDK, "
        f"{result.pending} left undelivered -> {path}"
    )
    return path
