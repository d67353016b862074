"""A loopback Open Spanner: usage bulk ingest and meters, checked against its OpenAPI contract."""

from __future__ import annotations

import importlib
import json
import math
import re
import uuid
from collections.abc import Callable, Mapping
from datetime import datetime
from importlib import resources
from typing import Any, Optional

from ._base import Answer, LoopbackBackend, Request

__all__ = ["OpenSpannerBackend", "load_contract"]

MAX_BULK = 1000
_SUBJECT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]*$")
_DIMENSION = re.compile(r"^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$")
_AGGREGATIONS = ("sum", "count", "avg", "min", "max", "first", "last", "rate")
_TYPES = ("string", "number", "boolean")
_PREFIX = "internal_metering_adapters_http_"
ERROR = "github_com_ssubedir_open-spanner_internal_metering_adapters_http_internal_respond.ErrorResponse"


def load_contract() -> dict[str, Any]:
    """Open Spanner's OpenAPI contract for the routes this backend serves (``/v1/usages/bulk``,
    ``/v1/meters``) and the schemas they reference, as shipped in ``usagetap/testing/contracts``."""
    text = (resources.files("usagetap.testing") / "contracts" / "open-spanner.openapi.json").read_text(
        "utf-8"
    )
    contract: dict[str, Any] = json.loads(text)
    return contract


class _Contract:
    """JSON Schema validators for the contract's component schemas (needs ``jsonschema``)."""

    def __init__(self) -> None:
        try:
            self._jsonschema: Any = importlib.import_module("jsonschema")
        except ImportError as exc:  # pragma: no cover - depends on the environment
            raise ImportError(
                "OpenSpannerBackend validates with jsonschema: pip install 'usagetap[testing]'"
            ) from exc
        self.document = load_contract()
        self._cache: dict[str, Any] = {}

    def _validator(self, key: str, schema: dict[str, Any]) -> Any:
        if key not in self._cache:
            self._cache[key] = self._jsonschema.Draft7Validator(
                {"allOf": [schema], "components": self.document["components"]}
            )
        return self._cache[key]

    def _errors(self, validator: Any, instance: Any) -> list[str]:
        found = validator.iter_errors(instance)
        return [f"{'/'.join(str(p) for p in e.absolute_path) or '(root)'}: {e.message}" for e in found]

    def errors(self, name: str, instance: Any) -> list[str]:
        """Where ``instance`` breaks the component schema ``name``."""
        return self._errors(self._validator(name, {"$ref": f"#/components/schemas/{name}"}), instance)

    def request_errors(self, method: str, path: str, instance: Any) -> list[str]:
        """Where ``instance`` breaks the JSON request body schema of ``method path``."""
        content = self.document["paths"][path][method.lower()]["requestBody"]["content"]["application/json"]
        return self._errors(self._validator(f"{method} {path}", content["schema"]), instance)


class OpenSpannerBackend(LoopbackBackend):
    """Keeps Open Spanner's usage-ingest and meter contract.

    - Bearer API key (401 ``ErrorResponse`` otherwise).
    - ``POST /v1/usages/bulk``: the body is validated against the OpenAPI
      schema (an array of ``usage.CreateRequest``), then each item like the
      service does: the meter exists (``not_found``), the subject is valid,
      ``quantity > 0``, the timestamp parses, and the metadata matches the
      meter's typed dimensions (required ones present, types right, unknown
      keys rejected). Duplicate ``idempotency_key`` values come back in
      ``duplicate_items``; failures in ``failed_items[{index, code, message}]``;
      201, or 400 when nothing was accepted.
    - ``POST /v1/meters`` / ``GET /v1/meters?name=``.

    :meth:`reject` makes chosen items fail; every answer this server gives is
    itself checked against the contract and mismatches kept in
    ``contract_violations``.
    """

    name = "open_spanner"

    def __init__(self, *, api_key: str = "osp_test_key", port: int = 0) -> None:
        super().__init__(api_key=api_key, port=port)
        self.contract = _Contract()
        self.meters: dict[str, dict[str, Any]] = {}
        self.events: dict[str, dict[str, Any]] = {}
        self.contract_violations: list[str] = []
        self._rejecters: list[Callable[[Mapping[str, Any]], Optional[str]]] = []

    def error_body(self, status: int) -> Any:
        codes = {429: "rate_limited", 500: "internal_error", 401: "unauthorized", 403: "forbidden"}
        return {"error": {"code": codes.get(status, "error"), "message": f"injected {status}"}}

    def reject(self, rule: Callable[[Mapping[str, Any]], Optional[str]]) -> None:
        """Fail every item for which ``rule(item)`` returns a message (code ``invalid_input``)."""
        with self._lock:
            self._rejecters.append(rule)

    def create_meter(self, definition: Mapping[str, Any]) -> dict[str, Any]:
        """Create a meter directly (as if through the dashboard)."""
        answer = self._create_meter(dict(definition))
        if answer.status != 201:
            raise ValueError(answer.body)
        meter: dict[str, Any] = answer.body
        return meter

    # -- routing ---------------------------------------------------------

    def handle(self, request: Request) -> Answer:
        if not self.authorized(request):
            return self._answer(401, {"error": {"code": "unauthorized", "message": "unauthorized"}}, ERROR)
        route = (request.method, request.path)
        if route == ("POST", "/v1/usages/bulk"):
            return self._bulk(request)
        if route == ("POST", "/v1/meters"):
            try:
                body = request.json()
            except ValueError:
                return self._error(400, "invalid_json", "request body must be valid JSON")
            errors = self.contract.request_errors("POST", "/v1/meters", body)
            if errors:
                return self._error(400, "invalid_input", "; ".join(errors))
            return self._create_meter(body)
        if route == ("GET", "/v1/meters"):
            name = (request.query.get("name") or [""])[0]
            with self._lock:
                items = [m for m in self.meters.values() if not name or m["name"] == name]
            return self._answer(200, {"items": items, "next_cursor": ""}, f"{_PREFIX}meter.ListResponse")
        return self._error(404, "not_found", f"no route {request.method} {request.path}")

    def _answer(self, status: int, body: Any, schema: str) -> Answer:
        for problem in self.contract.errors(schema, body):
            self.contract_violations.append(f"{schema}: {problem}")
        return Answer(status, body)

    def _error(self, status: int, code: str, message: str) -> Answer:
        return self._answer(status, {"error": {"code": code, "message": message}}, ERROR)

    # -- meters ----------------------------------------------------------

    def _create_meter(self, body: dict[str, Any]) -> Answer:
        name = str(body.get("name") or "").strip()
        if not name:
            return self._error(400, "invalid_input", "invalid input: meter name is required")
        if not str(body.get("unit") or "").strip():
            return self._error(400, "invalid_input", "invalid input: meter unit is required")
        aggregation = body.get("aggregation") or "sum"
        if aggregation not in _AGGREGATIONS:
            return self._error(
                400, "invalid_input", f"invalid input: unsupported aggregation {aggregation!r}"
            )
        dimensions = []
        seen: set[str] = set()
        for raw in body.get("dimensions") or []:
            dim_name = str(raw.get("name") or "").strip()
            if not _DIMENSION.match(dim_name) or dim_name == "subject":
                return self._error(
                    400, "invalid_input", f"invalid input: dimension name {dim_name!r} is invalid"
                )
            if raw.get("type") not in _TYPES:
                return self._error(
                    400, "invalid_input", f"invalid input: unsupported dimension type {raw.get('type')!r}"
                )
            if dim_name in seen:
                return self._error(
                    400, "invalid_input", f"invalid input: dimension {dim_name!r} is already defined"
                )
            seen.add(dim_name)
            dimensions.append(
                {
                    "name": dim_name,
                    "display_name": raw.get("display_name") or dim_name,
                    "description": raw.get("description") or "",
                    "type": raw["type"],
                    "required": bool(raw.get("required")),
                    "deprecated": bool(raw.get("deprecated")),
                }
            )
        with self._lock:
            if name in self.meters:
                return self._error(409, "conflict", f"conflict: meter {name!r} already exists")
            meter = {
                "id": str(uuid.uuid4()),
                "name": name,
                "description": str(body.get("description") or ""),
                "unit": str(body["unit"]),
                "aggregation": aggregation,
                "dimensions": dimensions,
                "event_retention_days": int(body.get("event_retention_days") or 90),
                "created_at": self.now().isoformat(),
            }
            self.meters[name] = meter
        return self._answer(201, meter, f"{_PREFIX}meter.Response")

    # -- usage -----------------------------------------------------------

    def _bulk(self, request: Request) -> Answer:
        try:
            items = request.json()
        except ValueError:
            return self._error(400, "invalid_json", "request body must be valid JSON")
        if isinstance(items, list) and len(items) > MAX_BULK:
            return self._error(413, "request_too_large", f"bulk usage event limit is {MAX_BULK}")
        errors = self.contract.request_errors("POST", "/v1/usages/bulk", items)
        if errors:
            return self._error(400, "invalid_input", "; ".join(errors[:5]))
        if not items:
            return self._error(400, "invalid_input", "invalid input: at least one usage event is required")
        accepted: list[dict[str, Any]] = []
        duplicates: list[dict[str, Any]] = []
        failed: list[dict[str, Any]] = []
        with self._lock:
            for index, item in enumerate(items):
                problem = self._problem(item)
                if problem is not None:
                    failed.append({"index": index, "code": problem[0], "message": problem[1]})
                    continue
                key = str(item.get("idempotency_key") or "").strip() or f"_auto_{uuid.uuid4()}"
                if key in self.events:
                    duplicates.append(self.events[key])
                    continue
                event = {
                    "id": str(uuid.uuid4()),
                    "idempotency_key": key,
                    "subject": item["subject"].strip(),
                    "meter": item["meter"].strip(),
                    "quantity": item["quantity"],
                    "timestamp": item.get("timestamp") or self.now().isoformat(),
                    "received_at": self.now().isoformat(),
                    "metadata": item.get("metadata") or {},
                }
                self.events[key] = event
                accepted.append(event)
        body = {
            "accepted": len(accepted),
            "accepted_items": accepted,
            "duplicates": len(duplicates),
            "duplicate_items": duplicates,
            "failed": len(failed),
            "failed_items": failed,
        }
        status = 400 if failed and not accepted and not duplicates else 201
        return self._answer(status, body, f"{_PREFIX}usage.BulkResponse")

    def _problem(self, item: Mapping[str, Any]) -> Optional[tuple[str, str]]:
        timestamp = item.get("timestamp")
        if timestamp:
            try:
                moment = datetime.fromisoformat(str(timestamp).replace("Z", "+00:00"))
            except ValueError:
                return "invalid_input", f"timestamp must be RFC3339, got {timestamp!r}"
            if moment.tzinfo is None:
                return "invalid_input", f"timestamp must be RFC3339, got {timestamp!r}"
        meter = self.meters.get(str(item.get("meter") or "").strip())
        if meter is None:
            return "not_found", "not found"
        subject = str(item.get("subject") or "").strip()
        if not subject:
            return "invalid_input", "invalid input: subject is required"
        if len(subject) > 128:
            return "invalid_input", "invalid input: subject cannot exceed 128 characters"
        if not _SUBJECT.match(subject):
            return (
                "invalid_input",
                f"invalid input: subject {subject!r} must use letters, numbers, underscores, hyphens, "
                "dots, or colons",
            )
        quantity = item.get("quantity")
        if not isinstance(quantity, (int, float)) or isinstance(quantity, bool) or quantity <= 0:
            return "invalid_input", "invalid input: quantity must be greater than zero"
        metadata = item.get("metadata") or {}
        known = {d["name"]: d for d in meter["dimensions"]}
        for key in metadata:
            if key not in known:
                return (
                    "invalid_input",
                    f"invalid input: metadata key {key!r} is not a dimension of meter {meter['name']!r}",
                )
        for dim_name, dimension in known.items():
            if dim_name not in metadata:
                if dimension["required"] and not dimension["deprecated"]:
                    return "invalid_input", f"invalid input: dimension {dim_name!r} is required"
                continue
            if not _matches(metadata[dim_name], dimension["type"]):
                return "invalid_input", f"invalid input: dimension {dim_name!r} must be {dimension['type']}"
        for rule in self._rejecters:
            message = rule(item)
            if message:
                return "invalid_input", message
        return None

    # -- what the backend holds ------------------------------------------

    def totals(self, meter: Optional[str] = None) -> dict[str, dict[str, float]]:
        """Per subject: ``quantity`` summed, and per ``token_type`` when items carry one."""
        out: dict[str, dict[str, float]] = {}
        with self._lock:
            events = list(self.events.values())
        for event in events:
            if meter is not None and event["meter"] != meter:
                continue
            row = out.setdefault(event["subject"], {"quantity": 0})
            row["quantity"] += event["quantity"]
            token_type = event["metadata"].get("token_type")
            if token_type:
                row[token_type] = row.get(token_type, 0) + event["quantity"]
        return out


def _matches(value: Any, kind: str) -> bool:
    if kind == "string":
        return isinstance(value, str)
    if kind == "boolean":
        return isinstance(value, bool)
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
