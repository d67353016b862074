"""Spaire and Polar (one events API, two hosts): ``POST /v1/events/ingest``, deduplicated on ``external_id``.

One event per record::

    {"name": "llm.usage", "external_customer_id": "org_1", "external_id": "<event_id>",
     "timestamp": "...Z", "metadata": {"model": ..., "provider": ..., "operation": ...,
     "input_tokens": ..., "output_tokens": ..., "cache_read_tokens": ..., "cache_write_tokens": ...,
     "reasoning_tokens": ..., "total_tokens": ..., <dimensions>,
     "_llm": {"vendor", "model", "input_tokens", "output_tokens", "total_tokens", "cached_input_tokens"},
     "_cost": {"amount": "<cents>", "currency": "usd"}}}

The API refuses a whole batch with 422 when one event is invalid, so the
documented limits are enforced before sending: metadata holds at most 50
keys, keys of at most 40 characters, strings of 1 to 500 characters and
scalar values (dimensions are truncated or dropped to fit; the usage itself
always survives), and a timestamp is never ahead of the backend's clock. If a
422 still comes, the events it names are dead-lettered with its reason and
the rest retried; when it names none, the pipeline splits the batch.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any, Optional

import httpx

from .._record import Scalar, UsageRecord
from ..errors import ConfigurationError
from ._http import DEFAULT_TIMEOUT, Endpoint, check_api_key, post_batch, rfc3339
from ._items import OutcomeTally, Unsendable, WireItem, clean_scalars
from ._vars import EnvVars
from .base import DEFAULT_IN_FLIGHT, BaseSink, Outcomes, meter_of

__all__ = ["Polar", "Spaire"]

MAX_KEYS = 50
MAX_KEY_LENGTH = 40
MAX_STRING_LENGTH = 500
_RESERVED = ("_llm", "_cost")
_CUSTOMER_FIELDS = ("external_customer_id", "customer_id")


def cost_cents(cost: Optional[Decimal]) -> Optional[str]:
    """USD -> cents as a decimal string within the API's bounds (17 digits, 12 decimal places), or None."""
    if cost is None or not cost.is_finite():
        return None
    cents = cost * 100
    whole_digits = max(cents.adjusted() + 1, 0)
    places = min(12, 17 - whole_digits)
    if places < 0:
        return None
    return format(cents.quantize(Decimal(1).scaleb(-places)).normalize(), "f")


class Spaire(BaseSink):
    """Send usage to Spaire's events ingest API (``https://api.spairehq.com``).

    ::

        usagetap.configure(sink=usagetap.sinks.Spaire(api_key="...", event_name="llm.usage"))

    ``customer_field="customer_id"`` when the customer ids you attribute calls
    to are the backend's own customer UUIDs; by default they are your ids
    (``external_customer_id``). ``organization_id`` is needed only with a
    personal (non-organization) token. An argument not given is read from its
    variable (``USAGETAP_API_KEY``, ``USAGETAP_BASE_URL``, ``USAGETAP_EVENT_NAME``,
    ``USAGETAP_CUSTOMER_FIELD``, ``USAGETAP_ORGANIZATION_ID``, ``USAGETAP_TIMEOUT``;
    ``USAGETAP_SANDBOX`` for Polar) when the environment describes this sink:
    ``USAGETAP_SINK`` names it, or is unset and neither the key nor the URL is passed.
    """

    name = "spaire"
    max_batch = 1000
    max_in_flight = DEFAULT_IN_FLIGHT
    default_base_url = "https://api.spairehq.com"

    def __init__(
        self,
        api_key: Optional[str] = None,
        *,
        base_url: Optional[str] = None,
        event_name: Optional[str] = None,
        customer_field: Optional[str] = None,
        organization_id: Optional[str] = None,
        timeout: Optional[float] = None,
    ) -> None:
        env = EnvVars.for_constructor(self.name, api_key, base_url)
        key = check_api_key(env.required_key(api_key), self.name)
        base_url = env.text_or(base_url, "BASE_URL") or self._default_url(env)
        event_name = env.text_or(event_name, "EVENT_NAME", "llm.usage")
        customer_field = env.text_or(customer_field, "CUSTOMER_FIELD", "external_customer_id")
        organization_id = env.text_or(organization_id, "ORGANIZATION_ID")
        timeout = env.timeout_or(timeout, DEFAULT_TIMEOUT)
        if customer_field not in _CUSTOMER_FIELDS:
            raise ConfigurationError(f"{self.name}: customer_field must be one of {_CUSTOMER_FIELDS}")
        if not isinstance(event_name, str) or not event_name.strip():
            raise ConfigurationError(f"{self.name}: event_name must be a non-empty string")
        self.event_name = event_name
        self.customer_field = customer_field
        self.organization_id = organization_id
        self._endpoint = Endpoint(
            self.name,
            base_url,
            headers={"Authorization": f"Bearer {key}"},
            timeout=timeout,
            secrets=(key,),
        )

    def _default_url(self, env: EnvVars) -> str:
        return self.default_base_url

    @property
    def base_url(self) -> str:
        """The API events are posted to."""
        return self._endpoint.base_url

    # -- mapping ---------------------------------------------------------

    def event(self, record: UsageRecord) -> dict[str, Any]:
        """The wire event for ``record``; raises :class:`Unsendable` when it can never be valid."""
        customer = record.customer
        if customer is None:
            raise Unsendable("no customer")
        if not customer.strip():
            raise Unsendable("empty customer id")
        if self.customer_field == "customer_id":
            try:
                uuid.UUID(customer)
            except ValueError:
                raise Unsendable(
                    f"customer {customer[:80]!r} is not a {self.name} customer UUID "
                    "(customer_field='customer_id')"
                ) from None
        event: dict[str, Any] = {
            "name": meter_of(record, self.event_name),
            self.customer_field: customer,
            "external_id": record.event_id,
            "timestamp": rfc3339(self._endpoint.not_after_now(record.timestamp)),
            "metadata": self.metadata(record),
        }
        if self.organization_id:
            event["organization_id"] = self.organization_id
        return event

    def metadata(self, record: UsageRecord) -> dict[str, Any]:
        """Flat facts, the record's dimensions (sanitized, as many as fit), ``_llm`` and ``_cost``."""
        facts: dict[str, Scalar] = {
            "model": record.model,
            "provider": record.provider,
            "operation": record.operation,
            "input_tokens": record.input_tokens,
            "output_tokens": record.output_tokens,
            "cache_read_tokens": record.cache_read_tokens,
            "cache_write_tokens": record.cache_write_tokens,
            "reasoning_tokens": record.reasoning_tokens,
            "total_tokens": record.total_tokens,
        }
        for fee, quantity in record.fees.items():  # non-token fees, counted: fee_web_search, ...
            facts[f"fee_{fee}"] = quantity
        if record.request_model and record.request_model != record.model:
            facts["request_model"] = record.request_model
        if record.status != "ok":
            facts["status"] = record.status
        metadata: dict[str, Any] = dict(_clean(facts))
        reserved: dict[str, Any] = {
            "_llm": {
                "vendor": record.provider,
                "model": record.model,
                "input_tokens": record.input_tokens,
                "cached_input_tokens": record.cache_read_tokens,
                "output_tokens": record.output_tokens,
                "total_tokens": record.total_tokens,
            }
        }
        cents = cost_cents(record.cost)
        if cents is not None:
            reserved["_cost"] = {"amount": cents, "currency": "usd"}
        room = MAX_KEYS - len(metadata) - len(reserved)
        for key, value in _clean(record.dimensions).items():
            if room <= 0:
                break
            if key in facts or key in metadata or key in _RESERVED:
                continue
            metadata[key] = value
            room -= 1
        metadata.update(reserved)
        return metadata

    # -- delivery --------------------------------------------------------

    def send(self, records: Sequence[UsageRecord]) -> Outcomes:
        """POST the batch to ``/v1/events/ingest``; a 422 naming events dead-letters those."""
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
        post_batch(
            self._endpoint,
            "/v1/events/ingest",
            items,
            tally,
            read=lambda response: self._read(response, items, tally),
            json={"events": events},
        )
        return tally.outcomes()

    def _read(self, response: httpx.Response, items: list[WireItem], tally: OutcomeTally) -> bool:
        """A 2xx (with the count of duplicates), or a 422 naming the events at fault."""
        if response.is_success:
            for item in items:
                tally.delivered(item)
            tally.duplicates = _count(response, "duplicates")
            return True
        return response.status_code == 422 and self._pinpoint(response, items, tally)

    def _pinpoint(self, response: httpx.Response, items: list[WireItem], tally: OutcomeTally) -> bool:
        """Dead-letter the events a 422 names and retry the rest; False when it names none."""
        try:
            detail = response.json().get("detail")
        except (ValueError, AttributeError):
            return False
        if not isinstance(detail, list) or not detail:
            return False
        problems: dict[int, list[tuple[list[Any], str]]] = {}
        for error in detail:
            loc = error.get("loc") if isinstance(error, dict) else None
            if not (isinstance(loc, list) and len(loc) >= 3 and loc[:2] == ["body", "events"]):
                return False
            index = loc[2]
            if not isinstance(index, int) or isinstance(index, bool) or not 0 <= index < len(items):
                return False
            problems.setdefault(index, []).append((loc[3:], str(error.get("msg", "invalid"))))
        for index, item in enumerate(items):
            found = problems.get(index)
            if found is None:
                tally.retry(item)
            elif all("timestamp" in loc for loc, _ in found):
                # Ahead of the backend's clock: the next attempt clamps further back.
                self._endpoint.widen_margin()
                tally.retry(item)
            else:
                text = "; ".join(f"{'.'.join(str(p) for p in loc) or 'event'}: {msg}" for loc, msg in found)
                tally.dead(item, self._endpoint.redact(f"{self.name}: HTTP 422: {text}")[:500])
        return True

    def close(self) -> None:
        """Close the HTTP connection pool."""
        self._endpoint.close()

    def __repr__(self) -> str:
        return f"{type(self).__name__}(base_url={self._endpoint.shown_url!r}, event_name={self.event_name!r})"


def _clean(values: Mapping[str, object]) -> dict[str, Scalar]:
    return clean_scalars(values, max_key=MAX_KEY_LENGTH, max_str=MAX_STRING_LENGTH, allow_empty_str=False)


def _count(response: httpx.Response, key: str) -> int:
    try:
        value = response.json().get(key, 0)
    except (ValueError, AttributeError):
        return 0
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


class Polar(Spaire):
    """Send usage to Polar's events ingest API (``https://api.polar.sh``; ``sandbox=True`` for the sandbox).

    Same API and mapping as :class:`Spaire`.
    """

    name = "polar"
    default_base_url = "https://api.polar.sh"
    sandbox_base_url = "https://sandbox-api.polar.sh"

    def __init__(
        self,
        api_key: Optional[str] = None,
        *,
        base_url: Optional[str] = None,
        sandbox: Optional[bool] = None,
        event_name: Optional[str] = None,
        customer_field: Optional[str] = None,
        organization_id: Optional[str] = None,
        timeout: Optional[float] = None,
    ) -> None:
        self._sandbox = sandbox
        super().__init__(
            api_key,
            base_url=base_url,
            event_name=event_name,
            customer_field=customer_field,
            organization_id=organization_id,
            timeout=timeout,
        )

    def _default_url(self, env: EnvVars) -> str:
        return self.sandbox_base_url if env.flag_or(self._sandbox, "SANDBOX") else self.default_base_url
