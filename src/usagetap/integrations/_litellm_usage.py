"""LiteLLM's normalized responses: their usage, operation and provider in usagetap's terms (pure)."""

from __future__ import annotations

from typing import Any, Optional
from urllib.parse import urlsplit

from ..providers.base import TokenUsage, field_of, int_of, is_object, unreadable

__all__ = ["ESTIMATED", "operation_of", "provider_of", "usage_of", "usage_on_request"]

ESTIMATED = (
    "stream usage estimated by LiteLLM (the provider reports it only with stream_options.include_usage)"
)

_OPERATIONS = {
    "completion": "chat",
    "acompletion": "chat",
    "embedding": "embeddings",
    "aembedding": "embeddings",
    "text_completion": "completions",
    "atext_completion": "completions",
    "responses": "responses",
    "aresponses": "responses",
    "anthropic_messages": "messages",
}

# LiteLLM's custom_llm_provider -> the provider names of DESIGN.md (genai-prices' ids otherwise)
_PROVIDERS = {
    "openai": "openai",
    "text-completion-openai": "openai",
    "azure": "azure",
    "azure_text": "azure",
    "azure_ai": "azure",
    "anthropic": "anthropic",
    "bedrock": "bedrock",
    "vertex_ai": "vertex",
    "vertex_ai_beta": "vertex",
    "gemini": "google",
    "mistral": "mistral",
    "groq": "groq",
    "deepseek": "deepseek",
    "xai": "x-ai",
    "together_ai": "together",
    "fireworks_ai": "fireworks",
    "openrouter": "openrouter",
    "cohere": "cohere",
    "cohere_chat": "cohere",
    "perplexity": "perplexity",
    "cerebras": "cerebras",
}

# providers whose streams report usage only when asked (stream_options.include_usage)
_USAGE_ON_REQUEST = frozenset(
    {"openai", "text-completion-openai", "azure", "azure_text", "groq", "deepseek", "together_ai",
     "fireworks_ai", "xai", "openrouter", "mistral", "hosted_vllm", "openai_like", "custom_openai"}
)  # fmt: skip


def operation_of(call_type: Any) -> Optional[str]:
    """The record's operation for a LiteLLM ``call_type``, or None for calls usagetap does not meter."""
    return _OPERATIONS.get(str(call_type)) if call_type is not None else None


def provider_of(custom_llm_provider: Any, api_base: Any = None) -> str:
    """The provider name for LiteLLM's ``custom_llm_provider``; an unknown one is its API host."""
    name = str(custom_llm_provider or "")
    if name in _PROVIDERS:
        return _PROVIDERS[name]
    host = urlsplit(api_base).hostname if isinstance(api_base, str) and "://" in api_base else None
    return host or name or "unknown"


def usage_on_request(custom_llm_provider: Any) -> bool:
    """Whether the provider's streams carry usage only when the request asks for it."""
    return str(custom_llm_provider) in _USAGE_ON_REQUEST


def usage_of(response: Any, estimated: bool = False) -> TokenUsage:
    """The usage of a LiteLLM response (``ModelResponse``, ``EmbeddingResponse``, ``ResponsesAPIResponse``).

    LiteLLM normalizes every provider to OpenAI's shape: ``prompt_tokens`` includes cache reads
    and writes (``prompt_tokens_details.cached_tokens``, ``cache_creation_input_tokens``) and
    ``completion_tokens`` includes reasoning; the Responses API says ``input_tokens`` /
    ``output_tokens``. ``estimated``: LiteLLM counted a stream's tokens itself (``partial``).
    """
    model, response_id = field_of(response, "model"), field_of(response, "id")
    model = model if isinstance(model, str) and model else None
    response_id = response_id if isinstance(response_id, str) and response_id else None
    usage = field_of(response, "usage")
    if usage is None:
        return TokenUsage(model=model, response_id=response_id, reported=False, issue="no usage reported")
    if not is_object(usage):
        return unreadable(usage, model=model, response_id=response_id)
    responses = field_of(usage, "input_tokens") is not None
    prompt, completion = (
        ("input_tokens", "output_tokens") if responses else ("prompt_tokens", "completion_tokens")
    )
    inputs = field_of(usage, "input_tokens_details" if responses else "prompt_tokens_details")
    outputs = field_of(usage, "output_tokens_details" if responses else "completion_tokens_details")
    cache_write = int_of(usage, "cache_creation_input_tokens")
    if not cache_write and inputs is not None:
        cache_write = int_of(inputs, "cache_creation_tokens")
    return TokenUsage(
        model=model,
        response_id=response_id,
        input_tokens=int_of(usage, prompt),
        output_tokens=int_of(usage, completion),
        cache_read_tokens=int_of(inputs, "cached_tokens") if inputs is not None else 0,
        cache_write_tokens=cache_write,
        reasoning_tokens=int_of(outputs, "reasoning_tokens") if outputs is not None else 0,
        issue=ESTIMATED if estimated else None,
    )
