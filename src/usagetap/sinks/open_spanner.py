"""Open Spanner: ``POST /v1/usages/bulk`` (at most 1000 items), deduplicated on ``idempotency_key``.

One item per record (quantity: all tokens), or with ``split_by_token_type=True``
one per token type, keyed ``{event_id}:{token_type}``::

    {"subject": "org_1", "meter": "ai_tokens", "quantity": 120, "idempotency_key": "<event_id>",
     "timestamp": "...Z", "metadata": {"model": ..., "provider": ..., "operation": ..., "cached": false}}

With ``fee_meter`` set, a record's non-token fees (``web_search``, ``web_fetch``, ...)
are items of that meter (a count of uses, dimension ``fee``), keyed ``{event_id}:{fee}``.

The meter's typed dimensions (``model``, ``provider``, ``operation``,
``cached``, ``token_type`` and the extra ``dimensions`` you name) are what
the metadata must match: :meth:`OpenSpanner.ensure_meter` creates the meter
with them. The bulk answer is read per item: ``accepted_items`` and
``duplicate_items`` (by key) are delivered, ``failed_items[index]`` are
dead-lettered with their message. ``not_found`` for the sink's own meter
pauses delivery until the meter exists; for a meter an event names in its
``meter`` dimension, it dead-letters that event only.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import Any, Optional

import httpx

from .._record import UsageRecord
from ..errors import ConfigurationError, UsagetapError
from ._http import DEFAULT_TIMEOUT, Endpoint, check_api_key, post_batch, rfc3339
from ._items import TOKEN_TYPES, OutcomeTally, Unsendable, WireItem, fee_items, items_for
from ._vars import EnvVars
from .base import DEFAULT_IN_FLIGHT, BaseSink, Outcomes, meter_of

__all__ = ["OpenSpanner"]

MAX_ITEMS = 1000
MAX_SUBJECT = 128
_SUBJECT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]*$")
_DIMENSION = re.compile(r"^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$")
_BUILTIN_DIMENSIONS: tuple[tuple[str, str, bool, str], ...] = (
    ("model", "string", True, "Model the provider reports"),
    ("provider", "string", True, "AI provider"),
    ("operation", "string", True, "chat, responses, embeddings, messages, ..."),
    ("cached", "boolean", False, "Whether cached context was read"),
    ("token_type", "string", False, "input (uncached), cache_read, cache_write or output"),
)
_FEE_DIMENSIONS: tuple[tuple[str, str, bool, str], ...] = (
    *_BUILTIN_DIMENSIONS[:3],
    ("fee", "string", True, "web_search, web_fetch, file_search, code_execution or image_generation"),
)


class OpenSpanner(BaseSink):
    """Send usage to an Open Spanner deployment.

    ::

        sink = usagetap.sinks.OpenSpanner(api_key="osp_...", base_url="https://metering.example.com",
                                          split_by_token_type=True, dimensions=["feature"])
        sink.ensure_meter()
        usagetap.configure(sink=sink)

    ``dimensions``: names of record dimensions to send as extra (string)
    meter dimensions; others are not sent, since the meter rejects unknown keys.
    ``fee_meter``: the meter of non-token fees (counted uses), or None not to send them.
    ``ensure_meter=True`` creates the meter (:meth:`ensure_meter`) before the
    first delivery, from the delivery thread. An argument not given is read from
    its variable (``USAGETAP_API_KEY``, ``USAGETAP_BASE_URL``, ``USAGETAP_METER``,
    ``USAGETAP_SPLIT_BY_TOKEN_TYPE``, ``USAGETAP_DIMENSIONS`` (comma-separated),
    ``USAGETAP_ENSURE_METER``, ``USAGETAP_TIMEOUT``) when the environment describes this sink:
    ``USAGETAP_SINK`` names it, or is unset and neither the key nor the URL is passed.
    """

    name = "open_spanner"
    max_in_flight = DEFAULT_IN_FLIGHT

    def __init__(
        self,
        api_key: Optional[str] = None,
        *,
        base_url: Optional[str] = None,
        meter: Optional[str] = None,
        split_by_token_type: Optional[bool] = None,
        dimensions: Optional[Iterable[str]] = None,
        fee_meter: Optional[str] = None,
        ensure_meter: Optional[bool] = None,
        timeout: Optional[float] = None,
    ) -> None:
        env = EnvVars.for_constructor(self.name, api_key, base_url)
        key = check_api_key(env.required_key(api_key), self.name)
        base_url = env.text_or(base_url, "BASE_URL")
        if base_url is None:
            raise ConfigurationError(
                f"{self.name}: the deployment's URL is required (pass base_url=... or set USAGETAP_BASE_URL)"
            )
        meter = env.text_or(meter, "METER", "ai_tokens")
        split_by_token_type = env.flag_or(split_by_token_type, "SPLIT_BY_TOKEN_TYPE")
        if dimensions is None:
            dimensions = [d.strip() for d in (env.get("DIMENSIONS") or "").split(",") if d.strip()]
        self.creates_meter = env.flag_or(ensure_meter, "ENSURE_METER")
        self._meter_ready = False
        timeout = env.timeout_or(timeout, DEFAULT_TIMEOUT)
        if not isinstance(meter, str) or not meter.strip():
            raise ConfigurationError(f"{self.name}: meter must be a non-empty string")
        if fee_meter is not None and (not isinstance(fee_meter, str) or not fee_meter.strip()):
            raise ConfigurationError(f"{self.name}: fee_meter must be a non-empty string or None")
        builtin = {name for name, *_ in _BUILTIN_DIMENSIONS}
        extra = list(dict.fromkeys(dimensions))
        for dimension in extra:
            if not isinstance(dimension, str) or not _DIMENSION.match(dimension) or dimension == "subject":
                raise ConfigurationError(
                    f"{self.name}: dimension {dimension!r} must use letters, numbers, underscores, "
                    "hyphens or dots, and not be 'subject'"
                )
            if dimension in builtin:
                raise ConfigurationError(
                    f"{self.name}: dimension {dimension!r} is always sent; don't list it"
                )
        self.meter = meter
        self.fee_meter = fee_meter
        self.split_by_token_type = split_by_token_type
        self.dimensions = tuple(extra)
        self.max_batch = MAX_ITEMS // len(TOKEN_TYPES) if split_by_token_type else MAX_ITEMS
        self._endpoint = Endpoint(
            self.name, base_url, headers={"Authorization": f"Bearer {key}"}, timeout=timeout, secrets=(key,)
        )

    @property
    def base_url(self) -> str:
        """The Open Spanner deployment usage is posted to."""
        return self._endpoint.base_url

    # -- the meter -------------------------------------------------------

    def meter_definition(self) -> dict[str, Any]:
        """The ``POST /v1/meters`` body for this sink's meter: a token sum with its typed dimensions."""
        return self._definition(self.meter, "LLM tokens metered by usagetap", "token", _BUILTIN_DIMENSIONS)

    def fee_meter_definition(self) -> Optional[dict[str, Any]]:
        """The ``POST /v1/meters`` body for the fee meter (a sum of uses), or None without one."""
        if self.fee_meter is None:
            return None
        return self._definition(self.fee_meter, "LLM tool fees metered by usagetap", "call", _FEE_DIMENSIONS)

    def _definition(
        self, name: str, description: str, unit: str, builtin: tuple[tuple[str, str, bool, str], ...]
    ) -> dict[str, Any]:
        dimensions = [
            {
                "name": dimension,
                "display_name": dimension.replace("_", " ").title(),
                "description": text,
                "type": kind,
                "required": required,
            }
            for dimension, kind, required, text in builtin
        ]
        dimensions += [{"name": extra, "type": "string", "required": False} for extra in self.dimensions]
        return {
            "name": name,
            "description": description,
            "unit": unit,
            "aggregation": "sum",
            "dimensions": dimensions,
        }

    def ensure_meter(self) -> dict[str, Any]:
        """Create the meter (``POST /v1/meters``) unless it exists; return it as the backend describes it.
        The fee meter, when the sink has one, is created the same way.

        Raises :class:`usagetap.ConfigurationError` when the key is refused and
        :class:`usagetap.UsagetapError` for any other refusal.
        """
        fees = self.fee_meter_definition()
        if fees is not None:
            self._ensure(fees)
        return self._ensure(self.meter_definition())

    def _ensure(self, definition: dict[str, Any]) -> dict[str, Any]:
        name = definition["name"]
        found = self._find_meter(name)
        if found is not None:
            return found
        response = self._endpoint.post("/v1/meters", json=definition)
        if response.is_success:
            created: dict[str, Any] = response.json()
            return created
        if response.status_code == 409:
            found = self._find_meter(name)
            if found is not None:
                return found
        raise self._setup_error(response, name)

    def _find_meter(self, name: str) -> Optional[dict[str, Any]]:
        response = self._endpoint.get("/v1/meters", params={"name": name})
        if not response.is_success:
            raise self._setup_error(response, name)
        body = response.json()
        for meter in body.get("items") or [] if isinstance(body, dict) else []:
            if isinstance(meter, dict) and meter.get("name") == name:
                return meter
        return None

    def _setup_error(self, response: httpx.Response, name: str) -> UsagetapError:
        reason = self._endpoint.reason(response, f"creating meter {name!r}")
        if response.status_code in (401, 403):
            return ConfigurationError(f"{reason} (check the API key and its meters:write scope)")
        return UsagetapError(reason)

    # -- mapping ---------------------------------------------------------

    def items(self, record: UsageRecord) -> list[WireItem]:
        """The items for ``record``; raises :class:`Unsendable` when its customer is no valid subject."""
        customer = record.customer
        if customer is None:
            raise Unsendable("no customer")
        if len(customer) > MAX_SUBJECT or not _SUBJECT.match(customer):
            raise Unsendable(
                f"customer {customer[:80]!r} is not a valid Open Spanner subject (at most {MAX_SUBJECT} "
                "letters, digits, '_', '.', ':' or '-', starting with a letter or digit)"
            )
        items = items_for(record, split=self.split_by_token_type)
        if self.fee_meter is not None:
            items += [item._replace(token_type=None, fee=item.token_type) for item in fee_items(record)]
        return items

    def body(self, item: WireItem) -> dict[str, Any]:
        """The ``usage.CreateRequest`` item for one item (one record, one token type or one fee of it)."""
        record = item.record
        metadata: dict[str, Any] = {
            "model": record.model,
            "provider": record.provider,
            "operation": record.operation,
        }
        if item.fee is not None:
            metadata["fee"] = item.fee
        else:
            cached = record.dimensions.get("cached")
            metadata["cached"] = cached if isinstance(cached, bool) else record.cache_read_tokens > 0
        if item.token_type is not None:
            metadata["token_type"] = item.token_type
        for name in self.dimensions:
            value = record.dimensions.get(name)
            if value is not None:
                metadata[name] = str(value)
        return {
            "subject": record.customer,
            "meter": self.fee_meter if item.fee is not None else meter_of(record, self.meter),
            "quantity": item.quantity,
            "idempotency_key": item.key,
            "timestamp": rfc3339(record.timestamp),
            "metadata": metadata,
        }

    # -- delivery --------------------------------------------------------

    def send(self, records: Sequence[UsageRecord]) -> Outcomes:
        """POST the items in bulk requests of at most 1000 and read each item's outcome.

        With ``ensure_meter`` on, the meter is created first (once); a refused key halts
        delivery, any other failure to create it retries the batch.
        """
        if self.creates_meter and not self._meter_ready:
            try:
                self.ensure_meter()
            except ConfigurationError as exc:
                return Outcomes.halted(records, str(exc))
            except (UsagetapError, httpx.HTTPError) as exc:
                reason = self._endpoint.redact(f"{self.name}: creating meter {self.meter!r}: {exc}")
                return Outcomes.all_retry(records, reason=reason[:500])
            self._meter_ready = True
        tally = OutcomeTally(records)
        tally.send_in_chunks(
            tally.collect(self.items), MAX_ITEMS, lambda chunk: self._send_chunk(chunk, tally)
        )
        return tally.outcomes()

    def _send_chunk(self, chunk: list[WireItem], tally: OutcomeTally) -> None:
        post_batch(
            self._endpoint,
            "/v1/usages/bulk",
            chunk,
            tally,
            read=lambda response: self._read(response, chunk, tally),
            json=[self.body(i) for i in chunk],
        )

    def _read(self, response: httpx.Response, chunk: list[WireItem], tally: OutcomeTally) -> bool:
        """A bulk answer (a 2xx, or a 400 listing failed items): each item's outcome."""
        body = _json(response)
        if not (response.is_success or (response.status_code == 400 and _is_bulk(body))):
            return False
        self._per_item(chunk, body, tally)
        return True

    def _per_item(self, chunk: list[WireItem], body: Any, tally: OutcomeTally) -> None:
        body = body if isinstance(body, dict) else {}
        accepted = _keys(body.get("accepted_items"))
        duplicates = _keys(body.get("duplicate_items"))
        failed: dict[int, dict[str, Any]] = {}
        for failure in body.get("failed_items") or []:
            if isinstance(failure, dict) and isinstance(failure.get("index"), int):
                failed[failure["index"]] = failure
        for index, item in enumerate(chunk):
            failure = failed.get(index)
            if failure is not None:
                code, message = str(failure.get("code", "")), str(failure.get("message", ""))
                meter = self.fee_meter if item.fee is not None else meter_of(item.record, self.meter)
                if code == "not_found" and meter in (self.meter, self.fee_meter):
                    tally.retry(item)
                    tally.halt = (
                        f"{self.name}: meter {meter!r} not found ({message}); create it, e.g. with "
                        "OpenSpanner.ensure_meter() (delivery is paused and nothing is dropped)"
                    )
                elif code == "not_found":
                    tally.dead(
                        item,
                        self._endpoint.redact(
                            f"{self.name}: not_found: meter {meter!r} (named by the event's 'meter' "
                            f"dimension) does not exist: {message}"
                        )[:500],
                    )
                else:
                    tally.dead(item, self._endpoint.redact(f"{self.name}: {code}: {message}")[:500])
            elif item.key in accepted:
                tally.delivered(item)
            elif item.key in duplicates:
                tally.delivered(item, duplicate=True)
            else:
                tally.retry(item)

    def close(self) -> None:
        """Close the HTTP connection pool."""
        self._endpoint.close()

    def __repr__(self) -> str:
        return (
            f"OpenSpanner(base_url={self._endpoint.shown_url!r}, meter={self.meter!r}, "
            f"split_by_token_type={self.split_by_token_type})"
        )


def _json(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


def _is_bulk(body: Any) -> bool:
    return isinstance(body, dict) and any(
        k in body for k in ("failed_items", "accepted_items", "duplicate_items")
    )


def _keys(items: Any) -> set[str]:
    if not isinstance(items, list):
        return set()
    return {str(i["idempotency_key"]) for i in items if isinstance(i, dict) and i.get("idempotency_key")}
