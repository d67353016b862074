"""Stripe Billing meter events: one form-encoded ``POST /v1/billing/meter_events`` per event.

::

    event_name=llm_tokens&payload[stripe_customer_id]=cus_...&payload[value]=120
    &identifier=<event_id>&timestamp=1735689600

Stripe deduplicates on ``identifier`` (for at least 24 hours) and answers a
repeat with a 400 "already exists" error, which counts as delivered here.
Values are whole numbers; with ``split_by_token_type=True`` each record gives
one event per token type (``payload[token_type]``, identifier
``{event_id}:{token_type}``), and ``event_name`` may contain ``{token_type}``
to feed one meter (one price) per token type; such a sink also sends each non-token fee
of a record (``web_search``, ...) as an event of its own meter (``payload[token_type]``
the fee's name, its count the value). Events are sent concurrently
(``concurrency`` requests at a time over one connection pool). Timestamps are
never in the future; events older than Stripe's 35-day window are
dead-lettered, not sent. Customers must be Stripe customer ids (``cus_...``).
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Optional

import httpx

from .._record import UsageRecord
from ..errors import ConfigurationError
from ._http import DEFAULT_TIMEOUT, Endpoint, check_api_key, post_batch, rfc3339
from ._items import OutcomeTally, Unsendable, WireItem, fee_items, items_for
from ._vars import EnvVars
from .base import BaseSink, Outcomes, meter_of

__all__ = ["Stripe"]

MAX_AGE = timedelta(days=35)
MAX_IDENTIFIER = 100
_DUPLICATE_CODES = ("duplicate_meter_event", "resource_already_exists")


def identifier(key: str) -> str:
    """``key`` if Stripe takes it (at most 100 characters), else a stable hash of it."""
    return key if len(key) <= MAX_IDENTIFIER else hashlib.sha256(key.encode()).hexdigest()


def is_duplicate(response: httpx.Response) -> bool:
    """Stripe's answer to an identifier it already holds."""
    if response.status_code != 400:
        return False
    try:
        error = response.json().get("error") or {}
    except (ValueError, AttributeError):
        return False
    message = str(error.get("message", "")).lower()
    return error.get("code") in _DUPLICATE_CODES or "already exists with identifier" in message


def _should_retry(response: httpx.Response) -> bool:
    """Stripe's ``Stripe-Should-Retry: true``: the request may succeed if sent again."""
    value: Optional[str] = response.headers.get("stripe-should-retry")
    return value == "true"


MAX_CONCURRENCY = 64  # requests in flight (threads, connections); Stripe's live rate limit is 1000/s


class Stripe(BaseSink):
    """Send usage to Stripe as billing meter events.

    ::

        usagetap.configure(sink=usagetap.sinks.Stripe(api_key="sk_live_...", event_name="llm_tokens"))

    ``customer_key`` / ``value_key``: the meter's ``customer_mapping`` and
    ``value_settings`` payload keys (Stripe's defaults). An argument not given
    is read from its variable (``USAGETAP_API_KEY``, ``USAGETAP_BASE_URL``,
    ``USAGETAP_EVENT_NAME``, ``USAGETAP_SPLIT_BY_TOKEN_TYPE``, ``USAGETAP_CONCURRENCY``,
    ``USAGETAP_TIMEOUT``) when the environment describes this sink:
    ``USAGETAP_SINK`` names it, or is unset and neither the key nor the URL is passed.
    """

    name = "stripe"
    max_batch = 100
    default_base_url = "https://api.stripe.com"

    def __init__(
        self,
        api_key: Optional[str] = None,
        *,
        base_url: Optional[str] = None,
        event_name: Optional[str] = None,
        split_by_token_type: Optional[bool] = None,
        customer_key: str = "stripe_customer_id",
        value_key: str = "value",
        concurrency: Optional[int] = None,
        timeout: Optional[float] = None,
    ) -> None:
        env = EnvVars.for_constructor(self.name, api_key, base_url)
        key = check_api_key(env.required_key(api_key), self.name)
        base_url = env.text_or(base_url, "BASE_URL")
        event_name = env.text_or(event_name, "EVENT_NAME", "llm_tokens")
        split_by_token_type = env.flag_or(split_by_token_type, "SPLIT_BY_TOKEN_TYPE")
        if concurrency is None:
            concurrency = env.within("CONCURRENCY", int, 1, MAX_CONCURRENCY) or 8
        timeout = env.timeout_or(timeout, DEFAULT_TIMEOUT)
        if not key.startswith(("sk_", "rk_")):
            raise ConfigurationError(
                "stripe: the API key must be a secret key (sk_...) or a restricted key (rk_...) "
                "with write access to billing meter events"
                + ("; a publishable key (pk_...) cannot record usage" if key.startswith("pk_") else "")
            )
        if not isinstance(event_name, str) or not event_name.strip():
            raise ConfigurationError("stripe: event_name must be a non-empty string")
        if "{token_type}" in event_name and not split_by_token_type:
            raise ConfigurationError(
                "stripe: event_name contains {token_type} but split_by_token_type is off"
            )
        if isinstance(concurrency, bool) or not isinstance(concurrency, int):
            raise ConfigurationError("stripe: concurrency must be an int")
        if not 1 <= concurrency <= MAX_CONCURRENCY:
            raise ConfigurationError(f"stripe: concurrency must be 1 to {MAX_CONCURRENCY}, got {concurrency}")
        self.event_name = event_name
        self.split_by_token_type = split_by_token_type
        self.customer_key = customer_key
        self.value_key = value_key
        self.concurrency = concurrency
        self._endpoint = Endpoint(
            self.name,
            base_url or self.default_base_url,
            headers={"Authorization": f"Bearer {key}"},
            timeout=timeout,
            secrets=(key,),
            max_connections=concurrency,
        )
        self._pool: Optional[ThreadPoolExecutor] = None
        self._pool_pid = 0
        self._pool_lock = threading.Lock()

    @property
    def base_url(self) -> str:
        """The Stripe API meter events are posted to."""
        return self._endpoint.base_url

    # -- mapping ---------------------------------------------------------

    def items(self, record: UsageRecord) -> list[WireItem]:
        """The meter events for ``record`` (one, or one per token type); ``Unsendable`` if unsendable."""
        customer = record.customer
        if customer is None:
            raise Unsendable("no customer")
        if not customer.startswith("cus_"):
            raise Unsendable(f"customer {customer[:80]!r} is not a Stripe customer id (cus_...)")
        if record.timestamp < self._endpoint.now() - MAX_AGE:
            raise Unsendable(
                f"older than {MAX_AGE.days} days ({rfc3339(record.timestamp)}); "
                "Stripe refuses meter events that old"
            )
        items = items_for(record, split=self.split_by_token_type)
        if "{token_type}" in self.event_name:  # a meter per type: fees go to their own meters
            items += fee_items(record)
        return items

    def form(self, item: WireItem) -> dict[str, str]:
        """The form fields of one meter event."""
        record = item.record
        moment = self._endpoint.not_after_now(record.timestamp)
        form = {
            "event_name": meter_of(record, self.event_name).replace("{token_type}", item.token_type or ""),
            f"payload[{self.customer_key}]": str(record.customer),
            f"payload[{self.value_key}]": str(item.quantity),
            "identifier": identifier(item.key),
            "timestamp": str(int(moment.timestamp())),
        }
        if item.token_type is not None:
            form["payload[token_type]"] = item.token_type
        return form

    # -- delivery --------------------------------------------------------

    def send(self, records: Sequence[UsageRecord]) -> Outcomes:
        """POST one meter event per item, ``concurrency`` at a time; "already exists" counts as delivered."""
        tally = OutcomeTally(records)
        items = tally.collect(self.items)
        stop = threading.Event()

        def one(item: WireItem) -> OutcomeTally:
            own = OutcomeTally([item.record])  # tallied here, merged by send() in item order
            if stop.is_set():
                own.retry(item)
                return own
            response = post_batch(
                self._endpoint,
                "/v1/billing/meter_events",
                [item],
                own,
                read=lambda answer: self._read(answer, item, own),
                atomic=False,
                data=self.form(item),
            )
            if own.halt or (
                response is not None and response.status_code == 429 and not _should_retry(response)
            ):
                stop.set()
            return own

        for own in self._executor().map(one, items):
            tally.merge(own)
        return tally.outcomes()

    def _read(self, response: httpx.Response, item: WireItem, tally: OutcomeTally) -> bool:
        """A 2xx; Stripe's "already exists" (a duplicate); ``Stripe-Should-Retry: true`` (retry)."""
        if response.is_success:
            tally.delivered(item)
        elif is_duplicate(response):
            tally.delivered(item, duplicate=True)
        elif _should_retry(response):
            tally.retry(item, reason=f"{self._endpoint.reason(response)} (Stripe-Should-Retry)")
        else:
            return False
        return True

    def _executor(self) -> ThreadPoolExecutor:
        with self._pool_lock:
            if self._pool is None or self._pool_pid != os.getpid():
                self._pool = ThreadPoolExecutor(self.concurrency, thread_name_prefix="usagetap-stripe")
                self._pool_pid = os.getpid()
            return self._pool

    def close(self) -> None:
        """Close the HTTP connection pool and its worker threads."""
        with self._pool_lock:
            pool, self._pool = self._pool, None
        if pool is not None and self._pool_pid == os.getpid():
            pool.shutdown(wait=True)
        self._endpoint.close()

    def __repr__(self) -> str:
        return f"Stripe(base_url={self._endpoint.shown_url!r}, event_name={self.event_name!r})"
