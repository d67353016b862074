"""Instrumentation for the ``openai`` SDK (1.x, 2.x, 3.x), found by probing, never by version checks.

Every billable surface goes through the client's ``request()``: chat
completions (``create``, ``parse``, the ``stream()`` helpers, ``beta.*``),
responses (``create``, ``parse``, ``stream()``, background responses read back
with ``retrieve``), embeddings and legacy completions. The plan is made from
the request path and body; the result (an object, an SDK stream, or a raw
response) is metered by kind.
"""

from __future__ import annotations

import contextlib
import copy
import importlib
import re
from collections.abc import Callable
from typing import Any, Optional, cast

from ..._log import DEBUG, WARNING, log_once
from ...instrument._adapter import Adapter
from ...instrument._binding import Binding
from ...instrument._calls import Call, emit
from ...instrument._hosts import provider_for_host
from ...instrument._raw import BodyMeter, attach_raw, is_raw_response
from ...instrument._streams import StreamTap, attach_async, attach_sync
from ..base import TokenUsage, field_of
from ..observer import Observer
from . import usage as extract
from .stored import ResponseBook

__all__ = ["ADAPTER", "OpenAIAdapter", "OpenAICall"]

# OpenAI-compatible hosts -> provider name (genai-prices' provider id, see DESIGN.md)
_KNOWN_HOSTS: dict[str, str] = {
    "api.openai.com": "openai",
    "api.groq.com": "groq",
    "api.deepseek.com": "deepseek",
    "api.x.ai": "x-ai",
    "api.together.xyz": "together",
    "api.together.ai": "together",
    "api.fireworks.ai": "fireworks",
    "openrouter.ai": "openrouter",
    "api.openrouter.ai": "openrouter",
    "api.mistral.ai": "mistral",
    "api.cerebras.ai": "cerebras",
    "api.perplexity.ai": "perplexity",
    "api.novita.ai": "novita",
    "api.z.ai": "zai",
}
# Azure OpenAI and Azure AI Foundry (its project endpoints, model inference and serverless endpoints)
_AZURE_HOSTS = (
    ".openai.azure.com",
    ".cognitiveservices.azure.com",
    ".services.ai.azure.com",
    ".models.ai.azure.com",
    "models.inference.ai.azure.com",
)
# self-hosted servers at their default ports on this machine: tokens exact, no price of their own
_LOCAL_HOSTS = frozenset({"localhost", "127.0.0.1", "::1", "[::1]"})
_LOCAL_PORTS: dict[int, str] = {11434: "ollama", 1234: "lmstudio"}
_INJECTS_USAGE = frozenset({"chat", "completions"})
_WORD = re.compile(r"^[a-z_]+$")


class OpenAICall(Call):
    """A call to the OpenAI API. ``deferred``: usage may come later (background, retrieval), so a
    response without usage makes no record rather than a partial one."""

    __slots__ = ("background", "choices", "deferred")

    def __init__(
        self, binding: Binding, operation: str, request_model: Optional[str], stream: bool, options: Any
    ) -> None:
        super().__init__(binding, operation, request_model, stream, options)
        self.background = False
        self.deferred = False
        self.choices = 1


def _import_httpx2() -> None:
    """Import httpx2 (when installed) on the thread that loads this adapter.

    openai 2.x looks httpx2 up in ``sys.modules`` without the import lock, and
    genai-prices imports it on the delivery thread: mid-import, the SDK would
    see a half-initialised module and fail the caller's request.
    """
    with contextlib.suppress(Exception):
        importlib.import_module("httpx2")


def _stream_types() -> tuple[type, type]:
    import openai

    return openai.Stream, openai.AsyncStream


class OpenAIAdapter(Adapter):
    family = "openai"

    def __init__(self) -> None:
        self._streams: Optional[tuple[type, type]] = None
        self.stored: ResponseBook[OpenAICall] = ResponseBook()

    def provider_for(self, client: Any) -> str:
        if any(cls.__name__.startswith(("AzureOpenAI", "AsyncAzureOpenAI")) for cls in type(client).__mro__):
            return "azure"
        url = client.base_url
        if url.host.endswith(_AZURE_HOSTS):
            return "azure"
        provider = provider_for_host(url.host, url.port, _KNOWN_HOSTS, self.family)
        if provider == url.host and url.host in _LOCAL_HOSTS and url.port in _LOCAL_PORTS:
            return _LOCAL_PORTS[url.port]
        return provider

    def note_unmetered(self, client: Any) -> None:
        """Name, once, the surfaces that never pass through ``request()``: realtime is a websocket."""
        beta = getattr(type(client), "beta", None)
        if hasattr(type(client), "realtime") or (beta is not None and hasattr(beta, "realtime")):
            log_once(
                DEBUG,
                "unmetered:realtime",
                "usagetap: not metered, passed through untouched: realtime (websocket sessions)",
            )

    # -- before the request -------------------------------------------------

    def plan(self, binding: Binding, options: Any) -> Optional[Call]:
        surface = extract.surface_for(options.method, options.url)
        if surface is None:
            _log_unmetered(options.method, options.url)
            return None
        if surface.response_id is not None:
            return self._plan_retrieval(binding, options, surface.response_id)
        body = options.json_data if isinstance(options.json_data, dict) else {}
        model = body.get("model")
        call = OpenAICall(
            binding,
            surface.operation,
            model if isinstance(model, str) else None,
            bool(body.get("stream")),
            options,
        )
        n = body.get("n")
        if isinstance(n, int) and n > 1:
            call.choices = n
        call.background = call.deferred = bool(body.get("background"))
        if call.stream and surface.operation in _INJECTS_USAGE:
            stream_options = body.get("stream_options")
            wants_usage = isinstance(stream_options, dict) and stream_options.get("include_usage")
            if not wants_usage and not binding.stream_options_rejected:
                call.options = _with_body(
                    options,
                    {**body, "stream_options": {**(stream_options or {}), "include_usage": True}},
                )
                call.hide_usage = True
        return call

    def _plan_retrieval(self, binding: Binding, options: Any, response_id: str) -> OpenAICall:
        """``GET /responses/{id}`` (or its cancel): billed to the creating call's customer when known."""
        params = options.params if isinstance(options.params, dict) else {}
        stream = params.get("stream") in (True, "true")
        creator = self.stored.creator(response_id)
        if creator is None:
            call = OpenAICall(binding, "responses", None, stream, options)
        else:
            call = OpenAICall(creator.binding, "responses", creator.request_model, stream, options)
            call.scope = creator.scope
            call.background = True
        call.deferred = True
        return call

    # -- after the response -------------------------------------------------

    def on_result(self, call: Call, result: Any) -> Any:
        planned = cast(OpenAICall, call)
        if planned.hide_usage and _sends_usage_unasked(planned, result):
            planned.hide_usage = False
        if is_raw_response(result):
            attach_raw(result, lambda parsed: self._meter(planned, parsed), _RawBody(self, planned))
        else:
            self._meter(planned, result)
        return result

    def fallback(self, call: Call, exc: Exception) -> Any:
        """An OpenAI-compatible server that rejects ``stream_options``: retry without, and remember."""
        if not call.hide_usage or getattr(exc, "status_code", None) not in (400, 422):
            return None
        if "stream_options" not in str(getattr(exc, "message", exc)):
            return None
        call.binding.stream_options_rejected = True
        call.hide_usage = False
        log_once(
            WARNING,
            f"stream-options-rejected:{call.provider}",
            "usagetap: %s rejects stream_options; streams from it are sent without and recorded as partial",
            call.provider,
        )
        return call.original_options

    def describe(self, response: Any) -> Optional[tuple[str, Callable[[Any], TokenUsage]]]:
        kind = field_of(response, "object")
        if kind == "chat.completion":
            return "chat", extract.chat_usage
        if kind == "text_completion":
            return "completions", extract.chat_usage
        if kind == "response" and extract.response_is_final(response):
            return "responses", extract.responses_usage
        if kind == "response.compaction":
            return "responses.compact", extract.responses_usage
        if kind == "list" and field_of(response, "usage") is not None:
            data = field_of(response, "data") or ()
            if data and all(field_of(item, "object") == "embedding" for item in data):
                return "embeddings", extract.embedding_usage
        return None

    def _meter(self, call: OpenAICall, result: Any) -> None:
        if call.stream:
            if self._streams is None:
                self._streams = _stream_types()
            sync_stream, async_stream = self._streams
            if isinstance(result, (sync_stream, async_stream)):
                tap = self._tap(call)
                (attach_async if isinstance(result, async_stream) else attach_sync)(result, tap)
                return
        if not hasattr(result, "usage"):
            return
        if call.operation.startswith("responses"):
            if call.deferred and result.usage is None:
                response_id = getattr(result, "id", None)
                if call.background and isinstance(response_id, str):
                    self.stored.remember(response_id, call)
                return
            emit(call, lambda response: self.usage_to_record(call, extract.responses_usage(response)), result)
        elif call.operation == "embeddings":
            emit(call, extract.embedding_usage, result)
        else:
            emit(call, extract.chat_usage, result)

    def _tap(self, call: OpenAICall) -> StreamTap:
        if call.operation.startswith("responses"):
            kind = _BackgroundObserver if call.background else _ResponsesObserver
            return StreamTap(call, kind(self, call))
        return StreamTap(call, extract.ChatStreamObserver(call.choices), hides=call.hide_usage)

    def observed(self, call: OpenAICall, body: bytes) -> Observer:
        """An observer of ``call``'s stream that has seen the events of a raw SSE body."""
        observer: Observer = (
            extract.ResponsesStreamObserver()
            if call.operation.startswith("responses")
            else extract.ChatStreamObserver(call.choices)
        )
        for payload in extract.sse_payloads(body):
            observer.observe(payload)
        return observer

    def usage_to_record(self, call: OpenAICall, usage: TokenUsage) -> Optional[TokenUsage]:
        """A Responses API usage as recorded: none for a response still pending or already metered."""
        response_id = usage.response_id
        if not usage.reported:
            if not call.deferred:
                return usage
            if call.background and response_id:
                self.stored.remember(response_id, call)
            return None
        if response_id and not self.stored.first_metering(response_id):
            return None
        return usage

    def from_body(self, call: OpenAICall, sse: bool, body: Optional[bytes]) -> Optional[TokenUsage]:
        """Usage from a raw response's body (JSON, or SSE events), as the caller read it."""
        if body is not None and sse:
            return self.from_events(call, self.observed(call, body))
        usage: Optional[TokenUsage] = None
        if body is not None:
            try:
                usage = extract.usage_from_json(call.operation, body)
            except ValueError:  # a body cut short: the call happened, its usage is unknown
                usage = None
        if usage is None:
            usage = TokenUsage(reported=False)
        return self.usage_to_record(call, usage) if call.operation.startswith("responses") else usage

    def from_events(self, call: OpenAICall, observer: Observer) -> Optional[TokenUsage]:
        """Usage from an observer that has seen a raw body's SSE events."""
        usage = observer.result()
        if usage is None:
            return None
        return self.usage_to_record(call, usage) if call.operation.startswith("responses") else usage


class _ResponsesObserver(extract.ResponsesStreamObserver):
    """A Responses stream's observer whose result goes through the adapter's usage_to_record()."""

    __slots__ = ("adapter", "call")

    def __init__(self, adapter: OpenAIAdapter, call: OpenAICall) -> None:
        super().__init__()
        self.adapter = adapter
        self.call = call

    def result(self) -> Optional[TokenUsage]:  # type: ignore[override]
        return self.adapter.usage_to_record(self.call, super().result())


class _BackgroundObserver(_ResponsesObserver):
    """A background response's stream: its creator is remembered as soon as its id is known, so a
    retrieval made after the stream was broken off is billed to the right customer."""

    __slots__ = ("remembered",)

    tail = 0  # every event is observed as it passes: the creator is remembered at once

    def __init__(self, adapter: OpenAIAdapter, call: OpenAICall) -> None:
        super().__init__(adapter, call)
        self.remembered = False

    def observe(self, event: Any) -> None:
        super().observe(event)
        if not self.remembered and self.response_id:
            self.remembered = True
            self.adapter.stored.remember(self.response_id, self.call)


class _RawBody(BodyMeter):
    """How a raw response of one call is metered from its body."""

    __slots__ = ("adapter", "call")

    def __init__(self, adapter: OpenAIAdapter, call: OpenAICall) -> None:
        self.adapter = adapter
        self.call = call

    def on_stream(self, parsed: Any) -> None:
        self.adapter._meter(self.call, parsed)

    def on_body(self, body: Optional[bytes], sse: bool, complete: bool) -> None:
        adapter, call = self.adapter, self.call
        if sse and body is not None and not complete:  # read in part: is the usage seen final?
            observer = adapter.observed(call, body)
            status = "ok" if observer.usage_final else "partial"
            emit(call, lambda seen: adapter.from_events(call, seen), observer, status)
            return
        emit(call, lambda source: adapter.from_body(call, sse, source), body)

    def hider(self) -> Optional[Callable[[bytes], bool]]:
        return extract.UsageEventHider() if self.call.hide_usage else None


# Servers that send the usage-only chunk whether asked or not: theirs is shown. Novita, directly or
# through Hugging Face's router (a path of its own, or a model named ``...:novita``).
_UNASKED_USAGE_HOSTS = frozenset({"api.novita.ai"})
_HF_ROUTER = "router.huggingface.co"


def _sends_usage_unasked(call: OpenAICall, result: Any) -> bool:
    """Whether the server that answered ``call`` sends usage unasked (see ``_UNASKED_USAGE_HOSTS``)."""
    response = getattr(result, "http_response", None) or getattr(result, "response", None)
    url = getattr(response, "url", None)
    host = getattr(url, "host", None)
    if host in _UNASKED_USAGE_HOSTS:
        return True
    if host != _HF_ROUTER:
        return False
    path = getattr(url, "path", "") or ""
    return path.startswith("/novita/") or (call.request_model or "").endswith(":novita")


def _log_unmetered(method: str, url: str) -> None:
    """Name, once, a POST surface that passes through unmetered (audio, images, moderations, ...)."""
    if method.lower() != "post":
        return
    parts = [p for p in url.split("?", 1)[0].split("/") if p]
    if parts[:1] == ["openai"]:
        parts = parts[1:]
    if parts[:1] == ["deployments"]:
        parts = parts[2:]
    name = "/".join(parts[:2] if len(parts) > 1 and _WORD.match(parts[1]) else parts[:1])
    log_once(DEBUG, f"unmetered:{name}", "usagetap: not metered, passed through untouched: %s", name)


def _with_body(options: Any, body: dict[str, Any]) -> Any:
    """A shallow copy of the SDK's request options with a new JSON body; the caller's objects stay as is."""
    new = copy.copy(options)
    new.json_data = body
    return new


_import_httpx2()
ADAPTER = OpenAIAdapter()
