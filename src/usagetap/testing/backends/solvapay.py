"""A loopback SolvaPay usage API: ``POST /v1/sdk/usages`` and ``/v1/sdk/usages/bulk``."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any, Optional

from ._base import Answer, LoopbackBackend, Request

__all__ = ["SolvaPayBackend"]

ACTION_TYPES = ("transaction", "api_call", "hour", "email", "storage", "custom")
OUTCOMES = ("success", "paywall", "fail")
MAX_UNITS = 100_000


class SolvaPayBackend(LoopbackBackend):
    """Keeps SolvaPay's usage-recording contract.

    - Bearer secret key (401 otherwise).
    - Each event: ``customerRef`` (a known one, when ``customers`` is set),
      whole ``units`` from 0 to 100,000, ``actionType`` and ``outcome`` from
      their enums, ``metadata`` an object, ``timestamp`` at most 24 h ahead and
      30 days back. The bulk call validates the whole batch first: one bad
      event answers 400 ``Validation failed`` and nothing is recorded.
    - A known ``idempotencyKey`` returns the original reference and is not
      counted in ``inserted``: ``{"success": true, "inserted": n, "results": [{"reference"}]}``.
    """

    name = "solvapay"

    def __init__(self, *, api_key: str = "sk_sandbox_test_key", port: int = 0) -> None:
        super().__init__(api_key=api_key, port=port)
        self.customers: Optional[set[str]] = None
        self.events: dict[str, dict[str, Any]] = {}

    def error_body(self, status: int) -> Any:
        return {"statusCode": status, "message": f"injected {status}"}

    def handle(self, request: Request) -> Answer:
        if request.method != "POST" or request.path not in ("/v1/sdk/usages", "/v1/sdk/usages/bulk"):
            return Answer(404, {"statusCode": 404, "message": f"Cannot {request.method} {request.path}"})
        if not self.authorized(request):
            return Answer(
                401, {"statusCode": 401, "message": "Invalid or missing secret key", "error": "Unauthorized"}
            )
        try:
            body = request.json()
        except ValueError:
            return self._invalid([{"field": "body", "message": "must be JSON"}])
        bulk = request.path.endswith("/bulk")
        events = body.get("events") if bulk and isinstance(body, dict) else [body]
        if not isinstance(events, list) or not events:
            return self._invalid([{"field": "events", "message": "events must be a non-empty array"}])
        problems = [
            p for i, e in enumerate(events) for p in self._problems(f"events.{i}." if bulk else "", e)
        ]
        if problems:
            return self._invalid(problems)
        if self.customers is not None:
            unknown = sorted({e["customerRef"] for e in events} - self.customers)
            if unknown:
                return Answer(404, {"statusCode": 404, "message": f"Customer not found: {unknown[0]}"})
        inserted = 0
        results = []
        with self._lock:
            for event in events:
                key = event.get("idempotencyKey")
                if key and key in self.events:
                    results.append({"reference": self.events[key]["reference"]})
                    continue
                reference = f"usg_{uuid.uuid4().hex[:16]}"
                self.events[key or reference] = {**event, "reference": reference}
                results.append({"reference": reference})
                inserted += 1
        if bulk:
            return Answer(200, {"success": True, "inserted": inserted, "results": results})
        return Answer(200, {"success": True, "reference": results[0]["reference"]})

    def _invalid(self, errors: list[dict[str, str]]) -> Answer:
        return Answer(400, {"statusCode": 400, "message": "Validation failed", "errors": errors[:20]})

    def _problems(self, where: str, event: Any) -> list[dict[str, str]]:
        if not isinstance(event, dict):
            return [{"field": where.rstrip("."), "message": "must be an object"}]
        out = []

        def bad(field: str, message: str) -> None:
            out.append({"field": where + field, "message": message})

        ref = event.get("customerRef")
        if not isinstance(ref, str) or not ref.strip():
            bad("customerRef", "customerRef should not be empty")
        units = event.get("units", 1)
        if not isinstance(units, int) or isinstance(units, bool) or not 0 <= units <= MAX_UNITS:
            bad("units", f"units must be an integer from 0 to {MAX_UNITS}")
        if event.get("actionType", "api_call") not in ACTION_TYPES:
            bad("actionType", f"actionType must be one of {', '.join(ACTION_TYPES)}")
        if event.get("outcome", "success") not in OUTCOMES:
            bad("outcome", f"outcome must be one of {', '.join(OUTCOMES)}")
        for field in ("productRef", "idempotencyKey", "description"):
            if field in event and not isinstance(event[field], str):
                bad(field, f"{field} must be a string")
        if "metadata" in event and not isinstance(event["metadata"], dict):
            bad("metadata", "metadata must be an object")
        if "timestamp" in event:
            problem = self._timestamp_problem(event["timestamp"])
            if problem:
                bad("timestamp", problem)
        return out

    def _timestamp_problem(self, value: Any) -> Optional[str]:
        try:
            moment = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
        except ValueError:
            return "timestamp must be an ISO 8601 date string"
        if moment.tzinfo is None:
            return "timestamp must carry a time zone"
        now = self.now()
        if moment > now + timedelta(hours=24):
            return "timestamp cannot be more than 24 hours in the future"
        if moment < now - timedelta(days=30):
            return "timestamp cannot be more than 30 days in the past"
        return None

    def totals(self) -> dict[str, dict[str, int]]:
        """Per customer reference: ``units`` summed, and per metadata ``token_type`` when present."""
        out: dict[str, dict[str, int]] = {}
        with self._lock:
            events = list(self.events.values())
        for event in events:
            row = out.setdefault(event["customerRef"], {"units": 0})
            units = event.get("units", 1)
            row["units"] += units
            token_type = (event.get("metadata") or {}).get("token_type")
            if token_type:
                row[token_type] = row.get(token_type, 0) + units
        return out
