"""How mistralai calls are intercepted: at ``BaseSDK.do_request`` / ``do_request_async``.

Every API call of the SDK (1.x, 2.x, 3.x) is built by one resource object (``client.chat``,
``client.agents``, ...) and sent through its ``do_request`` (after the SDK's retries and hooks),
which returns the HTTP response the SDK then parses or streams. ``wrap()`` puts a hook on the
billable resources of one client; ``instrument()`` puts a wrapt wrapper on ``BaseSDK`` itself. A
client both wrapped and instrumented is metered by its own hooks only.
"""

from __future__ import annotations

import copy
import importlib
import types
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ... import _switch
from ...instrument._binding import ATTR, Binding
from ...instrument._calls import intercept_async, intercept_sync

if TYPE_CHECKING:
    from ...instrument._adapter import Adapter

__all__ = ["RESOURCES", "base_classes", "copy_of", "install", "patch", "request_of", "resources_of"]

RESOURCES = ("chat", "fim", "agents", "embeddings")
"""The client attributes whose calls bill tokens."""

_AUTO = "_usagetap_auto_binding"
_METHODS = ("do_request", "do_request_async")


def resources_of(client: Any) -> tuple[str, ...]:
    """The billable resources a client has: lazily made (``_sub_sdk_map``) or made with it (1.0)."""
    lazy = getattr(type(client), "_sub_sdk_map", None) or {}
    state = vars(client)
    return tuple(name for name in RESOURCES if name in lazy or name in state)


def install(client: Any, binding: Binding) -> None:
    """Meter the calls of this one client: hooks on the ``do_request`` of its billable resources."""
    vars(client)[ATTR] = binding
    for name in resources_of(client):
        resource = getattr(client, name)
        state = vars(resource)
        state[ATTR] = binding
        state["do_request"] = types.MethodType(_sync_do_request, resource)
        state["do_request_async"] = types.MethodType(_async_do_request, resource)


def copy_of(client: Any) -> Any:
    """A new, unmetered client sharing ``client``'s configuration (its HTTP clients, hooks, key).

    The copy's resources are made anew on first use; it refers to ``client`` (``parent_ref``), so
    the HTTP clients ``client`` closes when collected stay open while the copy is in use.
    """
    new = copy.copy(client)
    state = vars(new)
    for name in (ATTR, _AUTO, *resources_of(client), *getattr(type(client), "_sub_sdk_map", ())):
        state.pop(name, None)
    state["parent_ref"] = client
    init_sdks = getattr(new, "_init_sdks", None)
    if init_sdks is not None:  # mistralai 1.0: resources made with the client
        init_sdks()
    return new


def request_of(options: tuple[tuple[Any, ...], dict[str, Any]]) -> tuple[Any, bool]:
    """``(request, stream)`` of the arguments of a ``do_request(hook_ctx, request, ..., stream, ...)``."""
    args, kwargs = options
    request = kwargs["request"] if "request" in kwargs else args[1]
    stream = kwargs["stream"] if "stream" in kwargs else len(args) > 3 and args[3]
    return request, bool(stream)


def _sync_do_request(self: Any, *args: Any, **kwargs: Any) -> Any:
    send = type(self).do_request.__get__(self, type(self))
    if not _switch.enabled:
        return send(*args, **kwargs)
    return intercept_sync(vars(self)[ATTR], _sender(send, args, kwargs), None, (args, kwargs), (), {})


async def _async_do_request(self: Any, *args: Any, **kwargs: Any) -> Any:
    send = type(self).do_request_async.__get__(self, type(self))
    if not _switch.enabled:
        return await send(*args, **kwargs)
    return await intercept_async(vars(self)[ATTR], _sender(send, args, kwargs), None, (args, kwargs), (), {})


def _sender(send: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> Callable[..., Any]:
    """What the interceptor calls to send: the SDK's own call, as the caller made it."""

    def sending(_cast_to: Any, _options: Any) -> Any:
        return send(*args, **kwargs)

    return sending


def base_classes() -> tuple[type, ...]:
    """The SDK's ``BaseSDK`` (``mistralai.client.basesdk`` from 2.x, ``mistralai.basesdk`` in 1.x)."""
    for module in ("mistralai.client.basesdk", "mistralai.basesdk"):
        try:
            return (importlib.import_module(module).BaseSDK,)
        except (ImportError, AttributeError):
            continue
    return ()


def patch(adapter: Adapter, patched: dict[tuple[type, str], Any]) -> None:
    """Wrap ``BaseSDK.do_request`` and ``do_request_async`` unless ``patched`` has them; record them there."""
    import wrapt

    for owner in base_classes():
        for name, make in zip(_METHODS, (_sync_wrapper, _async_wrapper), strict=True):
            if (owner, name) in patched:
                continue
            original = vars(owner)[name]
            wrapt.wrap_function_wrapper(owner, name, make(adapter))
            patched[owner, name] = original


def _auto_binding(instance: Any, adapter: Adapter) -> Binding:
    state = vars(instance)
    binding = state.get(_AUTO)
    if binding is None:
        binding = state[_AUTO] = Binding(adapter=adapter, provider=adapter.provider_for(instance))
    return binding  # type: ignore[no-any-return]


def _sync_wrapper(adapter: Adapter) -> Callable[..., Any]:
    def wrapper(wrapped: Any, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        if not _switch.enabled or instance is None or ATTR in vars(instance):
            return wrapped(*args, **kwargs)
        binding = _auto_binding(instance, adapter)
        return intercept_sync(binding, _sender(wrapped, args, kwargs), None, (args, kwargs), (), {})

    return wrapper


def _async_wrapper(adapter: Adapter) -> Callable[..., Any]:
    async def wrapper(wrapped: Any, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        if not _switch.enabled or instance is None or ATTR in vars(instance):
            return await wrapped(*args, **kwargs)
        binding = _auto_binding(instance, adapter)
        return await intercept_async(binding, _sender(wrapped, args, kwargs), None, (args, kwargs), (), {})

    return wrapper
