"""The per-SDK half of instrumentation, and how a client finds its provider's adapter.

Each registered provider (:mod:`usagetap.providers`) has an ``adapter.py`` whose ``ADAPTER`` is an
:class:`Adapter`; this module looks it up from the registry, importing it on first use.
"""

from __future__ import annotations

import importlib
import inspect
from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Optional

from ..providers import Provider, registered

if TYPE_CHECKING:
    from ..providers.base import TokenUsage
    from ._binding import Binding
    from ._calls import Call

__all__ = [
    "Adapter",
    "adapter_for",
    "client_classes",
    "is_async_client",
    "load",
    "provider_of",
    "request_owner",
]


class Adapter(ABC):
    """Which requests of one SDK family are billable, and how their results are metered."""

    @abstractmethod
    def provider_for(self, client: Any) -> str:
        """The record's ``provider`` for calls made through ``client``."""

    @abstractmethod
    def plan(self, binding: Binding, options: Any) -> Optional[Call]:
        """A :class:`Call` for a request to meter (with the options to send), or None to pass it through."""

    @abstractmethod
    def on_result(self, call: Call, result: Any) -> Any:
        """Meter ``result`` (emit now, or attach to a stream/raw response) and return it unchanged."""

    def fallback(self, call: Call, exc: Exception) -> Any:
        """Options to retry once with when ``exc`` is the provider refusing what usagetap added, else None."""
        return None

    def describe(self, response: Any) -> Optional[tuple[str, Callable[[Any], TokenUsage]]]:
        """``(operation, extract)`` for a whole response object or its JSON (for ``usagetap.record()``)."""
        return None

    def note_unmetered(self, client: Any) -> None:
        """Say, once, which surfaces of a newly wrapped ``client`` usagetap cannot meter."""
        return


def provider_of(obj: Any) -> Optional[Provider]:
    """The registered provider whose SDK defines ``obj``'s class (subclasses included), else None."""
    entries = registered()
    for cls in type(obj).__mro__:
        module = cls.__module__
        for entry in entries:
            if module == entry.sdk or module.startswith(f"{entry.sdk}."):
                return entry
    return None


def load(provider: Provider) -> Adapter:
    """The adapter of a provider, imported on first use."""
    adapter: Adapter = importlib.import_module(provider.adapter_module).ADAPTER
    return adapter


def client_classes(provider: Provider) -> tuple[type, ...]:
    """The provider SDK's public client classes (importing the SDK)."""
    sdk = importlib.import_module(provider.sdk)
    return tuple(getattr(sdk, name) for name in provider.clients)


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


def adapter_for(client: Any) -> Adapter:
    provider = provider_of(client)
    if provider is None:
        sdks = ", ".join(entry.sdk for entry in registered())
        raise TypeError(
            f"usagetap.wrap() supports clients of the SDKs {sdks}, not {type(client).__qualname__}"
        )
    return load(provider)
