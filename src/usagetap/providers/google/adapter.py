"""Instrumentation for the ``google-genai`` SDK: the Gemini API and Vertex AI (``vertexai=True``).

Hooked at the SDK's ``BaseApiClient`` (see :mod:`.hooks`), where every surface passes:
``models.generate_content`` / ``generate_content_stream``, ``client.aio.models.*``, ``chats``
(which call the models), automatic function calling (one record per model request) and
``models.embed_content``. A ``Client`` and its ``.aio`` share one API client: wrapping either
meters both, with one binding. Records say ``google`` for the Gemini API and ``vertex`` for
Vertex AI.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any, Optional
from urllib.parse import urlsplit

from ..._log import DEBUG, log_once
from ...instrument._adapter import Adapter
from ...instrument._binding import ATTR, Binding
from ...instrument._calls import Call, emit
from ...instrument._hosts import provider_for_host
from ...instrument._streams import StreamTap
from ..base import TokenUsage, field_of
from . import hooks
from . import usage as extract

__all__ = ["ADAPTER", "GoogleAdapter"]

_KNOWN_HOSTS = {
    "generativelanguage.googleapis.com": "google",
    "aiplatform.googleapis.com": "vertex",
}
_OPERATIONS = {
    "generateContent": extract.GENERATE,
    "streamGenerateContent": extract.GENERATE,
    "embedContent": extract.EMBEDDINGS,
    "batchEmbedContents": extract.EMBEDDINGS,
    "predict": extract.EMBEDDINGS,
}


def _base_api_client() -> type:
    from google.genai._api_client import BaseApiClient

    return BaseApiClient


def _client_classes() -> tuple[type, ...]:
    from google.genai.client import AsyncClient, Client

    return Client, AsyncClient


def _target(path: str) -> Optional[tuple[str, str]]:
    """``(model, method)`` of a path such as ``models/gemini-2.5-flash:generateContent?alt=sse``."""
    path = path.split("?", 1)[0]
    resource, colon, method = path.rpartition(":")
    if not colon or "models/" not in resource:
        return None
    return resource.rpartition("models/")[2], method


def _embeds(body: Any) -> bool:
    """Whether a ``:predict`` request asks for embeddings (its instances carry ``content``)."""
    instances = field_of(body, "instances")
    return isinstance(instances, list) and bool(instances) and field_of(instances[0], "content") is not None


class GoogleAdapter(Adapter):
    family = "google"

    def provider_for(self, client: Any) -> str:
        api = hooks.api_client_of(client)
        base = field_of(getattr(api, "_http_options", None), "base_url") or ""
        url = urlsplit(str(base))
        host = url.hostname or ""
        name = provider_for_host(host, url.port, _KNOWN_HOSTS, self.family)
        if host.endswith("-aiplatform.googleapis.com") or (name == self.family and api.vertexai):
            return "vertex"
        return name

    def plan(self, binding: Binding, options: Any) -> Optional[Call]:
        request, stream = options
        if str(request.method).lower() != "post" or not isinstance(request.path, str):
            return None
        target = _target(request.path)
        if target is None or target[1] not in _OPERATIONS:
            return None
        model, method = target
        if method == "predict" and not _embeds(request.body):
            return None
        return Call(binding, _OPERATIONS[method], model or None, stream, options)

    def on_result(self, call: Call, result: Any) -> Any:
        self.meter(call, result)
        return result

    def meter(self, call: Call, result: Any) -> None:
        """Emit the record of one whole response (an ``SdkHttpResponse``, or a dict in google-genai 1.x)."""
        body = getattr(result, "body", result)
        if not body:
            emit(call, _unreported, call.request_model)
        elif call.operation == extract.EMBEDDINGS:
            emit(call, extract.embed_usage, body)
        else:
            emit(call, extract.content_usage, body)

    def tap(self, call: Call) -> StreamTap:
        """The tap of a ``streamGenerateContent`` stream."""
        return StreamTap(call, extract.ContentStreamObserver())

    def describe(self, response: Any) -> Optional[tuple[str, Callable[[Any], TokenUsage]]]:
        if extract.is_content_response(response):
            return extract.GENERATE, extract.content_usage
        if extract.is_embed_response(response):
            return extract.EMBEDDINGS, extract.embed_usage
        return None

    def note_unmetered(self, client: Any) -> None:
        """Name, once, the surfaces that are passed through unmetered."""
        log_once(
            DEBUG,
            "unmetered:google",
            "usagetap: not metered, passed through untouched: google-genai live (websocket) sessions, "
            "interactions, batch jobs, image and video generation",
        )

    def check(self, client: Any) -> None:
        if not isinstance(client, _client_classes()):
            raise TypeError(
                f"usagetap.wrap() needs a google.genai Client or AsyncClient, got {type(client).__qualname__}"
            )

    def install(self, client: Any, binding: Binding) -> None:
        vars(client)[ATTR] = binding
        aio = vars(client).get("_aio")
        if aio is not None:
            vars(aio)[ATTR] = binding
        hooks.install(client._api_client, binding)

    def copy(self, client: Any) -> Any:
        old = client._api_client
        new = type(old)(
            vertexai=old.vertexai,
            api_key=old.api_key,
            credentials=getattr(old, "_credentials", None),
            project=old.project,
            location=old.location,
            http_options=old._http_options,
        )
        return _rebound(client, old, new)

    def patch(self, classes: tuple[type, ...], patched: dict[tuple[type, str], Any]) -> None:
        hooks.patch(_base_api_client(), self, patched)


def _unreported(model: Optional[str]) -> TokenUsage:
    return TokenUsage(model=model, reported=False, issue="the response had no body")


def _rebound(obj: Any, old: Any, new: Any) -> Any:
    """A shallow copy of ``obj`` (a client, its ``.aio``, a module) on the API client ``new``."""
    clone = copy.copy(obj)
    state = vars(clone)
    state.pop(ATTR, None)
    for name, value in list(state.items()):
        if value is old:
            state[name] = new
        elif getattr(value, "_api_client", None) is old:
            state[name] = _rebound(value, old, new)
    return clone


ADAPTER = GoogleAdapter()
