"""A loopback OpenMeter: CloudEvents ingest at ``POST /api/v1/events``."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Optional

from ._base import Answer, LoopbackBackend, Request

__all__ = ["OpenMeterBackend"]

_PROBLEM = "application/problem+json"
_SINGLE = ("application/cloudevents+json", "application/json")
_BATCH = ("application/cloudevents-batch+json", "application/json")
_TOKEN_KEYS = (
    "tokens",
    "input_tokens",
    "output_tokens",
    "cache_read_tokens",
    "cache_write_tokens",
    "reasoning_tokens",
)


class OpenMeterBackend(LoopbackBackend):
    """Keeps OpenMeter's event-ingest contract.

    - Bearer token (401 problem+json otherwise).
    - ``Content-Type``: ``application/cloudevents+json`` (one event),
      ``application/cloudevents-batch+json`` (an array) or ``application/json``;
      anything else is 415.
    - Every CloudEvent needs ``specversion`` 1.0 and non-empty ``id``,
      ``source``, ``type`` and ``subject``; ``time`` is RFC 3339; ``data`` an
      object. One invalid event refuses the batch (400 problem+json).
    - Duplicates (same ``source`` and ``id``) are dropped silently; 204.
    """

    name = "openmeter"

    def __init__(self, *, api_key: str = "om_test_key", port: int = 0) -> None:
        super().__init__(api_key=api_key, port=port)
        self.events: dict[tuple[str, str], dict[str, Any]] = {}
        self.duplicates = 0

    def error_body(self, status: int) -> Any:
        return {"type": "about:blank", "title": "Injected", "status": status, "detail": f"injected {status}"}

    def _problem(self, status: int, title: str, detail: str) -> Answer:
        body = {"type": "about:blank", "title": title, "status": status, "detail": detail}
        return Answer(status, body, content_type=_PROBLEM)

    def handle(self, request: Request) -> Answer:
        if request.method != "POST" or request.path != "/api/v1/events":
            return self._problem(404, "Not Found", f"no route {request.method} {request.path}")
        if not self.authorized(request):
            return self._problem(401, "Unauthorized", "invalid or missing API token")
        content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if content_type not in _SINGLE + _BATCH:
            return self._problem(415, "Unsupported Media Type", f"unsupported content type {content_type!r}")
        try:
            body = request.json()
        except ValueError:
            return self._problem(400, "Bad Request", "invalid JSON")
        if isinstance(body, list) and content_type in _BATCH:
            events = body
        elif isinstance(body, dict) and content_type in _SINGLE:
            events = [body]
        else:
            return self._problem(400, "Bad Request", f"body does not match content type {content_type}")
        for index, event in enumerate(events):
            problem = _problem_of(event)
            if problem:
                return self._problem(400, "Bad Request", f"event {index}: {problem}")
        with self._lock:
            for event in events:
                key = (event["source"], event["id"])
                if key in self.events:
                    self.duplicates += 1
                else:
                    self.events[key] = event
        return Answer(204)

    def totals(self, event_type: Optional[str] = None) -> dict[str, dict[str, int]]:
        """Per subject: ``events`` and the token fields of ``data`` summed."""
        out: dict[str, dict[str, int]] = {}
        with self._lock:
            events = list(self.events.values())
        for event in events:
            if event_type is not None and event["type"] != event_type:
                continue
            row = out.setdefault(event["subject"], {"events": 0, **dict.fromkeys(_TOKEN_KEYS, 0)})
            row["events"] += 1
            for key in _TOKEN_KEYS:
                row[key] += (event.get("data") or {}).get(key, 0)
        return out


def _problem_of(event: Any) -> Optional[str]:
    if not isinstance(event, dict):
        return "an event must be an object"
    if event.get("specversion") != "1.0":
        return "specversion must be 1.0"
    for key in ("id", "source", "type", "subject"):
        if not isinstance(event.get(key), str) or not event[key]:
            return f"{key} is required"
    if "time" in event:
        try:
            moment = datetime.fromisoformat(str(event["time"]).replace("Z", "+00:00"))
        except ValueError:
            return "time must be RFC 3339"
        if moment.tzinfo is None:
            return "time must be RFC 3339"
    if event.get("data") is not None and not isinstance(event["data"], dict):
        return "data must be a JSON object"
    return None
