"""Instrumentation for the ``google-genai`` SDK: the Gemini API and Vertex AI (``vertexai=True``).

Hooked at the SDK's ``BaseApiClient`` (see :mod:`.hooks`), where every surface passes:
``models.generate_content`` / ``generate_content_stream``, ``client.aio.models.*``, ``chats``
(which call the models), automatic function calling (one record per model request) and
``models.embed_content``, and the Gemini API's batch jobs with inlined requests (each response
one record, at batch rates, when ``batches.get`` first finds the job succeeded; billed to the
customer in scope then, else to the one in scope when the job was created). A ``Client`` and
its ``.aio`` share one API client: wrapping either meters both, with one binding. Records say
``google`` for the Gemini API and ``vertex`` for Vertex AI.
"""

from __future__ import annotations

import copy
import json
import re
import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping
from typing import Any, Optional
from urllib.parse import urlsplit

from ..._context import Scope
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
_BATCH = re.compile(r"batches/(?P<id>[^/:?]+)")
_REMEMBERED_BATCHES = 4096
_OPERATIONS = {
    "generateContent": extract.GENERATE,
    "streamGenerateContent": extract.GENERATE,
    "embedContent": extract.EMBEDDINGS,
    "batchEmbedContents": extract.EMBEDDINGS,
    "predict": extract.EMBEDDINGS,
}


class _BatchCreate(Call):
    """``POST models/{m}:batchGenerateContent``: not billed itself; its scope is kept for the results."""

    __slots__ = ()


class _BatchGet(Call):
    """``GET batches/{id}``: a succeeded job's inlined responses are billed, once."""

    __slots__ = ("batch_id",)

    batch_id: str


def _base_api_client() -> type:
    from google.genai._api_client import BaseApiClient

    return BaseApiClient


def _client_classes() -> tuple[type, ...]:
    from google.genai.client import AsyncClient, Client

    return Client, AsyncClient


def _embeds(body: Any) -> bool:
    """Whether a ``:predict`` request asks for embeddings (its instances carry ``content``)."""
    instances = field_of(body, "instances")
    return isinstance(instances, list) and bool(instances) and field_of(instances[0], "content") is not None


class GoogleAdapter(Adapter):
    family = "google"

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._batch_scopes: OrderedDict[str, Scope] = OrderedDict()
        self._batches_billed: OrderedDict[str, None] = OrderedDict()

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
        verb, path, body, stream = options
        if not isinstance(path, str):
            return None
        verb = str(verb).lower()
        if verb == "get":
            batch = _BATCH.fullmatch(path.split("?", 1)[0])
            return None if batch is None else self._batch_get(binding, options, batch["id"])
        if verb != "post":
            return None
        resource, colon, method = path.split("?", 1)[0].rpartition(":")  # models/{model}:{method}
        if not colon or "models/" not in resource:
            return None
        model = resource.rpartition("models/")[2]
        if method == "batchGenerateContent":
            return _BatchCreate(binding, extract.GENERATE, model, False, options)
        if method not in _OPERATIONS:
            return None
        if method == "predict" and not _embeds(body):
            return None
        call = Call(binding, _OPERATIONS[method], model or None, stream, options)
        call.request = body if type(body) is dict or isinstance(body, Mapping) else None
        return call

    def on_result(self, call: Call, result: Any) -> Any:
        self.meter(call, result)
        return result

    def meter(self, call: Call, result: Any) -> None:
        """Emit the record of one whole response (an ``SdkHttpResponse``, or a dict in google-genai 1.x)."""
        body = getattr(result, "body", result)
        if isinstance(call, (_BatchCreate, _BatchGet)):
            self._meter_batch(call, json.loads(body) if isinstance(body, (str, bytes)) else body)
        elif not body:
            emit(call, _unreported, call.request_model)
        elif call.operation == extract.EMBEDDINGS:
            emit(call, extract.embed_usage, body)
        else:
            emit(call, extract.content_usage, body)

    def _batch_get(self, binding: Binding, options: Any, batch_id: str) -> Call:
        call = _BatchGet(binding, extract.GENERATE, None, False, options)
        call.batch_id = f"batches/{batch_id}"
        if call.scope.customer is None:
            with self._lock:
                remembered = self._batch_scopes.get(call.batch_id)
            if remembered is not None:
                call.scope = remembered
        return call

    def _meter_batch(self, call: Call, job: Any) -> None:
        if isinstance(call, _BatchCreate):
            name = field_of(job, "name")
            if isinstance(name, str):
                with self._lock:
                    _remember(self._batch_scopes, name, call.scope)
            return
        results = extract.batch_results(job)
        if results is None or not isinstance(call, _BatchGet):
            return
        with self._lock:
            if call.batch_id in self._batches_billed:
                return
            _remember(self._batches_billed, call.batch_id, None)
        model, responses = results
        for response in responses:
            embeds = extract.is_embed_response(response)
            each = Call(call.binding, extract.EMBEDDINGS if embeds else extract.GENERATE, model, False, None)
            each.scope = call.scope
            emit(each, extract.batch_embed_usage if embeds else extract.batch_content_usage, response)

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
            "interactions, Vertex AI batch prediction jobs, image and video generation",
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


def _remember(memory: OrderedDict[str, Any], key: str, value: Any) -> None:
    """Keep ``key`` (the newest of at most :data:`_REMEMBERED_BATCHES`); the caller holds the lock."""
    memory[key] = value
    memory.move_to_end(key)
    while len(memory) > _REMEMBERED_BATCHES:
        memory.popitem(last=False)


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
