"""The per-SDK half of instrumentation: which requests to meter and how to read their results."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any, Optional

try:
    from typing import Protocol
except ImportError:  # pragma: no cover
    from typing_extensions import Protocol  # type: ignore[assignment]

if TYPE_CHECKING:
    from ._binding import Binding
    from ._calls import Call

__all__ = ["Adapter", "adapter_for", "family_of"]


class Adapter(Protocol):
    family: str

    def provider_for(self, client: Any) -> str:
        """The record's ``provider`` for calls made through ``client``."""
        ...

    def is_async(self, client: Any) -> bool: ...

    def plan(self, binding: Binding, options: Any) -> Optional[Call]:
        """A :class:`Call` for a request to meter (with the options to send), or None to pass it through."""
        ...

    def on_result(self, call: Call, result: Any) -> Any:
        """Meter ``result`` (emit now, or attach to a stream/raw response) and return it unchanged."""
        ...


_ADAPTERS: dict[str, str] = {
    "openai": "usagetap.instrument._openai",
}
_loaded: dict[str, Adapter] = {}


def family_of(client: Any) -> Optional[str]:
    """``"openai"`` or ``"anthropic"`` for clients of those SDKs (subclasses included), else None."""
    for cls in type(client).__mro__:
        root = cls.__module__.partition(".")[0]
        if root in _ADAPTERS:
            return root
    return None


def adapter_for(client: Any) -> Adapter:
    family = family_of(client)
    if family is None:
        raise TypeError(
            f"usagetap.wrap() supports OpenAI and Anthropic SDK clients, not {type(client).__qualname__}"
        )
    adapter = _loaded.get(family)
    if adapter is None:
        adapter = _loaded[family] = importlib.import_module(_ADAPTERS[family]).ADAPTER
    return adapter
