"""Loopback fakes of the billing backends usagetap's sinks deliver to, for tests and demos.

Each is a real HTTP server on 127.0.0.1 that keeps one backend's contract:
it validates the request shape, enforces auth, deduplicates on the
backend's key, answers in the backend's response shape, and can be told to
fail the way the real one does::

    from usagetap.sinks import Spaire
    from usagetap.testing.backends import SpaireBackend

    with SpaireBackend() as backend:
        sink = Spaire(api_key=backend.api_key, base_url=backend.url)
        backend.rate_limit_next(retry_after=2)
        outcomes = sink.send(records)          # -> retry, retry_after=2.0
        outcomes = sink.send(records)          # -> delivered
        backend.totals()                       # per customer, as the backend holds it
"""

from __future__ import annotations

from ._base import Answer, BackendFault, LoopbackBackend, Request
from .http import HTTPReceiver
from .open_spanner import OpenSpannerBackend
from .openmeter import OpenMeterBackend
from .solvapay import SolvaPayBackend
from .spaire import PolarBackend, SpaireBackend
from .stripe import StripeBackend

__all__ = [
    "Answer",
    "BackendFault",
    "HTTPReceiver",
    "LoopbackBackend",
    "OpenMeterBackend",
    "OpenSpannerBackend",
    "PolarBackend",
    "Request",
    "SolvaPayBackend",
    "SpaireBackend",
    "StripeBackend",
]
