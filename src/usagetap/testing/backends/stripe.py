"""A loopback Stripe Billing meter-events API: ``POST /v1/billing/meter_events`` (form-encoded)."""

from __future__ import annotations

import base64
import re
import uuid
from typing import Any, Optional
from urllib.parse import parse_qs

from ._base import Answer, LoopbackBackend, Request

__all__ = ["StripeBackend"]

_WHOLE = re.compile(r"^[0-9]+$")
_PAYLOAD = re.compile(r"^payload\[([^\]]+)\]$")
MAX_AGE = 35 * 86400
MAX_AHEAD = 5 * 60


class StripeBackend(LoopbackBackend):
    """Keeps the meter-events contract of Stripe.

    - Secret key as Bearer token or Basic user (401 with Stripe's error shape,
      which echoes a masked key).
    - Form fields ``event_name``, ``payload[<customer key>]``,
      ``payload[<value key>]`` (a whole number), ``identifier`` (at most 100
      characters), ``timestamp`` (within the past 35 days, at most 5 minutes
      ahead). ``meters`` (event name -> (customer key, value key)) restricts the
      event names accepted; by default any name with Stripe's default keys.
    - A repeated ``identifier`` is refused: 400 "An event already exists with
      identifier ...", ``Stripe-Should-Retry: false``.
    - Success: the ``billing.meter_event`` object.
    """

    name = "stripe"

    def __init__(self, *, api_key: str = "sk_test_51LoopbackKey0000", port: int = 0) -> None:
        super().__init__(api_key=api_key, port=port)
        self.meters: Optional[dict[str, tuple[str, str]]] = None
        self.events: dict[str, dict[str, Any]] = {}

    def error_body(self, status: int) -> Any:
        kind = "rate_limit_error" if status == 429 else "api_error"
        return {"error": {"message": f"injected {status}", "type": kind}}

    def authorized(self, request: Request) -> bool:
        header = request.headers.get("authorization", "")
        if header.lower().startswith("basic "):
            try:
                user = base64.b64decode(header[6:]).decode().split(":", 1)[0]
            except (ValueError, UnicodeDecodeError):
                return False
            return user == self.api_key
        return super().authorized(request)

    def _error(self, message: str, param: Optional[str] = None, status: int = 400, **extra: str) -> Answer:
        error: dict[str, Any] = {"message": message, "type": "invalid_request_error", **extra}
        if param:
            error["param"] = param
        return Answer(status, {"error": error}, headers={"Stripe-Should-Retry": "false"})

    def handle(self, request: Request) -> Answer:
        if request.method != "POST" or request.path != "/v1/billing/meter_events":
            return self._error(f"Unrecognized request URL ({request.method}: {request.path}).", status=404)
        if not self.authorized(request):
            presented = self.bearer(request) or ""
            masked = f"{presented[:8]}{'*' * 12}{presented[-4:]}" if len(presented) > 12 else "(none)"
            return self._error(f"Invalid API Key provided: {masked}", status=401)
        if not request.headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
            return self._error("Stripe expects application/x-www-form-urlencoded requests.")
        fields = {k: v[-1] for k, v in parse_qs(request.body.decode(), keep_blank_values=True).items()}
        event_name = fields.get("event_name")
        if not event_name:
            return self._error("Missing required param: event_name.", "event_name")
        customer_key, value_key = ("stripe_customer_id", "value")
        if self.meters is not None:
            if event_name not in self.meters:
                return self._error(f"No active meter was found with event_name {event_name}.", "event_name")
            customer_key, value_key = self.meters[event_name]
        payload = {m.group(1): v for k, v in fields.items() if (m := _PAYLOAD.match(k))}
        if not payload.get(customer_key):
            return self._error(
                f"Missing required param: payload[{customer_key}].", f"payload[{customer_key}]"
            )
        value = payload.get(value_key, "")
        if not _WHOLE.match(value):
            return self._error(
                f"Invalid payload[{value_key}]: must be a whole number.", f"payload[{value_key}]"
            )
        identifier = fields.get("identifier") or f"auto_{uuid.uuid4().hex}"
        if len(identifier) > 100:
            return self._error("Invalid identifier: must be at most 100 characters.", "identifier")
        now = int(self.now().timestamp())
        try:
            timestamp = int(fields.get("timestamp") or now)
        except ValueError:
            return self._error("Invalid integer: timestamp.", "timestamp")
        if timestamp > now + MAX_AHEAD:
            return self._error("Timestamp must not be more than 5 minutes in the future.", "timestamp")
        if timestamp < now - MAX_AGE:
            return self._error("Timestamp must be within the past 35 days.", "timestamp")
        with self._lock:
            if identifier in self.events:
                return self._error(f"An event already exists with identifier {identifier}.", "identifier")
            event = {
                "object": "billing.meter_event",
                "created": now,
                "event_name": event_name,
                "identifier": identifier,
                "livemode": False,
                "payload": payload,
                "timestamp": timestamp,
            }
            self.events[identifier] = event
        return Answer(200, event)

    def totals(self, event_name: Optional[str] = None) -> dict[str, dict[str, int]]:
        """Per customer: ``value`` summed, and per ``payload[token_type]`` when present."""
        out: dict[str, dict[str, int]] = {}
        with self._lock:
            events = list(self.events.values())
        for event in events:
            if event_name is not None and event["event_name"] != event_name:
                continue
            payload = event["payload"]
            row = out.setdefault(payload.get("stripe_customer_id", ""), {"value": 0})
            row["value"] += int(payload["value"])
            token_type = payload.get("token_type")
            if token_type:
                row[token_type] = row.get(token_type, 0) + int(payload["value"])
        return out
