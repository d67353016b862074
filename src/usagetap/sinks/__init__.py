"""Where records go: one module per backend, each the same small shape (:class:`Sink`).

================= ===============================================================
``Ledger``        local SQLite, the default; ``usagetap report`` reads it
``Memory``        an in-process list, for tests
``Spaire``        Spaire events ingest (``Polar``: the same API on Polar's hosts)
``OpenSpanner``   Open Spanner bulk usage, optionally one item per token type
``SolvaPay``      SolvaPay usage events (``usage.token``)
``OpenMeter``     OpenMeter CloudEvents
``Stripe``        Stripe Billing meter events
``HTTP``          signed JSON batches to any URL
``OpenTelemetry`` the GenAI ``gen_ai.client.token.usage`` histogram
================= ===============================================================

A sink of your own needs a ``name`` and ``send(records) -> Outcomes`` (:class:`Sink`);
derive it from :class:`BaseSink` for the defaults of the rest (``max_batch``,
``max_in_flight``, ``close()``, ``after_fork()``, ...). Sinks are imported on
first use, so ``import usagetap`` stays cheap.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from .base import BaseSink, Outcomes, Sink

if TYPE_CHECKING:
    from .http import HTTP
    from .ledger import Ledger
    from .memory import Memory
    from .open_spanner import OpenSpanner
    from .openmeter import OpenMeter
    from .otel import OpenTelemetry
    from .solvapay import SolvaPay
    from .spaire import Polar, Spaire
    from .stripe import Stripe

__all__ = [
    "BaseSink",
    "HTTP",
    "Ledger",
    "Memory",
    "OpenMeter",
    "OpenSpanner",
    "OpenTelemetry",
    "Outcomes",
    "Polar",
    "Sink",
    "SolvaPay",
    "Spaire",
    "Stripe",
]

_LAZY = {
    "HTTP": ".http",
    "Ledger": ".ledger",
    "Memory": ".memory",
    "OpenMeter": ".openmeter",
    "OpenSpanner": ".open_spanner",
    "OpenTelemetry": ".otel",
    "Polar": ".spaire",
    "SolvaPay": ".solvapay",
    "Spaire": ".spaire",
    "Stripe": ".stripe",
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
