"""Django middleware: one customer scope per request, under WSGI or ASGI.

::

    # settings.py
    MIDDLEWARE = [
        ...,
        "django.contrib.auth.middleware.AuthenticationMiddleware",
        "usagetap.integrations.django.UsagetapMiddleware",   # after authentication
    ]
    USAGETAP_RESOLVER = "myapp.billing.customer_of"          # or the function itself
    USAGETAP_DIMENSIONS = {"product": "web"}                 # optional

    # myapp/billing.py
    def customer_of(request):
        user = request.user
        return str(user.organization_id) if user.is_authenticated else None

Or configure it in code, by subclassing::

    class BillingMiddleware(UsagetapMiddleware):
        dimensions = {"product": "web"}

        def resolve(self, request):
            return request.headers.get("X-Org-Id")

The resolver (``USAGETAP_RESOLVER``, the ``resolver`` argument or an overridden
:meth:`UsagetapMiddleware.resolve`) may be sync or async and returns a customer id,
``None``, or a ``(customer_id, dimensions)`` pair. Under ASGI a sync resolver runs
through ``sync_to_async``, so it may use the ORM (``request.user``). Calls made while
a ``StreamingHttpResponse`` is iterated, after the view returned, are billed to the
request's customer too.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Mapping
from typing import Any, ClassVar, Optional

from .._context import customer
from .._record import Scalar, validate_dimensions
from ._resolve import attribution, missing, resolver_failed

__all__ = ["UsagetapMiddleware"]

try:
    from asgiref.sync import async_to_sync, iscoroutinefunction, markcoroutinefunction, sync_to_async
except ImportError:  # pragma: no cover - asgiref comes with Django
    raise missing("Django", "django") from None


class UsagetapMiddleware:
    """Open ``usagetap.customer(...)`` around each request, from the configured resolver."""

    sync_capable = True
    async_capable = True

    dimensions: ClassVar[Mapping[str, Scalar]] = {}
    """Dimensions stamped on every call; ``USAGETAP_DIMENSIONS`` or the constructor's override them."""

    def __init__(
        self,
        get_response: Callable[[Any], Any],
        resolver: Optional[Callable[[Any], Any]] = None,
        *,
        dimensions: Optional[Mapping[str, Scalar]] = None,
    ) -> None:
        try:
            from django.conf import settings
            from django.core.exceptions import ImproperlyConfigured
            from django.utils.module_loading import import_string
        except ImportError:  # pragma: no cover
            raise missing("Django", "django") from None

        self.get_response = get_response
        overridden = type(self).resolve is not UsagetapMiddleware.resolve
        if resolver is None and not overridden:
            resolver = getattr(settings, "USAGETAP_RESOLVER", None)
            if resolver is None:
                raise ImproperlyConfigured(
                    "UsagetapMiddleware needs a resolver: set USAGETAP_RESOLVER to a function of the "
                    "request (or its dotted path), or subclass it and override resolve()"
                )
            if isinstance(resolver, str):
                resolver = import_string(resolver)
            if not callable(resolver):
                raise ImproperlyConfigured(f"USAGETAP_RESOLVER is not callable: {resolver!r}")
        self._resolver = resolver
        self._target: Callable[[Any], Any] = self.resolve if overridden or resolver is None else resolver
        if dimensions is None:
            dimensions = getattr(settings, "USAGETAP_DIMENSIONS", None) or type(self).dimensions
        self._dimensions = validate_dimensions(dimensions, where="UsagetapMiddleware")
        self._name = getattr(self._target, "__qualname__", type(self).__name__)
        self._async_resolver = iscoroutinefunction(self._target)
        self._async = iscoroutinefunction(get_response)
        if self._async:
            markcoroutinefunction(self)

    def resolve(self, request: Any) -> Any:
        """The customer of ``request``: an id, ``None``, or ``(id, dimensions)``. Override in a subclass."""
        assert self._resolver is not None
        return self._resolver(request)

    def __call__(self, request: Any) -> Any:
        if self._async:
            return self.__acall__(request)
        try:
            resolve = async_to_sync(self._target) if self._async_resolver else self._target
            scoped = attribution(resolve(request), self._dimensions)
        except Exception as exc:
            resolver_failed(f"UsagetapMiddleware({self._name})", exc)
            scoped = None
        if scoped is None:
            return self.get_response(request)
        with scoped:
            response = self.get_response(request)
        return _scope_streaming(response, scoped)

    async def __acall__(self, request: Any) -> Any:
        try:
            resolve = self._target if self._async_resolver else sync_to_async(self._target)
            scoped = attribution(await resolve(request), self._dimensions)
        except Exception as exc:
            resolver_failed(f"UsagetapMiddleware({self._name})", exc)
            scoped = None
        if scoped is None:
            return await self.get_response(request)
        with scoped:
            response = await self.get_response(request)
        return _scope_streaming(response, scoped)


def _scope_streaming(response: Any, scoped: customer) -> Any:
    """Let a streamed body, iterated after the view returned, run in the request's scope."""
    if not getattr(response, "streaming", False) or getattr(response, "file_to_stream", None) is not None:
        return response
    content = response.streaming_content
    if getattr(response, "is_async", False):
        response.streaming_content = _scoped_async(content, scoped)
    else:
        response.streaming_content = _scoped_sync(content, scoped)
    return response


def _scoped_sync(content: Iterable[bytes], scoped: customer) -> Iterator[bytes]:
    chunks = iter(content)
    while True:
        with scoped:
            chunk = next(chunks, None)
        if chunk is None:
            return
        yield chunk


async def _scoped_async(content: AsyncIterator[bytes], scoped: customer) -> AsyncIterator[bytes]:
    chunks = content.__aiter__()
    while True:
        with scoped:
            try:
                chunk = await chunks.__anext__()
            except StopAsyncIteration:
                return
        yield chunk
