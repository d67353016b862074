"""The per-SDK half of instrumentation, and how a client finds its provider's adapter.

Each registered provider (:mod:`usagetap.providers`) has an ``adapter.py`` whose ``ADAPTER`` is an
:class:`Adapter`; this module looks it up from the registry, importing it on first use.
"""

from __future__ import annotations

import importlib
from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Optional

from ..providers import Provider, registered
from . import _stainless

if TYPE_CHECKING:
    from ..providers.base import TokenUsage
    from ._binding import Binding
    from ._calls import Call

__all__ = [
    "Adapter",
    "adapter_for",
    "client_classes",
    "load",
    "provider_of",
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

    # How calls are intercepted. The defaults suit SDKs whose every call goes through
    # ``request(cast_to, options)`` (openai, anthropic: see ``_stainless``); another SDK overrides them.

    def check(self, client: Any) -> None:
        """Raise ``TypeError`` unless ``client`` is a client this adapter can meter."""
        _stainless.check(client)

    def install(self, client: Any, binding: Binding) -> None:
        """Meter the calls made through this one client (``wrap()``), ``binding`` in effect."""
        _stainless.install(client, binding)

    def copy(self, client: Any) -> Any:
        """A new, unmetered client like ``client`` (``wrap()`` of a wrapped client with other defaults)."""
        return _stainless.copy_of(client)

    def patch(self, classes: tuple[type, ...], patched: dict[tuple[type, str], Any]) -> None:
        """Meter every client of these SDK classes (``instrument()``); record what it wraps in ``patched``.

        ``patched`` maps ``(owner, name)`` to the original attribute; ``uninstrument()`` puts it back.
        """
        _stainless.patch(classes, self, patched)


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


def adapter_for(client: Any) -> Adapter:
    provider = provider_of(client)
    if provider is None:
        sdks = ", ".join(entry.sdk for entry in registered())
        raise TypeError(
            f"usagetap.wrap() supports clients of the SDKs {sdks}, not {type(client).__qualname__}"
        )
    return load(provider)
