"""google-genai's choke point: every call goes through its ``BaseApiClient``.

``request`` / ``async_request`` answer with one JSON body, ``request_streamed`` /
``async_request_streamed`` with its chunks (a generator, or an async generator returned once the
response's headers are in). ``wrap()`` puts hooks on one API client's instance; ``instrument()``
puts wrapt wrappers on the class. Each hook plans the call, lets the customer policy admit it,
sends it with the SDK's own method and hands the result to the adapter; the caller gets the
SDK's result (a stream: the same chunks) or the SDK's own exception.
"""

from __future__ import annotations

import types
from collections.abc import AsyncIterator, Callable, Iterator
from typing import TYPE_CHECKING, Any, Optional

from ... import _switch
from ..._customer_policy import admit
from ..._log import internal_error
from ...instrument._binding import ATTR, Binding
from ...instrument._calls import Call, failed

if TYPE_CHECKING:
    from ...instrument._streams import StreamTap
    from .adapter import GoogleAdapter

__all__ = ["METHODS", "Request", "api_client_of", "install", "patch"]

METHODS = ("request", "request_streamed", "async_request", "async_request_streamed")
_AUTO = "_usagetap_auto_binding"


Request = tuple[Any, Any, Any, bool]
"""A request as ``plan()`` sees it: ``(http_method, path, request_dict, streamed)``."""


def api_client_of(client: Any) -> Any:
    """The ``BaseApiClient`` of a ``Client`` / ``AsyncClient`` (or the API client itself)."""
    return getattr(client, "_api_client", client)


def _plan(binding: Binding, args: tuple[Any, ...], kwargs: dict[str, Any], stream: bool) -> Optional[Call]:
    try:
        n = len(args)
        request: Request = (
            args[0] if n > 0 else kwargs.get("http_method"),
            args[1] if n > 1 else kwargs.get("path"),
            args[2] if n > 2 else kwargs.get("request_dict"),
            stream,
        )
        return binding.adapter.plan(binding, request)
    except Exception as exc:
        internal_error("plan", exc)
        return None


def _adapter(call: Call) -> GoogleAdapter:
    return call.binding.adapter  # type: ignore[return-value]


def _on_result(call: Call, result: Any) -> None:
    call.options = call.original_options = None
    try:
        call.binding.adapter.meter(call, result)  # type: ignore[attr-defined]
    except Exception as exc:
        internal_error("result", exc)


def _tap(call: Call) -> Optional[StreamTap]:
    call.options = call.original_options = None
    try:
        return _adapter(call).tap(call)
    except Exception as exc:
        internal_error("result", exc)
        return None


def _metered(items: Iterator[Any], tap: StreamTap) -> Iterator[Any]:
    try:
        for item in items:
            tap.observe(item)
            yield item
    finally:  # exhausted, broken off (GeneratorExit), failed, or collected
        tap.end()


async def _ametered(items: AsyncIterator[Any], tap: StreamTap) -> AsyncIterator[Any]:
    try:
        async for item in items:
            tap.observe(item)
            yield item
    finally:
        tap.end()


def _sync(binding: Binding, send: Callable[..., Any], args: Any, kwargs: Any) -> Any:
    try:  # _plan(), inline: this is every non-streamed call's path
        n = len(args)
        request: Request = (
            args[0] if n > 0 else kwargs.get("http_method"),
            args[1] if n > 1 else kwargs.get("path"),
            args[2] if n > 2 else kwargs.get("request_dict"),
            False,
        )
        call = binding.adapter.plan(binding, request)
    except Exception as exc:
        internal_error("plan", exc)
        call = None
    if call is None:
        return send(*args, **kwargs)
    admit(call)
    try:
        result = send(*args, **kwargs)
    except BaseException:
        failed(call)
        raise
    call.options = call.original_options = None
    try:
        binding.adapter.meter(call, result)  # type: ignore[attr-defined]
    except Exception as exc:
        internal_error("result", exc)
    return result


def _sync_streamed(binding: Binding, send: Callable[..., Any], args: Any, kwargs: Any) -> Iterator[Any]:
    call = _plan(binding, args, kwargs, stream=True)
    if call is None:
        yield from send(*args, **kwargs)
        return
    admit(call)
    try:
        items = send(*args, **kwargs)
    except BaseException:
        failed(call)
        raise
    tap = _tap(call)
    if tap is None:
        yield from items
        return
    metered = _metered(items, tap)
    tap.watch(metered)
    yield from metered


async def _async(binding: Binding, send: Callable[..., Any], args: Any, kwargs: Any) -> Any:
    call = _plan(binding, args, kwargs, stream=False)
    if call is None:
        return await send(*args, **kwargs)
    admit(call)
    try:
        result = await send(*args, **kwargs)
    except BaseException:
        failed(call)
        raise
    _on_result(call, result)
    return result


async def _async_streamed(binding: Binding, send: Callable[..., Any], args: Any, kwargs: Any) -> Any:
    call = _plan(binding, args, kwargs, stream=True)
    if call is None:
        return await send(*args, **kwargs)
    admit(call)
    try:
        items = await send(*args, **kwargs)  # the response is in: billed from here, read or not
    except BaseException:
        failed(call)
        raise
    tap = _tap(call)
    if tap is None:
        return items
    metered = _ametered(items, tap)
    tap.watch(metered)  # dropped unread: its record is emitted when it is collected
    return metered


_INTERCEPTORS: dict[str, Callable[..., Any]] = {
    "request": _sync,
    "request_streamed": _sync_streamed,
    "async_request": _async,
    "async_request_streamed": _async_streamed,
}


def _hook(name: str) -> Callable[..., Any]:
    intercept = _INTERCEPTORS[name]

    def hook(self: Any, *args: Any, **kwargs: Any) -> Any:
        send = getattr(type(self), name).__get__(self, type(self))
        if not _switch.enabled:
            return send(*args, **kwargs)
        return intercept(vars(self)[ATTR], send, args, kwargs)

    hook.__name__ = name
    return hook


_HOOKS = {name: _hook(name) for name in METHODS}


def install(api_client: Any, binding: Binding) -> None:
    """Meter the calls of one API client: hooks on its own ``request`` methods, ``binding`` in effect."""
    state = vars(api_client)
    state[ATTR] = binding
    for name in METHODS:
        state[name] = types.MethodType(_HOOKS[name], api_client)


def _auto_binding(instance: Any, adapter: GoogleAdapter) -> Binding:
    state = vars(instance)
    binding = state.get(_AUTO)
    if binding is None:
        binding = state[_AUTO] = Binding(adapter=adapter, provider=adapter.provider_for(instance))
    return binding  # type: ignore[no-any-return]


def _wrapper(name: str, adapter: GoogleAdapter) -> Callable[..., Any]:
    intercept = _INTERCEPTORS[name]

    def wrapper(wrapped: Any, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        if not _switch.enabled or instance is None or ATTR in vars(instance):
            return wrapped(*args, **kwargs)
        return intercept(_auto_binding(instance, adapter), wrapped, args, kwargs)

    return wrapper


def patch(owner: type, adapter: GoogleAdapter, patched: dict[tuple[type, str], Any]) -> None:
    """Wrap the four request methods of ``owner`` (``BaseApiClient``), unless ``patched`` has them."""
    import wrapt

    for name in METHODS:
        if (owner, name) in patched or name not in vars(owner):
            continue
        original = vars(owner)[name]
        wrapt.wrap_function_wrapper(owner, name, _wrapper(name, adapter))
        patched[owner, name] = original
