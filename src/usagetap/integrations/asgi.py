"""ASGI middleware (FastAPI, Starlette, any ASGI app): one customer scope per request.

::

    from fastapi import FastAPI, Request
    from usagetap.integrations.asgi import UsagetapMiddleware

    def customer_of(request: Request) -> str | None:
        return request.headers.get("x-org-id")

    app = FastAPI()
    app.add_middleware(UsagetapMiddleware, resolver=customer_of, dimensions={"product": "api"})

Every LLM call made while the request is handled — in async endpoints, in sync
endpoints (Starlette runs them in a thread with a copy of the context), in
background tasks and in streamed responses — is billed to the resolved customer.

The resolver receives a ``starlette.requests.Request`` (an ``HTTPConnection`` for
websockets) built on the request's ASGI scope, before routing: headers, URL, query,
cookies and ``request.state`` / ``request.user`` set by middleware outside this one
are there; path parameters and the body are not. Add this middleware *before* an
authentication middleware so that the latter runs first. With ``raw_scope=True``
the resolver receives the ASGI scope dict instead, and Starlette is not needed.
It may be sync or async, and returns a customer id, ``None``, or a
``(customer_id, dimensions)`` pair.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Mapping, MutableMapping
from typing import Any, Optional

from .._context import customer
from .._record import Scalar, validate_dimensions
from ._resolve import attribution, missing, resolver_failed

__all__ = ["UsagetapMiddleware"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


def _connection_factory() -> Callable[[Scope], Any]:
    try:
        from starlette.requests import HTTPConnection, Request
    except ImportError:
        raise missing("starlette", "fastapi") from None

    def connection(scope: Scope) -> Any:
        return Request(scope) if scope["type"] == "http" else HTTPConnection(scope)

    return connection


class UsagetapMiddleware:
    """Open ``usagetap.customer(...)`` around each HTTP and websocket request, from ``resolver(request)``.

    ``dimensions`` are stamped on every call made while serving; the resolver's own
    dimensions win over them. Lifespan events pass through untouched.
    """

    def __init__(
        self,
        app: ASGIApp,
        resolver: Callable[[Any], Any],
        *,
        dimensions: Optional[Mapping[str, Scalar]] = None,
        raw_scope: bool = False,
    ) -> None:
        if not callable(resolver):
            raise TypeError(f"resolver must be callable, got {type(resolver).__name__}")
        self.app = app
        self.resolver = resolver
        self.dimensions = validate_dimensions(dimensions or {}, where="UsagetapMiddleware")
        self._connection: Callable[[Scope], Any] = (
            (lambda scope: scope) if raw_scope else _connection_factory()
        )
        self._name = getattr(resolver, "__qualname__", type(resolver).__name__)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        scoped = await self._attribution(scope)
        if scoped is None:
            await self.app(scope, receive, send)
            return
        with scoped:
            await self.app(scope, receive, send)

    async def _attribution(self, scope: Scope) -> Optional[customer]:
        try:
            resolved = self.resolver(self._connection(scope))
            if inspect.isawaitable(resolved):
                resolved = await resolved
            return attribution(resolved, self.dimensions)
        except Exception as exc:
            resolver_failed(f"UsagetapMiddleware({self._name})", exc)
            return None
