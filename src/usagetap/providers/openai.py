"""Usage extraction for the OpenAI API (and OpenAI-compatible servers).

Pure functions over SDK objects or their JSON (dicts): nothing here patches,
imports the SDK or does I/O. OpenAI's ``prompt_tokens`` / ``input_tokens``
already include cached tokens and ``completion_tokens`` / ``output_tokens``
include reasoning tokens, which is usagetap's convention, so counts are
taken as reported.
"""

from __future__ import annotations

from typing import Any, Optional

from ..record import Scalar
from .base import TokenUsage, field_of, int_of

__all__ = [
    "OPERATIONS",
    "ChatStreamObserver",
    "chat_usage",
    "is_usage_only_chunk",
    "operation_for",
]

# request path -> operation, for the POST endpoints that bill tokens
OPERATIONS: dict[str, str] = {
    "/chat/completions": "chat",
    "/responses": "responses",
    "/embeddings": "embeddings",
    "/completions": "completions",
}


def operation_for(method: str, path: str) -> Optional[str]:
    """The metered operation of a request, or None for requests usagetap does not meter."""
    if method.lower() != "post":
        return None
    return OPERATIONS.get(path)


def _details(usage: Any, *names: str) -> Any:
    for name in names:
        value = field_of(usage, name)
        if value is not None:
            return value
    return None


def chat_usage(response: Any) -> TokenUsage:
    """Usage of a chat completion, a legacy completion or a chunk that carries ``usage``."""
    return _chat_usage_fields(
        field_of(response, "usage"),
        model=field_of(response, "model"),
        response_id=field_of(response, "id"),
        service_tier=field_of(response, "service_tier"),
    )


def _chat_usage_fields(
    usage: Any, *, model: Optional[str], response_id: Optional[str], service_tier: Optional[str]
) -> TokenUsage:
    dims: dict[str, Scalar] = {}
    if isinstance(service_tier, str) and service_tier:
        dims["service_tier"] = service_tier
    if usage is None:
        return TokenUsage(model=model, response_id=response_id, dimensions=dims, reported=False)
    prompt_details = _details(usage, "prompt_tokens_details", "input_tokens_details")
    completion_details = _details(usage, "completion_tokens_details", "output_tokens_details")
    input_audio = int_of(prompt_details, "audio_tokens")
    output_audio = int_of(completion_details, "audio_tokens")
    if input_audio:
        dims["input_audio_tokens"] = input_audio
    if output_audio:
        dims["output_audio_tokens"] = output_audio
    return TokenUsage(
        model=model,
        response_id=response_id,
        input_tokens=int_of(usage, "prompt_tokens"),
        output_tokens=int_of(usage, "completion_tokens"),
        cache_read_tokens=int_of(prompt_details, "cached_tokens"),
        cache_write_tokens=int_of(prompt_details, "cache_write_tokens"),
        reasoning_tokens=int_of(completion_details, "reasoning_tokens"),
        dimensions=dims,
    )


def is_usage_only_chunk(chunk: Any) -> bool:
    """The extra final chunk that ``stream_options={"include_usage": True}`` adds: no choices, usage set."""
    return not field_of(chunk, "choices") and field_of(chunk, "usage") is not None


class ChatStreamObserver:
    """Follows a chat (or legacy completions) stream chunk by chunk and keeps what the record needs.

    The last chunk that carries ``usage`` wins (OpenAI sends it once, at the end;
    some compatible servers repeat cumulative usage on every chunk).
    """

    __slots__ = ("finished", "model", "response_id", "service_tier", "usage")

    def __init__(self) -> None:
        self.response_id: Optional[str] = None
        self.model: Optional[str] = None
        self.service_tier: Optional[str] = None
        self.usage: Any = None
        self.finished = False

    def observe(self, chunk: Any) -> None:
        if isinstance(chunk, dict):
            usage, choices = chunk.get("usage"), chunk.get("choices")
        else:
            usage, choices = getattr(chunk, "usage", None), getattr(chunk, "choices", None)
        if self.response_id is None or usage is not None:
            self.response_id = self.response_id or field_of(chunk, "id")
            self.model = field_of(chunk, "model") or self.model
            self.service_tier = field_of(chunk, "service_tier") or self.service_tier
        if usage is not None:
            self.usage = usage
        if choices and not self.finished:
            for choice in choices:
                if field_of(choice, "finish_reason"):
                    self.finished = True

    def result(self) -> TokenUsage:
        return _chat_usage_fields(
            self.usage, model=self.model, response_id=self.response_id, service_tier=self.service_tier
        )
