"""SolvaPay: ``POST /v1/sdk/usages/bulk`` with a Bearer secret key, deduplicated on ``idempotencyKey``.

Each record becomes one usage event (units: all tokens), or with
``split_by_token_type=True`` one per token type keyed ``{event_id}:{token_type}``, and
one per non-token fee of the call (units: its count, ``token_type`` the fee's name:
``web_search``, ``web_fetch``, ...) keyed ``{event_id}:{fee}``::

    {"customerRef": "cus_...", "units": 120, "actionType": "custom", "outcome": "success",
     "productRef": "prd_..." (if configured), "idempotencyKey": "<event_id>", "timestamp": "...Z",
     "metadata": {"type": "usage.token", "model": ..., "provider": ..., "operation": ..., ...}}

That is SolvaPay's ``createEvent({type: 'usage.token', customerRef, productRef, units})``
on its usage API, the dot-notation type kept in the metadata. Limits enforced
before sending: units are whole, non-negative and at most 100,000 per event
(larger quantities go in parts keyed ``{key}:part{n}``, at most 1,000 of them: a
record needing more is dead-lettered); timestamps are never
in the future and at most 30 days old (older events are dead-lettered). The
bulk call is all-or-nothing: a 4xx on several events asks the pipeline to
split the batch; the answer ``{success, inserted, results}`` counts events
already known under their key as duplicates (delivered).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import Any, Optional

import httpx

from .._record import UsageRecord
from ..errors import ConfigurationError
from ._http import DEFAULT_TIMEOUT, Endpoint, check_api_key, post_batch, rfc3339
from ._items import OutcomeTally, Unsendable, WireItem, clean_scalars, fee_items, items_for
from ._vars import EnvVars
from .base import DEFAULT_IN_FLIGHT, BaseSink, Outcomes

__all__ = ["SolvaPay"]

ACTION_TYPES = ("transaction", "api_call", "hour", "email", "storage", "custom")
MAX_UNITS = 100_000
MAX_PARTS = 1000  # 100 million units: a record needing more is dead-lettered, not split
MAX_ITEMS = 500
MAX_AGE = timedelta(days=30)


class SolvaPay(BaseSink):
    """Send usage to SolvaPay (``https://api.solvapay.com``) as ``usage.token`` events.

    ::

        usagetap.configure(sink=usagetap.sinks.SolvaPay(api_key="sk_...", product_ref="prd_..."))

    The customer ids you attribute calls to must be SolvaPay customer
    references (``ensureCustomer`` gives you one per user). An argument not
    given is read from its variable (``USAGETAP_API_KEY``, ``USAGETAP_BASE_URL``,
    ``USAGETAP_PRODUCT_REF``, ``USAGETAP_ACTION_TYPE``, ``USAGETAP_SPLIT_BY_TOKEN_TYPE``,
    ``USAGETAP_TIMEOUT``) when the environment describes this sink:
    ``USAGETAP_SINK`` names it, or is unset and neither the key nor the URL is passed.
    """

    name = "solvapay"
    default_base_url = "https://api.solvapay.com"
    max_in_flight = DEFAULT_IN_FLIGHT

    def __init__(
        self,
        api_key: Optional[str] = None,
        *,
        base_url: Optional[str] = None,
        product_ref: Optional[str] = None,
        action_type: Optional[str] = None,
        event_type: str = "usage.token",
        split_by_token_type: Optional[bool] = None,
        timeout: Optional[float] = None,
    ) -> None:
        env = EnvVars.for_constructor(self.name, api_key, base_url)
        key = check_api_key(env.required_key(api_key), self.name)
        base_url = env.text_or(base_url, "BASE_URL")
        product_ref = env.text_or(product_ref, "PRODUCT_REF")
        action_type = env.text_or(action_type, "ACTION_TYPE", "custom")
        split_by_token_type = env.flag_or(split_by_token_type, "SPLIT_BY_TOKEN_TYPE")
        timeout = env.timeout_or(timeout, DEFAULT_TIMEOUT)
        if action_type not in ACTION_TYPES:
            raise ConfigurationError(f"{self.name}: action_type must be one of {ACTION_TYPES}")
        self.product_ref = product_ref
        self.action_type = action_type
        self.event_type = event_type
        self.split_by_token_type = split_by_token_type
        self.max_batch = 100 if split_by_token_type else MAX_ITEMS
        self._endpoint = Endpoint(
            self.name,
            base_url or self.default_base_url,
            headers={"Authorization": f"Bearer {key}"},
            timeout=timeout,
            secrets=(key,),
        )

    @property
    def base_url(self) -> str:
        """The SolvaPay API usage is posted to."""
        return self._endpoint.base_url

    # -- mapping ---------------------------------------------------------

    def items(self, record: UsageRecord) -> list[WireItem]:
        """The items for ``record`` (one, or one per token type); ``Unsendable`` if it can't be sent."""
        if record.customer is None:
            raise Unsendable("no customer")
        if not record.customer.strip():
            raise Unsendable("empty customer reference")
        if record.timestamp < self._endpoint.now() - MAX_AGE:
            raise Unsendable(
                f"older than {MAX_AGE.days} days ({rfc3339(record.timestamp)}); SolvaPay refuses it"
            )
        items = items_for(record, split=self.split_by_token_type, max_quantity=MAX_UNITS, max_parts=MAX_PARTS)
        if self.split_by_token_type:  # split: each non-token fee is an item of its own
            items += fee_items(record)
        return items

    def event(self, item: WireItem) -> dict[str, Any]:
        """The usage event for one item: ``customerRef``, ``units``, ``idempotencyKey``, ..."""
        record = item.record
        metadata: dict[str, Any] = {
            "type": self.event_type,
            "event_id": record.event_id,
            "model": record.model,
            "provider": record.provider,
            "operation": record.operation,
        }
        if item.token_type is not None:
            metadata["token_type"] = item.token_type
        else:
            metadata.update(
                input_tokens=record.input_tokens,
                output_tokens=record.output_tokens,
                cache_read_tokens=record.cache_read_tokens,
                cache_write_tokens=record.cache_write_tokens,
                reasoning_tokens=record.reasoning_tokens,
            )
            if record.cost is not None:
                metadata["cost_usd"] = str(record.cost)
        for key, value in clean_scalars(record.dimensions, max_key=100, max_str=500).items():
            metadata.setdefault(key, value)
        event: dict[str, Any] = {
            "customerRef": record.customer,
            "units": item.quantity,
            "actionType": self.action_type,
            "outcome": "success",
            "idempotencyKey": item.key,
            "timestamp": rfc3339(self._endpoint.not_after_now(record.timestamp)),
            "metadata": metadata,
        }
        if self.product_ref:
            event["productRef"] = self.product_ref
        return event

    # -- delivery --------------------------------------------------------

    def send(self, records: Sequence[UsageRecord]) -> Outcomes:
        """POST the items to the bulk endpoint; a batch refused as a whole is split by the pipeline."""
        tally = OutcomeTally(records)
        tally.send_in_chunks(
            tally.collect(self.items), MAX_ITEMS, lambda chunk: self._send_chunk(chunk, tally)
        )
        return tally.outcomes()

    def _send_chunk(self, chunk: list[WireItem], tally: OutcomeTally) -> None:
        post_batch(
            self._endpoint,
            "/v1/sdk/usages/bulk",
            chunk,
            tally,
            read=lambda response: self._read(response, chunk, tally),
            missing_route=_no_route,
            json={"events": [self.event(i) for i in chunk]},
        )

    def _read(self, response: httpx.Response, chunk: list[WireItem], tally: OutcomeTally) -> bool:
        """A 2xx: every item delivered; those already known under their key count as duplicates."""
        if not response.is_success:
            return False
        for item in chunk:
            tally.delivered(item)
        try:
            inserted = response.json().get("inserted")
        except (ValueError, AttributeError):
            inserted = None
        if isinstance(inserted, (int, float)) and not isinstance(inserted, bool):
            known = len(chunk) - int(inserted)
            events = {i.record.event_id for i in chunk}
            if known == len(chunk):
                tally.duplicates += len(events)
            elif len(events) == len(chunk):
                tally.duplicates += max(known, 0)
        return True

    def close(self) -> None:
        """Close the HTTP connection pool."""
        self._endpoint.close()

    def __repr__(self) -> str:
        return (
            f"SolvaPay(base_url={self._endpoint.shown_url!r}, product_ref={self.product_ref!r}, "
            f"split_by_token_type={self.split_by_token_type})"
        )


def _no_route(response: httpx.Response) -> bool:
    """A 404 is a missing customer, unless no route matched (``"Cannot POST ..."``)."""
    return "Cannot " in response.text
