"""OpenTelemetry: token usage as the GenAI ``gen_ai.client.token.usage`` histogram.

Each record adds two measurements (unit ``{token}``): its input tokens
(``gen_ai.token.type=input``, cache reads and writes included, as the
convention counts them) and its output tokens (``output``; not for
embeddings), with ``gen_ai.provider.name``, ``gen_ai.operation.name``,
``gen_ai.request.model`` and ``gen_ai.response.model``. Measurements go
through your ``MeterProvider`` (the global one by default) and its exporters.

Metrics are for dashboards, not invoices: an exporter cannot deduplicate, so
this sink only drops event ids it has recorded recently in this process.
Needs the ``otel`` extra (``opentelemetry-api``). ``USAGETAP_SINK=otel`` builds it
on the global ``MeterProvider``.

Traces need no sink: whatever the sink, each call's usage, models, customer and
cost are set on the recording span current where it ends (:mod:`usagetap._spans`).
"""

from __future__ import annotations

import collections
import threading
from collections.abc import Sequence
from typing import Any, Optional

from .._record import UsageRecord
from .._version import __version__
from ..errors import ConfigurationError
from .base import BaseSink, Outcomes

__all__ = ["OpenTelemetry"]

METRIC = "gen_ai.client.token.usage"
# Bucket boundaries advised by the GenAI semantic conventions for this metric.
BUCKETS = (1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304, 16777216, 67108864)
PROVIDERS = {  # usagetap's provider names -> the GenAI convention's gen_ai.provider.name values
    "azure": "azure.ai.openai",
    "bedrock": "aws.bedrock",
    "vertex": "gcp.vertex_ai",
    "google": "gcp.gemini",
    "mistral": "mistral_ai",
    "x-ai": "x_ai",
}
OPERATIONS = {"responses": "chat", "messages": "chat", "completions": "text_completion"}
REMEMBERED = 100_000


class OpenTelemetry(BaseSink):
    """Record token usage on an OpenTelemetry histogram.

    ::

        from opentelemetry.sdk.metrics import MeterProvider
        usagetap.configure(sink=usagetap.sinks.OpenTelemetry(meter_provider=provider))

    ``customer_attribute``: also put the customer id on every measurement
    under this attribute name (off by default: customer ids are unbounded
    cardinality for most metrics backends).
    """

    name = "otel"
    max_batch = 1000

    def __init__(self, meter_provider: Any = None, *, customer_attribute: Optional[str] = None) -> None:
        try:
            from opentelemetry import metrics
        except ImportError as exc:
            raise ConfigurationError(
                "otel: the OpenTelemetry sink needs opentelemetry-api: pip install 'usagetap[otel]'"
            ) from exc
        provider = meter_provider if meter_provider is not None else metrics.get_meter_provider()
        meter = provider.get_meter("usagetap", __version__)
        description = "Number of input and output tokens used."
        try:
            self._histogram = meter.create_histogram(
                METRIC, unit="{token}", description=description, explicit_bucket_boundaries_advisory=BUCKETS
            )
        except TypeError:  # opentelemetry-api < 1.23 has no bucket advice
            self._histogram = meter.create_histogram(METRIC, unit="{token}", description=description)
        self.customer_attribute = customer_attribute
        self._seen: collections.OrderedDict[str, None] = collections.OrderedDict()
        self._lock = threading.Lock()

    def attributes(self, record: UsageRecord) -> dict[str, str]:
        """The GenAI semantic-convention attributes of ``record``'s measurements."""
        attributes = {
            "gen_ai.provider.name": PROVIDERS.get(record.provider, record.provider),
            "gen_ai.operation.name": OPERATIONS.get(record.operation, record.operation),
            "gen_ai.response.model": record.model,
        }
        if record.request_model:
            attributes["gen_ai.request.model"] = record.request_model
        if self.customer_attribute and record.customer is not None:
            attributes[self.customer_attribute] = record.customer
        return attributes

    def send(self, records: Sequence[UsageRecord]) -> Outcomes:
        """Record each new event's input and output tokens on the histogram."""
        outcomes = Outcomes()
        for record in records:
            outcomes.delivered.append(record.event_id)
            with self._lock:
                if record.event_id in self._seen:
                    outcomes.duplicates += 1
                    continue
                self._seen[record.event_id] = None
                if len(self._seen) > REMEMBERED:
                    self._seen.popitem(last=False)
            attributes = self.attributes(record)
            self._histogram.record(record.input_tokens, {**attributes, "gen_ai.token.type": "input"})
            if record.operation != "embeddings":
                self._histogram.record(record.output_tokens, {**attributes, "gen_ai.token.type": "output"})
        return outcomes

    def close(self) -> None:
        """Nothing to release: the MeterProvider's exporters are the application's."""

    def __repr__(self) -> str:
        return "OpenTelemetry()"
