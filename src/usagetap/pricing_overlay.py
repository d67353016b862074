"""Prices usagetap knows that the installed genai-prices does not: the overlay table.

genai-prices prices most calls; where it has no price for how a call was served (a
tier, batch, a data-residency premium, a cache-write TTL) or for a non-token fee, an
entry here may. genai-prices wins wherever it has the price; ``usagetap.prices.set``
wins over both. Each entry names its source and the dates it holds; a record it
priced names the entry in ``price_source``.

``prices`` says what an entry prices:

- ``"<key>=<value>"``: a served condition (``processing=batch``, ``service_tier=flex``,
  ``inference_geo=us``): every token price of the model times ``multiplier``;
- ``"cache_write_1h"``: a token kind: ``multiplier`` times the model's input price;
- ``"fee:<name>"``: a non-token fee (``fee:web_search``): ``unit_price`` USD per use;
- ``"fee:<name>?<dimension>"``: the same, for a record whose boolean dimension is true
  (``fee:code_execution?code_execution_free``); it wins over the fee's other prices.

:data:`NOT_PER_USE` names the fees a provider bills otherwise than per use, and how.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Optional

__all__ = ["ENTRIES", "NOT_PER_USE", "Entry", "find"]


@dataclass(frozen=True)
class Entry:
    """One overlay price: for ``provider``'s models matching ``models`` (fnmatch patterns, lower case)."""

    id: str
    provider: str
    models: tuple[str, ...]
    prices: str
    source: str
    effective_from: date
    effective_until: Optional[date] = None
    multiplier: Optional[Decimal] = None
    unit_price: Optional[Decimal] = None

    def applies(self, provider: str, model: str, prices: str, day: date) -> bool:
        """Whether this entry prices ``prices`` of ``model`` at ``provider`` on ``day``."""
        return (
            self.provider == provider
            and self.prices == prices
            and self.effective_from <= day
            and (self.effective_until is None or day < self.effective_until)
            and any(fnmatch.fnmatchcase(model.lower(), pattern) for pattern in self.models)
        )


_ANTHROPIC_PRICING = "https://platform.claude.com/docs/en/about-claude/pricing"
_OPENAI_PRICING = "https://platform.openai.com/docs/pricing"
_CODE_EXECUTION = "https://platform.claude.com/docs/en/agents-and-tools/tool-use/code-execution-tool"
# Claude models released after 2026-02-01 (Opus 4.6 on): US-only inference costs 1.1x
_US_INFERENCE_MODELS = (
    "claude-opus-4-6*",
    "claude-opus-4-7*",
    "claude-opus-4-8*",
    "claude-opus-5*",
    "claude-sonnet-4-6*",
    "claude-sonnet-5*",
    "claude-haiku-5*",
    "claude-fable-5*",
    "claude-mythos-5*",
)

ENTRIES: tuple[Entry, ...] = (
    Entry(
        id="anthropic-batch-50pct",
        provider="anthropic",
        models=("claude-*",),
        prices="processing=batch",
        multiplier=Decimal("0.5"),
        source="https://platform.claude.com/docs/en/build-with-claude/batch-processing#pricing",
        effective_from=date(2024, 10, 8),
    ),
    Entry(
        id="anthropic-us-inference-1.1x",
        provider="anthropic",
        models=_US_INFERENCE_MODELS,
        prices="inference_geo=us",
        multiplier=Decimal("1.1"),
        source="https://platform.claude.com/docs/en/build-with-claude/data-residency",
        effective_from=date(2026, 2, 1),
    ),
    Entry(
        id="anthropic-cache-write-1h-2x",
        provider="anthropic",
        models=("claude-*",),
        prices="cache_write_1h",
        multiplier=Decimal(2),
        source="https://platform.claude.com/docs/en/build-with-claude/prompt-caching#pricing",
        effective_from=date(2025, 5, 22),
    ),
    Entry(
        id="anthropic-web-search-10-per-1k",
        provider="anthropic",
        models=("claude-*",),
        prices="fee:web_search",
        unit_price=Decimal("0.01"),
        source=f"{_ANTHROPIC_PRICING}#web-search-tool",
        effective_from=date(2025, 5, 7),
    ),
    Entry(
        id="anthropic-web-fetch-free",
        provider="anthropic",
        models=("claude-*",),
        prices="fee:web_fetch",
        unit_price=Decimal(0),
        source=f"{_ANTHROPIC_PRICING}#web-fetch-tool",
        effective_from=date(2025, 9, 10),
    ),
    Entry(  # the extraction sets code_execution_free when the request offered such a web tool
        id="anthropic-code-execution-free-with-web-tools-20260209",
        provider="anthropic",
        models=("claude-*",),
        prices="fee:code_execution?code_execution_free",
        unit_price=Decimal(0),
        source=f"{_CODE_EXECUTION}#usage-and-pricing",
        effective_from=date(2026, 2, 9),
    ),
    Entry(
        id="openai-flex-50pct",
        provider="openai",
        models=("o3", "o3-2025-04-16", "o4-mini", "o4-mini-2025-04-16", "gpt-5*"),
        prices="service_tier=flex",
        multiplier=Decimal("0.5"),
        source="https://platform.openai.com/docs/guides/flex-processing",
        effective_from=date(2025, 4, 16),
    ),
    Entry(  # Vertex AI's Flex PayGo (traffic type ON_DEMAND_FLEX) is likewise 50 % of Standard PayGo
        id="google-flex-50pct",
        provider="google",
        models=("gemini-*",),
        prices="service_tier=flex",
        multiplier=Decimal("0.5"),
        source="https://ai.google.dev/gemini-api/docs/flex-inference",
        effective_from=date(2026, 4, 1),
    ),
    Entry(
        id="openai-web-search-10-per-1k",
        provider="openai",
        models=("*",),
        prices="fee:web_search",
        unit_price=Decimal("0.01"),
        source=f"{_OPENAI_PRICING}#built-in-tools",
        effective_from=date(2025, 3, 11),
    ),
    Entry(
        id="openai-file-search-2.50-per-1k",
        provider="openai",
        models=("*",),
        prices="fee:file_search",
        unit_price=Decimal("0.0025"),
        source=f"{_OPENAI_PRICING}#built-in-tools",
        effective_from=date(2025, 3, 11),
    ),
)
"""The overlay, first match wins."""

NOT_PER_USE: dict[tuple[str, str], str] = {
    ("anthropic", "code_execution"): (
        "Anthropic bills code execution per container-hour ($0.05 per hour per container, "
        "a free monthly allowance per organization, 5-minute minimum), not per call"
        f" ({_CODE_EXECUTION}#usage-and-pricing)"
    ),
}
"""(provider, fee) -> how the provider bills a fee that has no price per use."""


def find(provider: str, model: str, prices: str, day: date) -> Optional[Entry]:
    """The entry pricing ``prices`` of ``model`` at ``provider`` on ``day``, or None."""
    return next((e for e in ENTRIES if e.applies(provider, model, prices, day)), None)
