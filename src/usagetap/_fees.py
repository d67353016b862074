"""Non-token fees: the usage dimensions that count them, and the record's named fee quantities.

Providers bill some tools per use, on top of tokens: web searches, web fetches, file
searches, code execution, image generation. The usage extraction counts each as a
dimension named the way the provider reports it; a record's ``fees`` name them alike
across providers.
"""

from __future__ import annotations

from collections.abc import Mapping

from ._record import Scalar

__all__ = ["FEES", "FEE_DIMENSIONS", "fees_of"]

FEES = ("web_search", "web_fetch", "file_search", "code_execution", "image_generation")
"""The fee names a record's ``fees`` and ``cost_items`` use."""

FEE_DIMENSIONS: dict[str, str] = {
    "web_search_requests": "web_search",  # Anthropic usage.server_tool_use
    "web_fetch_requests": "web_fetch",
    "code_execution_requests": "code_execution",  # Anthropic server_tool_use blocks (or the reported count)
    "web_search_calls": "web_search",  # OpenAI Responses output items
    "file_search_calls": "file_search",
    "code_interpreter_calls": "code_execution",
    "image_generation_calls": "image_generation",
    "grounding_searches": "web_search",  # Gemini grounding with Google Search, as Google bills it
}
"""Usage dimension -> the fee it counts."""


def fees_of(dimensions: Mapping[str, Scalar]) -> dict[str, Scalar]:
    """The fee quantities that ``dimensions`` count (positive whole numbers only)."""
    fees: dict[str, Scalar] = {}
    for dimension, fee in FEE_DIMENSIONS.items():
        value = dimensions.get(dimension)
        if type(value) is int and value > 0:
            fees[fee] = int(fees.get(fee, 0)) + value
    return fees
