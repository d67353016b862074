"""Usage extraction for the OpenAI API (and OpenAI-compatible servers).

Pure functions over SDK objects or their JSON (dicts): nothing here patches,
imports the SDK or does I/O. OpenAI's ``prompt_tokens`` / ``input_tokens``
already include cached tokens and ``completion_tokens`` / ``output_tokens``
include reasoning tokens, which is usagetap's convention, so counts are
taken as reported.

Compatible servers differ (see :func:`chat_usage`): cache reads come as
``prompt_tokens_details.cached_tokens``, DeepSeek's ``prompt_cache_hit_tokens``
or Together's top-level ``cached_tokens``; Groq's legacy streams carry usage
under ``x_groq.usage``; xAI's ``completion_tokens`` and Gemini's leave reasoning
out, which only ``total_tokens`` shows; OpenRouter (``cost``) and xAI
(``cost_in_usd_ticks``) also say what they charged.
"""

from __future__ import annotations

import json
import re
from typing import Any, NamedTuple, Optional

from ..._log import internal_error
from ..._record import Scalar
from ..base import TokenUsage, field_of, int_of, is_object, sse_payloads, unreadable, unreported
from ..observer import Observer

__all__ = [
    "OPERATIONS",
    "ChatStreamObserver",
    "ResponsesStreamObserver",
    "Surface",
    "UsageEventHider",
    "chat_usage",
    "embedding_usage",
    "operation_for",
    "response_is_final",
    "responses_usage",
    "sse_payloads",
    "surface_for",
    "tool_calls",
    "usage_from_json",
]

# request path -> operation, for the POST endpoints that bill tokens
OPERATIONS: dict[str, str] = {
    "/chat/completions": "chat",
    "/responses": "responses",
    "/responses/compact": "responses.compact",
    "/embeddings": "embeddings",
    "/completions": "completions",
}

# Responses API statuses of a response whose usage is not known yet (background mode)
_PENDING_STATUSES = frozenset({"queued", "in_progress"})
# stream events that carry the finished response (and its usage)
_FINAL_EVENTS = frozenset({"response.completed", "response.incomplete", "response.failed"})
_EARLY_EVENTS = frozenset({"response.created", "response.in_progress", "response.queued"})

# Azure: /deployments/{deployment}/chat/completions, and the v1 API's /v1/... under /openai
_AZURE_PREFIX = re.compile(r"^(?:/openai)?(?:/v1)?(?:/deployments/[^/]+)?(?=/)")
_RESPONSE_PATH = re.compile(r"^/responses/([^/]+)(/cancel)?$")
_EMPTY_CHOICES = re.compile(rb'"choices"\s*:\s*\[\s*\]')
_CHOICES = re.compile(rb'"choices"\s*:')
_USAGE_OBJECT = re.compile(rb'"usage"\s*:\s*\{')
_USAGE_NULL = re.compile(rb'"usage"\s*:\s*null')


class Surface(NamedTuple):
    """A metered endpoint: its operation, and for a stored response the id it reads."""

    operation: str
    response_id: Optional[str] = None


def surface_for(method: str, path: str) -> Optional[Surface]:
    """The metered surface of a request, or None for requests usagetap does not meter.

    POSTs to the billable endpoints create a response; ``GET /responses/{id}``
    and ``POST /responses/{id}/cancel`` read a stored (e.g. background) response.
    """
    path = (
        _AZURE_PREFIX.sub("", path, count=1) if path.startswith(("/openai", "/deployments", "/v1")) else path
    )
    verb = method.lower()
    if verb == "post":
        operation = OPERATIONS.get(path)
        if operation is not None:
            return Surface(operation)
    if verb not in ("get", "post") or not path.startswith("/responses/"):
        return None
    match = _RESPONSE_PATH.match(path)
    if match is None:
        return None
    cancel = match.group(2) is not None
    if (verb == "get" and not cancel) or (verb == "post" and cancel):
        return Surface("responses", match.group(1))
    return None


def operation_for(method: str, path: str) -> Optional[str]:
    """The metered operation of a request, or None for requests usagetap does not meter."""
    surface = surface_for(method, path)
    return None if surface is None else surface.operation


def _details(usage: Any, *names: str) -> Any:
    for name in names:
        value = field_of(usage, name)
        if value is not None:
            return value
    return None


def _tier(dims: dict[str, Scalar], service_tier: Any) -> dict[str, Scalar]:
    if isinstance(service_tier, str) and service_tier:
        dims["service_tier"] = service_tier
    return dims


def _modalities(dims: dict[str, Scalar], input_details: Any, output_details: Any) -> None:
    """The audio and image parts of the input, its cache reads and the output, as dimensions
    (``input_audio_tokens``, ``cache_image_read_tokens``, ``output_image_tokens``, ...)."""
    cached_details = field_of(input_details, "cached_tokens_details")
    for prefix, details in (("input", input_details), ("cache", cached_details), ("output", output_details)):
        for modality in ("audio", "image"):
            count = int_of(details, f"{modality}_tokens")
            if count:
                name = f"cache_{modality}_read_tokens" if prefix == "cache" else f"{prefix}_{modality}_tokens"
                dims[name] = count


def _cache_reads(usage: Any, details: Any) -> int:
    """``cached_tokens``; at the top: DeepSeek's ``prompt_cache_hit_tokens``, Together's ``cached_tokens``."""
    for source, name in (
        (details, "cached_tokens"),
        (usage, "prompt_cache_hit_tokens"),
        (usage, "cached_tokens"),
    ):
        if field_of(source, name) is not None:
            return int_of(source, name)
    return 0


def _prompt_tokens(usage: Any) -> int:
    """``prompt_tokens``; without it, DeepSeek's cache hits plus misses."""
    if field_of(usage, "prompt_tokens") is None and field_of(usage, "prompt_cache_miss_tokens") is not None:
        return int_of(usage, "prompt_cache_hit_tokens") + int_of(usage, "prompt_cache_miss_tokens")
    return int_of(usage, "prompt_tokens")


def _unlisted_output(usage: Any, prompt: int, completion: int) -> int:
    """Output tokens only ``total_tokens`` shows: its surplus over prompt and completion, else 0.

    xAI and Gemini's OpenAI-compatible endpoint leave reasoning (thinking) out of
    ``completion_tokens`` but bill it as output and count it in ``total_tokens``.
    A negative count is left for validation to refuse, not mended by the total.
    """
    total = field_of(usage, "total_tokens")
    if type(total) is float and total.is_integer():
        total = int(total)  # as int_of reads a whole float
    if type(total) is not int or prompt < 0 or completion < 0 or total <= prompt + completion:
        return 0
    return total - prompt - completion


def _provider_cost(dims: dict[str, Scalar], usage: Any) -> None:
    """What the provider says it charged, in USD: OpenRouter's ``cost``, xAI's ``cost_in_usd_ticks``."""
    cost = field_of(usage, "cost")
    ticks = field_of(usage, "cost_in_usd_ticks")
    if isinstance(cost, (int, float)) and not isinstance(cost, bool):
        dims["provider_cost"] = float(cost)
    elif type(ticks) is int:
        dims["provider_cost"] = ticks / 1e10


def chat_usage(response: Any) -> TokenUsage:
    """Usage of a chat completion, a legacy completion or a chunk that carries ``usage``.

    Reads OpenAI's fields and those of the compatible servers (DeepSeek, Groq, Together,
    OpenRouter, Fireworks, Mistral, xAI, vLLM, Gemini): see the module's docstring.
    """
    return _chat_usage_fields(
        field_of(response, "usage"),
        model=field_of(response, "model"),
        response_id=field_of(response, "id"),
        service_tier=field_of(response, "service_tier"),
    )


_CHAT_COUNTS = ("prompt_tokens", "completion_tokens")


def _chat_usage_fields(
    usage: Any, *, model: Optional[str], response_id: Optional[str], service_tier: Optional[str]
) -> TokenUsage:
    dims = _tier({}, service_tier)
    if usage is None:
        return TokenUsage(model=model, response_id=response_id or None, dimensions=dims, reported=False)
    if not is_object(usage):
        return unreadable(usage, model=model, response_id=response_id or None)
    prompt_details = _details(usage, "prompt_tokens_details", "input_tokens_details")
    completion_details = _details(usage, "completion_tokens_details", "output_tokens_details")
    _modalities(dims, prompt_details, completion_details)
    _provider_cost(dims, usage)
    prompt, completion = _prompt_tokens(usage), int_of(usage, "completion_tokens")
    reasoning = int_of(completion_details, "reasoning_tokens")
    unlisted = _unlisted_output(usage, prompt, completion)
    counts = (
        ("completion_tokens",) if field_of(usage, "prompt_cache_miss_tokens") is not None else _CHAT_COUNTS
    )
    return TokenUsage(
        model=model,
        response_id=response_id or None,
        input_tokens=prompt,
        output_tokens=completion + unlisted,
        cache_read_tokens=_cache_reads(usage, prompt_details),
        cache_write_tokens=int_of(prompt_details, "cache_write_tokens"),
        reasoning_tokens=max(reasoning, unlisted) if unlisted and reasoning >= 0 else reasoning,
        dimensions=dims,
        issue=unreported(usage, *counts),
    )


def embedding_usage(response: Any) -> TokenUsage:
    """Usage of an embeddings response: input tokens only, and no response id."""
    usage = field_of(response, "usage")
    model = field_of(response, "model")
    if usage is None:
        return TokenUsage(model=model, reported=False)
    if not is_object(usage):
        return unreadable(usage, model=model, response_id=None)
    return TokenUsage(model=model, input_tokens=int_of(usage, "prompt_tokens"))


def response_is_final(response: Any) -> bool:
    """Whether a Responses API object has finished (its usage will not change)."""
    return field_of(response, "status") not in _PENDING_STATUSES


# Responses output item type -> the dimension counting it (tools billed per use, on top of tokens)
_TOOL_CALLS = {
    "web_search_call": "web_search_calls",
    "file_search_call": "file_search_calls",
    "code_interpreter_call": "code_interpreter_calls",
    "image_generation_call": "image_generation_calls",
}


def tool_calls(output: Any) -> dict[str, Scalar]:
    """The billed tool calls among a Responses API response's output items, counted per kind."""
    counts: dict[str, Scalar] = {}
    for item in output or ():
        name = _TOOL_CALLS.get(field_of(item, "type"))
        if name is not None:
            counts[name] = int(counts.get(name, 0)) + 1
    return counts


def responses_usage(response: Any) -> TokenUsage:
    """Usage of a Responses API response, with its tool calls (``web_search_calls``,
    ``file_search_calls``, ``code_interpreter_calls``, ``image_generation_calls``) counted from
    its output items.

    ``reported`` is False while the response is still queued or in progress
    (a background response) and when it finished without usage.
    """
    usage = field_of(response, "usage")
    model = field_of(response, "model")
    response_id = field_of(response, "id")
    dims = _tier({}, field_of(response, "service_tier"))
    dims.update(tool_calls(field_of(response, "output")))
    if usage is None or not response_is_final(response):
        return TokenUsage(model=model, response_id=response_id, dimensions=dims, reported=False)
    if not is_object(usage):
        return unreadable(usage, model=model, response_id=response_id)
    _provider_cost(dims, usage)
    input_details = field_of(usage, "input_tokens_details")
    output_details = field_of(usage, "output_tokens_details")
    _modalities(dims, input_details, output_details)
    return TokenUsage(
        model=model,
        response_id=response_id,
        input_tokens=int_of(usage, "input_tokens"),
        output_tokens=int_of(usage, "output_tokens"),
        cache_read_tokens=int_of(input_details, "cached_tokens"),
        cache_write_tokens=int_of(input_details, "cache_write_tokens"),
        reasoning_tokens=int_of(output_details, "reasoning_tokens"),
        dimensions=dims,
    )


def usage_from_json(operation: str, body: Any) -> TokenUsage:
    """Usage from a response body's JSON (bytes, text or a decoded dict) for ``operation``."""
    if isinstance(body, (bytes, bytearray, str)):
        body = json.loads(body)
    if operation.startswith("responses"):
        return responses_usage(body)
    if operation == "embeddings":
        return embedding_usage(body)
    return chat_usage(body)


def _sends_usage_field(chunk: Any) -> bool:
    """Whether an SDK chunk came with a ``usage`` field (null included), as its JSON had it."""
    fields: Any = getattr(chunk, "model_fields_set", None)
    if fields is None:
        fields = getattr(chunk, "__fields_set__", ())  # pydantic 1
    return "usage" in fields


class UsageEventHider:
    """Says which raw SSE event of a chat stream is the chunk ``include_usage`` added; see
    :meth:`ChatStreamObserver.hidden`, whose rule it applies to the event's bytes."""

    __slots__ = ("_begun", "_hid")

    def __init__(self) -> None:
        self._begun = False
        self._hid = False

    def __call__(self, event: bytes) -> bool:
        if self._hid:
            return False
        if not _EMPTY_CHOICES.search(event):
            if not self._begun and _CHOICES.search(event):
                self._begun = True
            return False
        if _USAGE_OBJECT.search(event) or (self._begun and _USAGE_NULL.search(event)):
            self._hid = True
            return True
        return False


class ChatStreamObserver(Observer):
    """Follows a chat (or legacy completions) stream chunk by chunk and keeps what the record needs.

    The last chunk that carries ``usage`` wins (OpenAI sends it once, at the end;
    some compatible servers repeat cumulative usage on every chunk). ``choices``
    is the number of choices asked for (``n``): once each has a ``finish_reason``
    only the usage chunk is still to come (see :meth:`wants_more`). The usage is
    final (``usage_final``) when it comes on a chunk without choices, or once every
    choice has finished: a stream broken off before then is recorded partial.

    ``observe`` runs on the caller's thread for every chunk, so its common path
    is one attribute read and one store; whether the stream has finished is
    worked out from the last chunk only when asked. With one choice, the first
    chunk and the last few say it all (id and model first; the finish reason,
    then the usage, last): ``tail`` lets a stream hand only those to
    :meth:`observe`, at its end. With several, a finish reason may come anywhere.
    """

    __slots__ = (
        "_begun",
        "_done",
        "_final",
        "_hid",
        "choices",
        "last",
        "model",
        "response_id",
        "service_tier",
        "tail",
        "usage",
    )

    def __init__(self, choices: int = 1) -> None:
        self.response_id: Optional[str] = None
        self.model: Optional[str] = None
        self.service_tier: Optional[str] = None
        self.usage: Any = None
        self._final = False
        self.last: Any = None
        self.choices = max(choices, 1)
        self._done: set[int] = set()
        self.tail = 8 if self.choices == 1 else 0
        self._begun = False
        self._hid = False

    def observe(self, chunk: Any) -> None:
        usage = chunk.get("usage") if type(chunk) is dict else getattr(chunk, "usage", None)
        if usage is not None or not self.response_id:
            self.response_id = self.response_id or field_of(chunk, "id")
            self.model = field_of(chunk, "model") or self.model
            self.service_tier = field_of(chunk, "service_tier") or self.service_tier
            if usage is not None:
                self.usage = usage
                self._final = self._is_final(chunk)
                self.last = chunk
                return
        self.last = chunk
        if self.choices > 1:
            self._finish(field_of(chunk, "choices") or ())

    def _finish(self, choices: Any) -> None:
        for choice in choices:
            if field_of(choice, "finish_reason"):
                self._done.add(field_of(choice, "index") or 0)

    @property
    def usage_final(self) -> bool:
        """Whether the usage seen is final (read once, when the stream ends)."""
        if self._final:
            return True
        return self.usage is None and _groq_usage(self.last) is not None and self._is_final(self.last)

    def _is_final(self, chunk: Any) -> bool:
        """Whether usage on this chunk is final: it has no choices, or every choice has finished."""
        choices = field_of(chunk, "choices") or ()
        if not choices:
            return True
        if self.choices > 1:
            self._finish(choices)
            return len(self._done) >= self.choices
        return self.finished or all(field_of(choice, "finish_reason") for choice in choices)

    def hidden(self, chunk: Any) -> bool:
        """Whether ``chunk`` is the one ``include_usage`` added, to hide from a caller who didn't ask.

        That is the first chunk without choices that carries usage; or carries ``usage: null``
        once the choices have begun (a server that asked for usage but has none; before them it
        is e.g. Azure's prompt filter chunk). Later ones are the server's own: they are shown.
        Runs on every chunk of a stream whose usage usagetap asked for, inside the C iterators the
        chunks pass through, so it never raises: a chunk it cannot read is shown, the failure
        logged and counted. Choices, set on all the other chunks, are read first.
        """
        try:
            if type(chunk) is dict:
                if chunk.get("choices"):
                    self._begun = True
                    return False
                if self._hid or "usage" not in chunk:
                    return False
                usage = chunk["usage"]
            else:
                if getattr(chunk, "choices", None):
                    self._begun = True
                    return False
                if self._hid:
                    return False
                usage = getattr(chunk, "usage", None)
                if usage is None and not _sends_usage_field(chunk):
                    return False
            if usage is None and not self._begun:
                return False
            self._hid = True
            return True
        except Exception as exc:
            internal_error("stream.hide", exc)
            return False

    @property
    def finished(self) -> bool:
        """Every choice asked for has its ``finish_reason``."""
        if self.choices > 1:
            return len(self._done) >= self.choices
        choices = field_of(self.last, "choices") or ()
        return bool(choices) and all(field_of(choice, "finish_reason") for choice in choices)

    def wants_more(self) -> bool:
        """Every choice has finished but the final usage has not arrived: it is the next chunk."""
        return not self.usage_final and self.finished

    def result(self) -> TokenUsage:
        usage = self.usage if self.usage is not None else _groq_usage(self.last)
        return _chat_usage_fields(
            usage, model=self.model, response_id=self.response_id, service_tier=self.service_tier
        )


def _groq_usage(chunk: Any) -> Any:
    """Groq's legacy streams: usage only under ``x_groq.usage``, on the last chunk."""
    return field_of(field_of(chunk, "x_groq"), "usage")


class ResponsesStreamObserver(Observer):
    """Follows a Responses API event stream: the response id and model early, usage from the final event.

    The final event is ``response.completed``, ``response.incomplete`` or
    ``response.failed``; each carries the whole response with its usage.
    """

    __slots__ = ("final", "model", "response_id")

    kinds = _FINAL_EVENTS | _EARLY_EVENTS
    """The only events :meth:`observe` reads."""

    tail = 8
    """``response.created`` is the first event and the final event the last: a stream may hand
    :meth:`observe` only its first and last ``tail`` events, at its end."""

    def __init__(self) -> None:
        self.response_id: Optional[str] = None
        self.model: Optional[str] = None
        self.final: Any = None

    def observe(self, event: Any) -> None:
        kind = event.get("type") if type(event) is dict else getattr(event, "type", None)
        if kind in _FINAL_EVENTS:
            self.final = field_of(event, "response")
        elif self.response_id is None and kind in _EARLY_EVENTS:
            response = field_of(event, "response")
            self.response_id = field_of(response, "id")
            self.model = field_of(response, "model")

    def result(self) -> TokenUsage:
        if self.final is not None:
            return responses_usage(self.final)
        return TokenUsage(model=self.model, response_id=self.response_id, reported=False)
