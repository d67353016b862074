"""Clients built like the Stainless SDKs (openai, anthropic): each call goes through ``request()``.

What :class:`~usagetap.instrument._adapter.Adapter` does by default: ``wrap()`` puts a hook on the
client's own ``request`` (and ``copy``/``with_options``, so derived clients stay metered);
``instrument()`` puts a wrapt wrapper on the SDK base class's ``request()``. A client both wrapped
and instrumented is metered by its own hook only.
"""

from __future__ import annotations

import inspect
import types
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .. import _switch
from ._account import account_dimensions
from ._binding import ATTR, Binding
from ._calls import intercept_async, intercept_sync

if TYPE_CHECKING:
    from ._adapter import Adapter

__all__ = ["check", "copy_of", "install", "is_async_client", "patch", "request_owner"]

_AUTO = "_usagetap_auto_binding"


def request_owner(cls: type) -> type:
    """The class in ``cls``'s MRO that defines ``request()`` (the SDK's base API client)."""
    for klass in cls.__mro__:
        if "request" in vars(klass):
            return klass
    raise TypeError(f"{cls.__qualname__} has no request() method")


def is_async_client(client: Any) -> bool:
    """Whether the client's ``request()`` is a coroutine function (looking through instrument()'s wrapper)."""
    owner = request_owner(type(client))
    return inspect.iscoroutinefunction(inspect.unwrap(vars(owner)["request"]))


def check(client: Any) -> None:
    """Raise ``TypeError`` unless ``client`` is an SDK client (not a resource or a response)."""
    if not hasattr(type(client), "request") or not hasattr(client, "base_url"):
        raise TypeError(f"usagetap.wrap() needs an SDK client, got {type(client).__qualname__}")


def copy_of(client: Any) -> Any:
    """A fresh, unwrapped copy of ``client`` made by the SDK (sharing its HTTP client)."""
    return type(client).copy(client)


def install(client: Any, binding: Binding) -> None:
    """Meter the calls of this one client: hooks on its own ``request``, ``copy`` and ``with_options``."""
    state = vars(client)
    state[ATTR] = binding
    hook = _async_request if is_async_client(client) else _sync_request
    state["request"] = types.MethodType(hook, client)
    state["copy"] = state["with_options"] = types.MethodType(_copy, client)


# The SDK's own request(), bound to the client; if instrument() patched the class too,
# its wrapper sees the instance is wrapped and passes the call straight through.


def _sync_request(self: Any, cast_to: Any, options: Any, *args: Any, **kwargs: Any) -> Any:
    send = type(self).request.__get__(self, type(self))
    if not _switch.enabled:
        return send(cast_to, options, *args, **kwargs)
    return intercept_sync(vars(self)[ATTR], send, cast_to, options, args, kwargs)


async def _async_request(self: Any, cast_to: Any, options: Any, *args: Any, **kwargs: Any) -> Any:
    send = type(self).request.__get__(self, type(self))
    if not _switch.enabled:
        return await send(cast_to, options, *args, **kwargs)
    return await intercept_async(vars(self)[ATTR], send, cast_to, options, args, kwargs)


def _copy(self: Any, *args: Any, **kwargs: Any) -> Any:
    new = type(self).copy(self, *args, **kwargs)
    old: Binding = vars(self)[ATTR]
    binding = Binding(
        adapter=old.adapter,
        provider=old.provider_override or old.adapter.provider_for(new),
        customer=old.customer,
        dimensions=dict(old.dimensions),
        meter=old.meter,
        provider_override=old.provider_override,
        stream_options_rejected=old.stream_options_rejected,
        account=account_dimensions(new),
    )
    install(new, binding)
    return new


def patch(classes: tuple[type, ...], adapter: Adapter, patched: dict[tuple[type, str], Any]) -> None:
    """Wrap the ``request()`` each client class inherits, unless ``patched`` has it; record it there."""
    import wrapt

    for cls in classes:
        owner = request_owner(cls)
        if (owner, "request") in patched:
            continue
        original = vars(owner)["request"]
        make = _async_wrapper if inspect.iscoroutinefunction(original) else _sync_wrapper
        wrapt.wrap_function_wrapper(owner, "request", make(adapter))
        patched[owner, "request"] = original


def _auto_binding(instance: Any, adapter: Adapter) -> Binding:
    state = vars(instance)
    binding = state.get(_AUTO)
    if binding is None:
        binding = state[_AUTO] = Binding(
            adapter=adapter, provider=adapter.provider_for(instance), account=account_dimensions(instance)
        )
    return binding  # type: ignore[no-any-return]


def _split(args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[Any, Any, tuple[Any, ...], dict[str, Any]]:
    rest = dict(kwargs)
    cast_to = args[0] if args else rest.pop("cast_to")
    options = args[1] if len(args) > 1 else rest.pop("options")
    return cast_to, options, args[2:], rest


def _sync_wrapper(adapter: Adapter) -> Callable[..., Any]:
    def wrapper(wrapped: Any, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        if not _switch.enabled or instance is None or ATTR in vars(instance):
            return wrapped(*args, **kwargs)
        cast_to, options, rest, kw = _split(args, kwargs)
        return intercept_sync(_auto_binding(instance, adapter), wrapped, cast_to, options, rest, kw)

    return wrapper


def _async_wrapper(adapter: Adapter) -> Callable[..., Any]:
    async def wrapper(wrapped: Any, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        if not _switch.enabled or instance is None or ATTR in vars(instance):
            return await wrapped(*args, **kwargs)
        cast_to, options, rest, kw = _split(args, kwargs)
        return await intercept_async(_auto_binding(instance, adapter), wrapped, cast_to, options, rest, kw)

    return wrapper
