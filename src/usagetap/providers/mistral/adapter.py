"""Instrumentation for the ``mistralai`` SDK (1.x, 2.x, 3.x): chat, FIM and agents completions, sync
and async, streamed or not, and embeddings.

Calls are intercepted where the SDK sends them (:mod:`.intercept`); a billable one is planned from
its HTTP request (path and model) and metered from the HTTP response the SDK gets back: its JSON at
once, or an event stream as the SDK reads it (the usage is in its last chunk), closes or drops it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any, Optional
from urllib.parse import urlsplit

from ..._log import DEBUG, log_once
from ...instrument._adapter import Adapter
from ...instrument._binding import Binding
from ...instrument._calls import Call, emit
from ...instrument._hosts import provider_for_host
from ...instrument._raw import BodyMeter, attach_body
from ..base import TokenUsage, field_of
from . import intercept, usage

__all__ = ["ADAPTER", "MistralAdapter"]

_KNOWN_HOSTS = {"api.mistral.ai": "mistral", "codestral.mistral.ai": "mistral"}
# the model, when the SDK serializes it first (it does: ``model`` is the request's first field)
_LEADING_MODEL = re.compile(rb'^\s*\{\s*"model"\s*:\s*("(?:[^"\\]|\\.)*")')
_RESPONSES = {
    "ChatCompletionResponse": "chat",
    "FIMCompletionResponse": "fim",
    "EmbeddingResponse": "embeddings",
}


def _request_body(request: Any) -> Optional[bytes]:
    """The request's JSON body; None when it was not read into memory."""
    try:
        content = request.content
    except Exception:
        return None
    return content if isinstance(content, bytes) else None


def _request_model(content: Optional[bytes]) -> Optional[str]:
    """The model a request body asks for (None if it says none): the call is metered either way."""
    if content is None:
        return None
    try:
        match = _LEADING_MODEL.match(content)
        if match is None:
            model = json.loads(content).get("model")
        else:
            quoted = match.group(1)
            model = quoted[1:-1].decode() if b"\\" not in quoted else json.loads(quoted)
    except Exception:  # not a JSON object: the response names its model
        return None
    return model if isinstance(model, str) else None


def _body_usage(source: tuple[Optional[bytes], bool]) -> TokenUsage:
    return usage.body_usage(*source)


class _Body(BodyMeter):
    """Emits the call's record from its response body (read, closed or dropped)."""

    __slots__ = ("call",)

    def __init__(self, call: Call) -> None:
        self.call = call

    def on_stream(self, parsed: Any) -> None:
        return

    def on_body(self, body: Optional[bytes], sse: bool, complete: bool) -> None:
        emit(self.call, _body_usage, (body, sse))


class MistralAdapter(Adapter):
    family = "mistral"

    def provider_for(self, client: Any) -> str:
        url = urlsplit(client.sdk_configuration.get_server_details()[0])
        return provider_for_host(url.hostname or "", url.port, _KNOWN_HOSTS, "mistral")

    def plan(self, binding: Binding, options: Any) -> Optional[Call]:
        request, stream = intercept.request_of(options)
        operation = usage.operation_for(request.url.path) if request.method == "POST" else None
        if operation is None:
            return None
        body = _request_body(request)
        model = None if operation == "agents" else _request_model(body)
        call = Call(binding, operation, model, stream, options)
        call.request = body
        return call

    def on_result(self, call: Call, result: Any) -> Any:
        if 200 <= result.status_code < 300:  # the SDK raises the error a hook let through after this
            attach_body(result, _Body(call))
        return result

    def describe(self, response: Any) -> Optional[tuple[str, Callable[[Any], TokenUsage]]]:
        """An SDK response by its type; its JSON (``provider="mistral"``) by its ``object``."""
        operation = _RESPONSES.get(type(response).__name__)
        if operation is not None and type(response).__module__.startswith("mistralai"):
            return operation, usage.response_usage
        kind = field_of(response, "object")
        if kind == "chat.completion":
            return "chat", usage.response_usage
        if (
            kind == "list"
            and field_of(response, "data") is not None
            and field_of(response, "usage") is not None
        ):
            return "embeddings", usage.response_usage
        return None

    def note_unmetered(self, client: Any) -> None:
        """Name, once, the surfaces passed through untouched."""
        log_once(
            DEBUG,
            "unmetered:mistral",
            "usagetap: Mistral clients are metered for %s; other surfaces (beta conversations, OCR, "
            "classifiers, audio) are passed through untouched",
            ", ".join(intercept.RESOURCES),
        )

    def check(self, client: Any) -> None:
        if not hasattr(client, "sdk_configuration") or not intercept.resources_of(client):
            raise TypeError(f"usagetap.wrap() needs a Mistral client, got {type(client).__qualname__}")

    def install(self, client: Any, binding: Binding) -> None:
        intercept.install(client, binding)

    def copy(self, client: Any) -> Any:
        return intercept.copy_of(client)

    def patch(self, classes: tuple[type, ...], patched: dict[tuple[type, str], Any]) -> None:
        intercept.patch(self, patched)


ADAPTER = MistralAdapter()
