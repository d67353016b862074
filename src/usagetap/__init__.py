"""usagetap: meter LLM token usage per customer, for billing.

::

    import usagetap
    from openai import OpenAI

    client = usagetap.wrap(OpenAI())
    with usagetap.customer("org_123", feature="chat"):
        client.chat.completions.create(model="gpt-4.1", messages=[...])

Every billable response becomes one :class:`UsageRecord` (tokens, model,
customer, cost), delivered in the background to the configured sink, by
default a local SQLite ledger that ``usagetap report`` reads.
"""

from __future__ import annotations

from . import limits, prices, sinks
from ._context import current_run, customer, propagate, track
from ._record import UsageRecord
from ._runs import Run
from ._runtime import aflush, configure, flush, flushing, shutdown, stats
from ._version import __version__
from .delivery import FlushResult
from .errors import BudgetExceeded, ConfigurationError, InvalidRecord, MissingCustomer, UsagetapError
from .instrument import instrument, record, uninstrument, wrap

__all__ = [
    "BudgetExceeded",
    "ConfigurationError",
    "FlushResult",
    "InvalidRecord",
    "MissingCustomer",
    "Run",
    "UsageRecord",
    "UsagetapError",
    "__version__",
    "aflush",
    "configure",
    "current_run",
    "customer",
    "flush",
    "flushing",
    "instrument",
    "limits",
    "prices",
    "propagate",
    "record",
    "shutdown",
    "sinks",
    "stats",
    "track",
    "uninstrument",
    "wrap",
]
