"""The per-SDK half of instrumentation: which requests to meter and how to read their results."""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Optional, Protocol

if TYPE_CHECKING:
    from ..providers.base import TokenUsage
    from ._binding import Binding
    from ._calls import Call

__all__ = ["Adapter", "adapter_for", "family_of", "is_async_client", "request_owner"]


class Adapter(Protocol):
    family: str

    def provider_for(self, client: Any) -> str:
        """The record's ``provider`` for calls made through ``client``."""
        ...

    def client_classes(self) -> tuple[type, ...]:
        """The SDK's public client classes (instrument() patches the class that defines their request())."""
        ...

    def plan(self, binding: Binding, options: Any) -> Optional[Call]:
        """A :class:`Call` for a request to meter (with the options to send), or None to pass it through."""
        ...

    def on_result(self, call: Call, result: Any) -> Any:
        """Meter ``result`` (emit now, or attach to a stream/raw response) and return it unchanged."""
        ...

    def fallback(self, call: Call, exc: Exception) -> Any:
        """Options to retry once with when ``exc`` is the provider refusing what usagetap added, else None."""
        ...

    def describe(self, response: Any) -> Optional[tuple[str, Callable[[Any], TokenUsage]]]:
        """``(operation, extract)`` for a whole response object or its JSON (for ``usagetap.record()``)."""
        ...


_ADAPTERS: dict[str, str] = {
    "openai": "usagetap.instrument._openai",
    "anthropic": "usagetap.instrument._anthropic",
}
_loaded: dict[str, Adapter] = {}


def family_of(client: Any) -> Optional[str]:
    """``"openai"`` or ``"anthropic"`` for clients of those SDKs (subclasses included), else None."""
    for cls in type(client).__mro__:
        root = cls.__module__.partition(".")[0]
        if root in _ADAPTERS:
            return root
    return None


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


def load(family: str) -> Adapter:
    """The adapter of an SDK family, imported on first use."""
    adapter = _loaded.get(family)
    if adapter is None:
        adapter = _loaded[family] = importlib.import_module(_ADAPTERS[family]).ADAPTER
    return adapter


def families() -> tuple[str, ...]:
    return tuple(_ADAPTERS)


def adapter_for(client: Any) -> Adapter:
    family = family_of(client)
    if family is None:
        raise TypeError(
            f"usagetap.wrap() supports OpenAI and Anthropic SDK clients, not {type(client).__qualname__}"
        )
    return load(family)
