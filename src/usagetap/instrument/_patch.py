"""``instrument()`` / ``uninstrument()``: meter every client of the installed SDKs, wrapped or not.

For code that constructs its own clients. The SDK's base client class gets a
wrapt wrapper around ``request()``; a client that is also ``wrap()``-ed is
metered by its own hook only, so it still yields one record per call.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from typing import Any

from .. import _runtime, _switch
from .._forksafe import module_lock
from .._log import DEBUG, WARNING, log_once
from .._state import STATE, UNDO, on_reset
from ..providers import Provider, registered
from ._adapter import client_classes, load, request_owner
from ._binding import Binding
from ._calls import intercept_async, intercept_sync
from ._wrap import _ATTR

__all__ = ["instrument", "instrumented", "uninstrument"]

_AUTO = "_usagetap_auto_binding"
_lock = module_lock(globals(), "_lock")
_patched = STATE.patched  # owner class -> the original request()


def _auto_binding(instance: Any, provider: Provider) -> Binding:
    state = vars(instance)
    binding = state.get(_AUTO)
    if binding is None:
        adapter = load(provider)
        binding = state[_AUTO] = Binding(adapter=adapter, provider=adapter.provider_for(instance))
    return binding  # type: ignore[no-any-return]


def _split(args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[Any, Any, tuple[Any, ...], dict[str, Any]]:
    rest = dict(kwargs)
    cast_to = args[0] if args else rest.pop("cast_to")
    options = args[1] if len(args) > 1 else rest.pop("options")
    return cast_to, options, args[2:], rest


def _sync_wrapper(provider: Provider) -> Callable[..., Any]:
    def wrapper(wrapped: Any, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        if not _switch.enabled or instance is None or _ATTR in vars(instance):
            return wrapped(*args, **kwargs)
        cast_to, options, rest, kw = _split(args, kwargs)
        return intercept_sync(_auto_binding(instance, provider), wrapped, cast_to, options, rest, kw)

    return wrapper


def _async_wrapper(provider: Provider) -> Callable[..., Any]:
    async def wrapper(wrapped: Any, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        if not _switch.enabled or instance is None or _ATTR in vars(instance):
            return await wrapped(*args, **kwargs)
        cast_to, options, rest, kw = _split(args, kwargs)
        return await intercept_async(_auto_binding(instance, provider), wrapped, cast_to, options, rest, kw)

    return wrapper


def instrument() -> list[str]:
    """Meter every client of the installed provider SDKs, including ones created later.

    An alternative to :func:`usagetap.wrap` for code that builds its own
    clients. Idempotent; returns the SDK families it patched. A client both
    wrapped and instrumented is metered once::

        usagetap.instrument()                 # once, at startup
        client = OpenAI()                     # metered, like every client made by any library
        with usagetap.customer("org_123"):
            client.chat.completions.create(model="gpt-4.1", messages=[...])

    With metering off (``USAGETAP_DISABLED=1`` or ``configure(enabled=False)``)
    nothing is patched and it returns ``[]``.
    """
    if not _switch.enabled:
        return []
    import inspect

    import wrapt

    done: list[str] = []
    with _lock:
        for provider in registered():
            if importlib.util.find_spec(provider.sdk) is None:
                missing = provider.sdk
                log_once(DEBUG, f"instrument-missing:{missing}", "usagetap: %s is not installed", missing)
                continue
            for cls in client_classes(provider):
                owner = request_owner(cls)
                if owner in _patched:
                    continue
                original = vars(owner)["request"]
                make = _async_wrapper if inspect.iscoroutinefunction(original) else _sync_wrapper
                wrapt.wrap_function_wrapper(owner, "request", make(provider))
                _patched[owner] = original
            done.append(provider.family)
    _runtime.start()
    return done


def uninstrument() -> None:
    """Undo :func:`instrument`. Clients made with :func:`usagetap.wrap` stay metered."""
    with _lock:
        for owner, original in list(_patched.items()):
            current = vars(owner).get("request")
            if getattr(current, "__wrapped__", None) is original:
                setattr(owner, "request", original)  # noqa: B010
            else:
                log_once(
                    WARNING,
                    f"uninstrument:{owner.__qualname__}",
                    "usagetap: %s.request was re-patched by someone else; leaving it in place",
                    owner.__qualname__,
                )
            del _patched[owner]


def instrumented() -> bool:
    """Whether :func:`instrument` is in effect."""
    return bool(_patched)


on_reset(uninstrument, UNDO)
