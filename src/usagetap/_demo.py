"""``usagetap demo``: a small multi-customer workload through the real OpenAI and Anthropic SDKs, offline."""

from __future__ import annotations

import asyncio
import importlib.util
import sqlite3
from typing import TYPE_CHECKING, Any, Optional

from . import _stats
from ._context import customer
from ._runtime import configure, shutdown
from .instrument import wrap
from .sinks.ledger import Ledger, default_path
from .testing import ProviderServer

if TYPE_CHECKING:
    from openai.types.chat import ChatCompletionMessageParam

__all__ = ["run_anthropic_workload", "run_demo"]

_SUPPORT_PROMPT: list[ChatCompletionMessageParam] = [
    {"role": "system", "content": "You are a support assistant for a project management tool. " * 12},
    {"role": "user", "content": "How do I archive a board?"},
]


def _ask(text: str) -> list[ChatCompletionMessageParam]:
    return [{"role": "user", "content": text}]


_CONTRACT_SYSTEM: list[Any] = [
    {
        "type": "text",
        "text": "You review supplier contracts for a logistics company. " * 20,
        "cache_control": {"type": "ephemeral"},
    }
]


def _claude_ask(text: str) -> list[Any]:
    return [{"role": "user", "content": text}]


def run_anthropic_workload(base_url: str) -> None:
    """Two customers' calls through the real Anthropic SDK against a loopback server at ``base_url``.

    ``umbrella`` reviews contracts with a cached system prompt (one cache write,
    then reads) and a streamed answer; ``hooli`` triages tickets from async code
    and tags a Message Batch (9 billable calls in all).
    """
    from anthropic import Anthropic, AsyncAnthropic

    claude = wrap(Anthropic(base_url=base_url, api_key="demo-key", max_retries=0))
    with customer("umbrella", feature="contract-review"):
        for clause in ("termination", "liability", "renewal"):
            claude.messages.create(
                model="claude-sonnet-4-6",
                max_tokens=200,
                system=_CONTRACT_SYSTEM,
                messages=_claude_ask(f"Summarize the {clause} clause"),
            )
        with claude.messages.stream(
            model="claude-sonnet-4-6", max_tokens=120, messages=_claude_ask("Draft a reply to the supplier")
        ) as stream:
            stream.until_done()

    with customer("hooli", feature="bulk-tagging"):
        batch = claude.messages.batches.create(
            requests=[
                {
                    "custom_id": f"ticket-{n}",
                    "params": {
                        "model": "claude-haiku-4-5",
                        "max_tokens": 16,
                        "messages": _claude_ask(f"Tag support ticket {n}"),
                    },
                }
                for n in range(3)
            ]
        )
    for _ in claude.messages.batches.results(batch.id):  # read later, billed to the batch's customer
        pass

    async def triage() -> None:
        aclaude = wrap(AsyncAnthropic(base_url=base_url, api_key="demo-key", max_retries=0))
        with customer("hooli", feature="triage"):
            await aclaude.messages.create(
                model="claude-haiku-4-5", max_tokens=64, messages=_claude_ask("Is this ticket urgent?")
            )
            async with aclaude.messages.stream(
                model="claude-haiku-4-5", max_tokens=32, messages=_claude_ask("Route it")
            ) as astream:
                await astream.until_done()
        await aclaude.close()

    asyncio.run(triage())
    claude.close()


def _records_in(path: str) -> int:
    """How many records the ledger at ``path`` holds (0 when there is none yet)."""
    from .db.ledger import connect, count

    try:
        conn = connect(path, create=False)
    except FileNotFoundError:
        return 0
    try:
        return count(conn, None, None)
    except sqlite3.Error:  # a file that is no ledger yet: the demo's own error says so
        return 0
    finally:
        conn.close()


def run_demo(db: Optional[str] = None) -> str:
    """Run the workload, write the ledger at ``db`` (default: ``$USAGETAP_DB`` or ``./.usagetap/ledger.db``).

    Returns the ledger path. Raises ImportError when the ``openai`` SDK is missing.
    """
    from openai import AsyncOpenAI, OpenAI

    path = db or default_path()
    already = _records_in(path)
    if already:
        print(
            f"usagetap demo: appending to the ledger at {path}, which already holds {already:,} records "
            "(the report below includes them; pass --db NEW.db to start from a fresh ledger)"
        )
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
    openai_calls = _stats.snapshot().get("captured", 0) - captured
    also = ""
    if importlib.util.find_spec("anthropic") is not None:
        with ProviderServer(impersonate="anthropic") as claude_server:
            run_anthropic_workload(claude_server.anthropic_url)
        also = (
            f" and {_stats.snapshot().get('captured', 0) - captured - openai_calls} through the Anthropic SDK"
        )
    result = shutdown(timeout=10.0)
    print(
        f"usagetap demo: {openai_calls} calls metered through the real OpenAI SDK{also}, "
        f"{result.pending} left undelivered -> {path}"
    )
    return path
