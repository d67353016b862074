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

from . import sinks
from ._runtime import aflush, configure, flush, flushing, shutdown, stats
from ._version import __version__
from .context import customer
from .delivery import FlushResult
from .errors import ConfigurationError, InvalidRecord, UsagetapError
from .instrument import instrument, record, uninstrument, wrap
from .record import UsageRecord

__all__ = [
    "ConfigurationError",
    "FlushResult",
    "InvalidRecord",
    "UsageRecord",
    "UsagetapError",
    "__version__",
    "aflush",
    "configure",
    "customer",
    "flush",
    "flushing",
    "instrument",
    "record",
    "shutdown",
    "sinks",
    "stats",
    "uninstrument",
    "wrap",
]
