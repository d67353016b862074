"""OpenMeter: a CloudEvents batch (``application/cloudevents-batch+json``) to ``POST /api/v1/events``.

One CloudEvent per record, deduplicated by OpenMeter on ``id`` + ``source``::

    {"specversion": "1.0", "id": "<event_id>", "source": "usagetap", "type": "llm.usage",
     "subject": "org_1", "time": "...Z",
     "data": {"tokens": 120, "input_tokens": 100, "output_tokens": 20, "cache_read_tokens": 0,
              "cache_write_tokens": 0, "reasoning_tokens": 0, "model": ..., "provider": ...,
              "operation": ..., "cost_usd": "0.00036", <dimensions>}}

Define meters on ``type`` with a ``valueProperty`` such as ``$.tokens`` and
``groupBy`` on the dimensions you need. OpenMeter accepts or refuses a batch
as a whole, and drops duplicates silently (so they are not counted here).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, Optional

from .._record import UsageRecord
from ..errors import ConfigurationError
from ._http import DEFAULT_TIMEOUT, Endpoint, check_api_key, post_batch, rfc3339
from ._items import OutcomeTally, Unsendable, WireItem, clean_scalars
from ._vars import EnvVars
from .base import DEFAULT_IN_FLIGHT, BaseSink, Outcomes, meter_of

__all__ = ["OpenMeter"]

CONTENT_TYPE = "application/cloudevents-batch+json"


class OpenMeter(BaseSink):
    """Send usage to OpenMeter Cloud (``https://openmeter.cloud``) or a self-hosted OpenMeter.

    ::

        usagetap.configure(sink=usagetap.sinks.OpenMeter(api_key="om_...", source="my-service"))

    ``api_key`` may be omitted for a self-hosted ``base_url`` without auth. An
    argument not given is read from its variable (``USAGETAP_API_KEY``,
    ``USAGETAP_BASE_URL``, ``USAGETAP_SOURCE``, ``USAGETAP_EVENT_TYPE``,
    ``USAGETAP_TIMEOUT``) when the environment describes this sink:
    ``USAGETAP_SINK`` names it, or is unset and neither the key nor the URL is passed.
    """

    name = "openmeter"
    max_batch = 1000
    max_in_flight = DEFAULT_IN_FLIGHT
    default_base_url = "https://openmeter.cloud"

    def __init__(
        self,
        api_key: Optional[str] = None,
        *,
        base_url: Optional[str] = None,
        source: Optional[str] = None,
        event_type: Optional[str] = None,
        timeout: Optional[float] = None,
    ) -> None:
        env = EnvVars.for_constructor(self.name, api_key, base_url)
        api_key = env.key_or(api_key)
        base_url = env.text_or(base_url, "BASE_URL")
        source = env.text_or(source, "SOURCE", "usagetap")
        event_type = env.text_or(event_type, "EVENT_TYPE", "llm.usage")
        timeout = env.timeout_or(timeout, DEFAULT_TIMEOUT)
        headers = {}
        secrets: tuple[str, ...] = ()
        if api_key is not None or base_url is None:
            key = check_api_key(api_key, self.name)
            headers["Authorization"] = f"Bearer {key}"
            secrets = (key,)
        for label, value in (("source", source), ("event_type", event_type)):
            if not isinstance(value, str) or not value.strip():
                raise ConfigurationError(f"{self.name}: {label} must be a non-empty string")
        self.source = source
        self.event_type = event_type
        self._endpoint = Endpoint(
            self.name, base_url or self.default_base_url, headers=headers, timeout=timeout, secrets=secrets
        )

    @property
    def base_url(self) -> str:
        """The OpenMeter URL events are posted to."""
        return self._endpoint.base_url

    def event(self, record: UsageRecord) -> dict[str, Any]:
        """The CloudEvent for ``record``; raises ``Unsendable`` when it can never be valid."""
        if record.customer is None:
            raise Unsendable("no customer")
        if not record.customer:
            raise Unsendable("empty customer id")
        data: dict[str, Any] = {
            "tokens": record.total_tokens,
            "input_tokens": record.input_tokens,
            "output_tokens": record.output_tokens,
            "cache_read_tokens": record.cache_read_tokens,
            "cache_write_tokens": record.cache_write_tokens,
            "reasoning_tokens": record.reasoning_tokens,
            "model": record.model,
            "provider": record.provider,
            "operation": record.operation,
        }
        if record.cost is not None:
            data["cost_usd"] = str(record.cost)
        if record.status != "ok":
            data["status"] = record.status
        for key, value in clean_scalars(record.dimensions, max_key=200, max_str=1000).items():
            data.setdefault(key, value)
        return {
            "specversion": "1.0",
            "id": record.event_id,
            "source": self.source,
            "type": meter_of(record, self.event_type),
            "subject": record.customer,
            "time": rfc3339(record.timestamp),
            "data": data,
        }

    def send(self, records: Sequence[UsageRecord]) -> Outcomes:
        """POST the batch as one CloudEvents batch; OpenMeter accepts or refuses it as a whole."""
        tally = OutcomeTally(records)
        items: list[WireItem] = []
        events: list[dict[str, Any]] = []
        for record in tally.records:
            try:
                events.append(self.event(record))
            except Unsendable as exc:
                tally.dead_event(record, str(exc))
                continue
            items.append(WireItem(record, record.event_id, record.total_tokens))
        if not events:
            return tally.outcomes()
        body = json.dumps(events, separators=(",", ":"), allow_nan=False).encode()
        post_batch(
            self._endpoint,
            "/api/v1/events",
            items,
            tally,
            content=body,
            headers={"Content-Type": CONTENT_TYPE},
        )
        return tally.outcomes()

    def close(self) -> None:
        """Close the HTTP connection pool."""
        self._endpoint.close()

    def __repr__(self) -> str:
        return (
            f"OpenMeter(base_url={self._endpoint.shown_url!r}, source={self.source!r}, "
            f"event_type={self.event_type!r})"
        )
