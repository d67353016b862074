"""respx routes that answer like the OpenAI and Anthropic APIs (JSON and SSE, usage included).

For tests that already mock httpx with `respx <https://lundberg.github.io/respx/>`_
(``pip install 'usagetap[pytest]'``). The answers come from the same wire formats as
:class:`~usagetap.testing.ProviderServer` (chat completions, responses, embeddings, messages,
streams with their final usage, ...), with deterministic token counts kept in :attr:`ProviderRoutes.issued`::

    import respx
    from usagetap.testing.respx import ProviderRoutes, http_client

    with respx.mock(assert_all_called=False) as router:
        provider = ProviderRoutes(router)
        client = usagetap.wrap(openai.OpenAI(api_key="test", http_client=http_client(router, openai)))
        client.chat.completions.create(model="gpt-4.1", messages=[...])
    assert provider.totals()["input_tokens"] == ...

``respx.mock`` patches the ``httpx`` package. SDKs built on ``httpx2`` (openai 3.x, anthropic 2.x)
send through it only when given ``http_client=http_client(router, sdk)``: a client of the HTTP
library the SDK's base client imports whose transport is the router (``asynchronous=True`` for
``AsyncOpenAI`` / ``AsyncAnthropic``). SDKs on ``httpx`` need no ``http_client``.
"""

from __future__ import annotations

import importlib
import json
from collections.abc import Callable
from types import ModuleType
from typing import Any, Optional

import httpx
import respx

from ._server import ProviderServer
from ._wire import Issued

__all__ = ["ANTHROPIC_HOST", "OPENAI_HOST", "ProviderRoutes", "http_client", "transport"]

OPENAI_HOST = "api.openai.com"
ANTHROPIC_HOST = "api.anthropic.com"


class ProviderRoutes:
    """Routes on ``router`` for OpenAI's and Anthropic's hosts that answer like their APIs.

    ``openai`` and ``anthropic`` are the respx routes (``.calls``, ``.called``); the usage each
    response reported is in :attr:`issued` by response id, summed by :meth:`totals`.
    :attr:`server` is the (never started) :class:`~usagetap.testing.ProviderServer` answering
    them: its switches (``fail_next()``, ``report_usage``, ``stream_error_after``, ...) apply.
    """

    def __init__(
        self,
        router: respx.Router,
        *,
        openai_host: str = OPENAI_HOST,
        anthropic_host: str = ANTHROPIC_HOST,
    ) -> None:
        self.server = ProviderServer(impersonate=None)
        self.openai: respx.Route = router.route(host=openai_host).mock(side_effect=self.respond)
        self.anthropic: respx.Route = router.route(host=anthropic_host).mock(side_effect=self.respond)

    @property
    def issued(self) -> dict[str, Issued]:
        """The usage each response reported, by response id."""
        return self.server.issued

    def totals(self) -> dict[str, int]:
        """Every response's usage summed: ``input_tokens``, ``output_tokens``, ``cache_read_tokens``, ..."""
        return self.server.totals()

    def fail_next(
        self, status: int = 500, *, count: int = 1, headers: Optional[dict[str, str]] = None
    ) -> None:
        """Answer the next ``count`` requests with ``status`` (an error body in the provider's shape)."""
        self.server.fail_next(status, count=count, headers=headers)

    def respond(self, request: httpx.Request) -> httpx.Response:
        """The provider's answer to ``request``."""
        target = request.url.raw_path.decode("ascii")
        reply = self.server.answer(request.method, target, dict(request.headers), request.read())
        if reply.raw is not None:
            return httpx.Response(reply.status, headers=reply.headers, content=reply.raw)
        if reply.events is not None:
            headers = {"content-type": "text/event-stream", **reply.headers}
            return httpx.Response(reply.status, headers=headers, content=b"".join(self.server.frames(reply)))
        return httpx.Response(
            reply.status,
            headers={"content-type": "application/json", **reply.headers},
            content=json.dumps(reply.body).encode(),
        )


def transport(router: respx.Router, hx: ModuleType) -> Any:
    """A ``hx.MockTransport`` (``hx``: ``httpx`` or ``httpx2``) that answers with ``router``'s routes."""
    return hx.MockTransport(_bridge(router, hx))


def http_client(router: respx.Router, sdk: ModuleType, *, asynchronous: bool = False) -> Any:
    """An ``http_client=`` for ``sdk`` (the ``openai`` or ``anthropic`` module) routed by ``router``.

    A client of the HTTP library the SDK's base client imports (``httpx2`` or ``httpx``).
    """
    hx = _http_library(sdk)
    cls = hx.AsyncClient if asynchronous else hx.Client
    return cls(transport=transport(router, hx))


def _http_library(sdk: ModuleType) -> ModuleType:
    base = importlib.import_module(sdk.__name__ + "._base_client")
    return importlib.import_module("httpx2" if hasattr(base, "httpx2") else "httpx")


def _bridge(router: respx.Router, hx: ModuleType) -> Callable[[Any], Any]:
    """``router``'s handler for requests and responses of ``hx`` (converted to and from httpx's)."""

    def handle(request: Any) -> Any:
        asked = httpx.Request(
            request.method,
            str(request.url),
            headers=list(request.headers.multi_items()),
            content=request.read(),
        )
        answer = router.handler(asked)
        if hx is httpx:
            return answer
        return hx.Response(
            answer.status_code, headers=list(answer.headers.multi_items()), content=answer.read()
        )

    return handle
