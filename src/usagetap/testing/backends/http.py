"""A loopback receiver for the HTTP sink: checks the signature, dedupes on ``event_id``."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any, Optional

from ...sinks.http import SIGNATURE_HEADER, TIMESTAMP_HEADER, verify
from ._base import Answer, LoopbackBackend, Request

__all__ = ["HTTPReceiver"]

_REQUIRED = ("event_id", "timestamp", "provider", "model", "operation", "input_tokens", "output_tokens")
_TOKEN_KEYS = ("input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens", "reasoning_tokens")


class HTTPReceiver(LoopbackBackend):
    """A home-grown backend as the HTTP sink documents it.

    ``POST /usage`` with a valid ``X-Usagetap-Signature`` of a recent
    ``X-Usagetap-Timestamp`` (401 otherwise) and
    a body ``{"events": [...]}`` of records (400 otherwise). Records are kept
    by ``event_id``; the answer lists ``duplicates`` and, for events a
    :meth:`reject` rule refuses, ``rejected``.
    """

    name = "http"

    def __init__(self, *, secret: str = "shared-secret", path: str = "/usage", port: int = 0) -> None:
        super().__init__(api_key=secret, port=port)
        self.secret = secret
        self.path = path
        self.events: dict[str, dict[str, Any]] = {}
        self._rules: list[Callable[[Mapping[str, Any]], Optional[str]]] = []

    @property
    def endpoint(self) -> str:
        """The full URL to give ``usagetap.sinks.HTTP``."""
        return f"{self.url}{self.path}"

    def reject(self, rule: Callable[[Mapping[str, Any]], Optional[str]]) -> None:
        """Refuse every event for which ``rule(event)`` returns a reason."""
        self._rules.append(rule)

    def handle(self, request: Request) -> Answer:
        if request.method != "POST" or request.path != self.path:
            return Answer(404, {"error": "not found"})
        signature = request.headers.get(SIGNATURE_HEADER.lower())
        timestamp = request.headers.get(TIMESTAMP_HEADER.lower())
        if not verify(request.body, signature, self.secret, timestamp):
            return Answer(401, {"error": "bad signature"})
        try:
            body = request.json()
        except ValueError:
            return Answer(400, {"error": "invalid JSON"})
        events = body.get("events") if isinstance(body, dict) else None
        if not isinstance(events, list) or not all(isinstance(e, dict) for e in events):
            return Answer(400, {"error": "events must be a list of objects"})
        for event in events:
            missing = [k for k in _REQUIRED if k not in event]
            if missing:
                return Answer(400, {"error": f"event missing {', '.join(missing)}"})
        duplicates: list[str] = []
        rejected: dict[str, str] = {}
        with self._lock:
            for event in events:
                reason = next((r for r in (rule(event) for rule in self._rules) if r), None)
                if reason:
                    rejected[event["event_id"]] = reason
                elif event["event_id"] in self.events:
                    duplicates.append(event["event_id"])
                else:
                    self.events[event["event_id"]] = event
        return Answer(
            200,
            {
                "accepted": len(events) - len(duplicates) - len(rejected),
                "duplicates": duplicates,
                "rejected": rejected,
            },
        )

    def totals(self) -> dict[Optional[str], dict[str, Any]]:
        """Per customer: ``events``, token fields summed and ``cost`` (a Decimal, priced events only)."""
        out: dict[Optional[str], dict[str, Any]] = {}
        with self._lock:
            events = list(self.events.values())
        for event in events:
            row = out.setdefault(
                event.get("customer"), {"events": 0, **dict.fromkeys(_TOKEN_KEYS, 0), "cost": Decimal(0)}
            )
            row["events"] += 1
            for key in _TOKEN_KEYS:
                row[key] += event.get(key, 0)
            if event.get("cost") is not None:
                row["cost"] += Decimal(event["cost"])
        return out
