"""Instrumentation for the ``openai`` SDK (1.x, 2.x, 3.x), found by probing, never by version checks."""

from __future__ import annotations

import copy
import logging
from typing import Any, Callable, Optional

from .._log import log_once
from ..providers import openai as extract
from ..providers.base import TokenUsage, field_of
from ._binding import Binding
from ._calls import Call, emit
from ._hosts import provider_for_host
from ._raw import attach_raw, is_raw_response
from ._streams import StreamTap, attach_async, attach_sync

__all__ = ["ADAPTER", "OpenAIAdapter"]

_KNOWN_HOSTS: dict[str, str] = {"api.openai.com": "openai"}


def _stream_types() -> tuple[type, type]:
    import openai

    return openai.Stream, openai.AsyncStream


class OpenAIAdapter:
    family = "openai"

    def __init__(self) -> None:
        self._streams: Optional[tuple[type, type]] = None

    def provider_for(self, client: Any) -> str:
        if any(cls.__name__.startswith(("AzureOpenAI", "AsyncAzureOpenAI")) for cls in type(client).__mro__):
            return "azure"
        url = client.base_url
        return provider_for_host(url.host, url.port, _KNOWN_HOSTS)

    def client_classes(self) -> tuple[type, ...]:
        import openai

        return openai.OpenAI, openai.AsyncOpenAI

    def plan(self, binding: Binding, options: Any) -> Optional[Call]:
        operation = extract.operation_for(options.method, options.url)
        if operation != "chat":
            if options.method.lower() == "post":
                log_once(
                    logging.DEBUG,
                    f"unmetered:{options.url.split('/')[1:2]}",
                    "usagetap: not metered: POST %s",
                    options.url,
                )
            return None
        body = options.json_data if isinstance(options.json_data, dict) else {}
        stream = bool(body.get("stream"))
        model = body.get("model")
        call = Call(binding, operation, model if isinstance(model, str) else None, stream, options)
        if stream:
            stream_options = body.get("stream_options")
            wants_usage = isinstance(stream_options, dict) and stream_options.get("include_usage")
            if not wants_usage and not binding.stream_options_rejected:
                call.options = _with_body(
                    options,
                    {**body, "stream_options": {**(stream_options or {}), "include_usage": True}},
                )
                call.hide_usage = True
        return call

    def on_result(self, call: Call, result: Any) -> Any:
        if is_raw_response(result):
            attach_raw(result, lambda parsed: self._meter(call, parsed))
        else:
            self._meter(call, result)
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
            logging.WARNING,
            f"stream-options-rejected:{call.provider}",
            "usagetap: %s rejects stream_options; streams from it are sent without and recorded as partial",
            call.provider,
        )
        return call.original_options

    def describe(self, response: Any) -> Optional[tuple[str, Callable[[Any], TokenUsage]]]:
        kind = field_of(response, "object")
        if kind == "chat.completion":
            return "chat", extract.chat_usage
        return None

    def _meter(self, call: Call, result: Any) -> None:
        if call.stream:
            if self._streams is None:
                self._streams = _stream_types()
            sync_stream, async_stream = self._streams
            if isinstance(result, (sync_stream, async_stream)):
                tap = StreamTap(
                    call,
                    extract.ChatStreamObserver(),
                    extract.is_usage_only_chunk if call.hide_usage else None,
                )
                (attach_async if isinstance(result, async_stream) else attach_sync)(result, tap)
                return
        if hasattr(result, "usage"):
            emit(call, extract.chat_usage, result)


def _with_body(options: Any, body: dict[str, Any]) -> Any:
    """A shallow copy of the SDK's request options with a new JSON body; the caller's objects stay as is."""
    new = copy.copy(options)
    new.json_data = body
    return new


ADAPTER = OpenAIAdapter()
