"""Where records go: one module per backend, each the same small shape (:class:`Sink`).

Sinks are imported on first use, so ``import usagetap`` stays cheap.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from .base import Outcomes, Sink

if TYPE_CHECKING:
    from .ledger import Ledger
    from .memory import Memory

__all__ = ["Ledger", "Memory", "Outcomes", "Sink"]

_LAZY = {
    "Ledger": ".ledger",
    "Memory": ".memory",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'usagetap.sinks' has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
