"""A loopback Spaire / Polar events API: ``POST /v1/events/ingest``, validated like the real one."""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any, Optional

from ._base import Answer, LoopbackBackend, Request

__all__ = ["PolarBackend", "SpaireBackend"]

_TOKEN_KEYS = (
    "input_tokens",
    "output_tokens",
    "cache_read_tokens",
    "cache_write_tokens",
    "reasoning_tokens",
    "total_tokens",
)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


class SpaireBackend(LoopbackBackend):
    """Keeps the events ingest contract of Spaire (a Polar fork).

    - Bearer token auth (401 otherwise).
    - Validates every event like the API's schema: ``name``; ``customer_id``
      (UUID4) or ``external_customer_id``; aware ``timestamp`` not in the
      future (by this server's clock); ``metadata`` with at most 50 keys, keys
      of 1-40 characters, values str (1-500 characters, no NUL) / int / float /
      bool, plus the reserved ``_llm`` and ``_cost`` objects.
    - One invalid event refuses the whole batch: 422 with FastAPI's
      ``{"detail": [{"loc": ["body", "events", i, ...], "msg": ...}]}``
      (``pinpoint=False``: a detail that names no event).
    - Deduplicates on ``external_id``; answers ``{"inserted": n, "duplicates": d}``.

    ``events`` maps each external id to the event accepted; :meth:`totals`
    sums the token metadata and ``_cost`` per customer.
    """

    name = "spaire"

    def __init__(self, *, api_key: str = "spaire_test_key", port: int = 0, pinpoint: bool = True) -> None:
        super().__init__(api_key=api_key, port=port)
        self.pinpoint = pinpoint
        self.max_events: Optional[int] = None
        self.events: dict[str, dict[str, Any]] = {}
        self.inserted = 0
        self.duplicates = 0

    def error_body(self, status: int) -> Any:
        return {"type": "HTTPException", "detail": f"injected {status}"}

    def handle(self, request: Request) -> Answer:
        if request.method != "POST" or request.path != "/v1/events/ingest":
            return Answer(404, {"detail": "Not Found"})
        if not self.authorized(request):
            return Answer(
                401,
                {
                    "error": "invalid_token",
                    "error_description": "The access token provided is expired, revoked or malformed.",
                },
            )
        try:
            body = request.json()
        except ValueError:
            return Answer(
                422, {"detail": [{"type": "json_invalid", "loc": ["body"], "msg": "JSON decode error"}]}
            )
        events = body.get("events") if isinstance(body, dict) else None
        if not isinstance(events, list):
            return Answer(
                422, {"detail": [{"type": "missing", "loc": ["body", "events"], "msg": "Field required"}]}
            )
        if self.max_events is not None and len(events) > self.max_events:
            return Answer(413, {"type": "RequestEntityTooLarge", "detail": "Too many events"})
        errors: list[dict[str, Any]] = []
        for index, event in enumerate(events):
            errors.extend(self._errors(index, event))
        if errors:
            detail: Any = errors if self.pinpoint else "Invalid events in batch"
            return Answer(422, {"detail": detail})
        inserted = duplicates = 0
        with self._lock:
            for event in events:
                key = event.get("external_id") or f"_auto_{uuid.uuid4()}"
                if key in self.events:
                    duplicates += 1
                    continue
                self.events[key] = event
                inserted += 1
            self.inserted += inserted
            self.duplicates += duplicates
        return Answer(200, {"inserted": inserted, "duplicates": duplicates})

    # -- validation ------------------------------------------------------

    def _errors(self, index: int, event: Any) -> list[dict[str, Any]]:
        base: list[Any] = ["body", "events", index]

        def err(loc: list[Any], msg: str, value: Any = None) -> dict[str, Any]:
            return {"type": "value_error", "loc": base + loc, "msg": msg, "input": value}

        if not isinstance(event, dict):
            return [err([], "Input should be a valid dictionary", event)]
        out = []
        if not isinstance(event.get("name"), str):
            out.append(err(["name"], "Field required"))
        has_internal = "customer_id" in event
        has_external = "external_customer_id" in event
        if has_internal == has_external:
            out.append(err([], "Exactly one of customer_id or external_customer_id is required"))
        elif has_internal:
            try:
                valid = uuid.UUID(str(event["customer_id"])).version == 4
            except ValueError:
                valid = False
            if not valid:
                out.append(
                    err(["customer_id"], "Input should be a valid UUID, version 4", event["customer_id"])
                )
        elif not isinstance(event["external_customer_id"], str):
            out.append(err(["external_customer_id"], "Input should be a valid string"))
        external_id = event.get("external_id")
        if external_id is not None and not isinstance(external_id, str):
            out.append(err(["external_id"], "Input should be a valid string"))
        if "timestamp" in event:
            problem = self._timestamp_problem(event["timestamp"])
            if problem:
                out.append(err(["timestamp"], problem, event["timestamp"]))
        metadata = event.get("metadata", {})
        if not isinstance(metadata, dict):
            out.append(err(["metadata"], "Input should be a valid dictionary"))
            return out
        if len(metadata) > 50:
            out.append(err(["metadata"], "Dictionary should have at most 50 items after validation"))
        for key, value in metadata.items():
            loc = ["metadata", key]
            if not 1 <= len(key) <= 40:
                out.append(err(loc, "String should have at most 40 characters", key))
            elif key == "_llm":
                out.extend(err([*loc, k], m) for k, m in _llm_problems(value))
            elif key == "_cost":
                out.extend(err([*loc, k], m) for k, m in _cost_problems(value))
            elif isinstance(value, str):
                if not 1 <= len(value) <= 500:
                    out.append(err(loc, "String should have between 1 and 500 characters", value[:50]))
                elif "\x00" in value:
                    out.append(err(loc, "String should not contain NUL characters"))
            elif not isinstance(value, (int, float, bool)):
                out.append(err(loc, "Input should be a valid string, integer, number or boolean", value))
        return out

    def _timestamp_problem(self, value: Any) -> Optional[str]:
        if not isinstance(value, str):
            return "Input should be a valid datetime"
        try:
            moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return "Input should be a valid datetime"
        if moment.tzinfo is None:
            return "Input should have timezone info"
        if moment > self.now():
            return "Value error, Timestamp must be in the past."
        return None

    # -- what the backend holds ------------------------------------------

    def totals(self) -> dict[Optional[str], dict[str, Any]]:
        """Per customer: ``events``, the token metadata summed, and ``cost_cents`` (a Decimal)."""
        out: dict[Optional[str], dict[str, Any]] = {}
        with self._lock:
            events = list(self.events.values())
        for event in events:
            customer = event.get("external_customer_id", event.get("customer_id"))
            row = out.setdefault(
                customer, {"events": 0, **dict.fromkeys(_TOKEN_KEYS, 0), "cost_cents": Decimal(0)}
            )
            row["events"] += 1
            metadata = event.get("metadata", {})
            for key in _TOKEN_KEYS:
                row[key] += metadata.get(key, 0)
            cost = metadata.get("_cost")
            if cost:
                row["cost_cents"] += Decimal(str(cost["amount"]))
        return out


def _llm_problems(value: Any) -> list[tuple[str, str]]:
    if not isinstance(value, dict):
        return [("", "Input should be a valid dictionary")]
    out = []
    for key in ("vendor", "model"):
        if not isinstance(value.get(key), str):
            out.append((key, "Field required (string)"))
    for key in ("input_tokens", "output_tokens", "total_tokens"):
        if not _is_int(value.get(key)):
            out.append((key, "Field required (integer)"))
    if "cached_input_tokens" in value and not _is_int(value["cached_input_tokens"]):
        out.append(("cached_input_tokens", "Input should be a valid integer"))
    return out


def _cost_problems(value: Any) -> list[tuple[str, str]]:
    if not isinstance(value, dict):
        return [("", "Input should be a valid dictionary")]
    out = []
    if value.get("currency") != "usd":
        out.append(("currency", "String should match pattern 'usd'"))
    amount = value.get("amount")
    if isinstance(amount, bool) or not isinstance(amount, (int, float, str)):
        return [*out, ("amount", "Decimal input should be an integer, float, string or Decimal object")]
    try:
        number = Decimal(str(amount))
    except InvalidOperation:
        return [*out, ("amount", "Input should be a valid decimal")]
    if not number.is_finite():
        return [*out, ("amount", "Input should be a finite number")]
    _, digits, exponent = number.as_tuple()
    assert isinstance(exponent, int)
    decimals = max(-exponent, 0)
    total = max(len(digits), decimals) if exponent < 0 else len(digits) + exponent
    if decimals > 12:
        out.append(("amount", "Decimal input should have no more than 12 decimal places"))
    if total > 17:
        out.append(("amount", "Decimal input should have no more than 17 digits in total"))
    return out


class PolarBackend(SpaireBackend):
    """Polar's events ingest API: the same contract as :class:`SpaireBackend`."""

    name = "polar"

    def __init__(self, *, api_key: str = "polar_oat_test_key", port: int = 0, pinpoint: bool = True) -> None:
        super().__init__(api_key=api_key, port=port, pinpoint=pinpoint)
