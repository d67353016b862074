"""OpenTelemetry traces: each metered call's usage as attributes of the span current when it ends.

When a call (or its stream) ends, on the caller's thread, the span current there is the one the
application or its instrumentation (OpenLLMetry, Logfire, Langfuse v3, ...) opened around it.
If that span is recording, it gets the GenAI semantic-convention attributes
``gen_ai.usage.input_tokens``, ``gen_ai.usage.output_tokens``,
``gen_ai.usage.cache_read.input_tokens``, ``gen_ai.usage.cache_creation.input_tokens``,
``gen_ai.provider.name``, ``gen_ai.request.model``, ``gen_ai.response.model``, and usagetap's
``usagetap.customer``, ``usagetap.cost`` and ``usagetap.billed_cost`` (US dollars, as numbers
when the call is priced), ``usagetap.event_id`` and ``usagetap.status``. A span holding several
calls shows the last one's.

Nothing is imported and nothing is built unless OpenTelemetry is loaded and the span records:
without OpenTelemetry, or with its API alone (no SDK loaded, no tracer provider set), a call costs
a few dictionary lookups; outside any span, that and a context-variable read. The record is
built (and priced) on the caller's thread only then.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Union

from .delivery.intake import record_of

if TYPE_CHECKING:
    from ._record import UsageRecord
    from .delivery.intake import Captured

__all__ = ["SPANS", "SpanAttributes", "attributes"]

AttributeValue = Union[str, int, float]


def attributes(record: UsageRecord) -> dict[str, AttributeValue]:
    """The span attributes of ``record``."""
    from .sinks.otel import PROVIDERS

    out: dict[str, AttributeValue] = {
        "gen_ai.provider.name": PROVIDERS.get(record.provider, record.provider),
        "gen_ai.response.model": record.model,
        "gen_ai.usage.input_tokens": record.input_tokens,
        "gen_ai.usage.output_tokens": record.output_tokens,
        "gen_ai.usage.cache_read.input_tokens": record.cache_read_tokens,
        "gen_ai.usage.cache_creation.input_tokens": record.cache_write_tokens,
        "usagetap.event_id": record.event_id,
        "usagetap.status": record.status,
    }
    if record.request_model:
        out["gen_ai.request.model"] = record.request_model
    if record.customer is not None:
        out["usagetap.customer"] = record.customer
    if record.cost is not None:
        out["usagetap.cost"] = float(record.cost)
    if record.billed_cost is not None:
        out["usagetap.billed_cost"] = float(record.billed_cost)
    return out


class SpanAttributes:
    """The consumer of finished calls that annotates the current span (see :mod:`usagetap.publish`)."""

    def on_end(self, capture: Captured) -> None:
        """Set the call's usage on the current span, if OpenTelemetry is loaded and the span records."""
        trace = sys.modules.get("opentelemetry.trace")
        if trace is None:
            return
        if "opentelemetry.sdk.trace" not in sys.modules and getattr(trace, "_TRACER_PROVIDER", True) is None:
            return  # the API alone (an SDK such as anthropic imports it): no span can be recording
        span = trace.get_current_span()
        if not span.is_recording():
            return
        record = record_of(capture)
        if record is not None:
            span.set_attributes(attributes(record))


SPANS = SpanAttributes()
