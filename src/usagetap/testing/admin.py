"""Loopback fakes of the providers' organization usage and cost APIs, for ``usagetap reconcile``.

An :class:`AdminServer` is fed by a :class:`~usagetap.testing.ProviderServer`: every response the
provider server issues is counted, with its day, model, project (OpenAI's ``OpenAI-Project``
header), API key, workspace (Anthropic, from ``workspaces``), tier and batch, and priced with the
same table usagetap prices records with. So a test can make a call with an unwrapped client and see
``reconcile`` find exactly that call::

    with ProviderServer() as provider, AdminServer(provider, "openai") as admin:
        OpenAI(base_url=provider.openai_url, api_key="k").chat.completions.create(...)  # unmetered
        result = reconcile("openai", day, day, ledger_rows, admin_key=admin.admin_key, base_url=admin.url)

Request and response shapes follow the documented APIs (daily buckets, ``group_by``, ``limit``,
``page``/``next_page``/``has_more``):

- OpenAI ``GET /v1/organization/usage/completions``, ``/usage/embeddings`` and
  ``/v1/organization/costs``: https://platform.openai.com/docs/api-reference/usage
- Anthropic ``GET /v1/organizations/usage_report/messages`` and ``/v1/organizations/cost_report``
  (amounts in cents, as decimal strings):
  https://platform.claude.com/docs/en/api/admin/usage_report/retrieve_messages,
  https://platform.claude.com/docs/en/api/admin/cost_report/retrieve

- Anthropic's Usage and Cost Analytics API, with ``analytics=True`` (else 404, as for an
  organization without it): ``GET /v1/organizations/analytics/usage`` and ``/analytics/cost``, one
  row per day and group: https://platform.claude.com/docs/en/api/beta/organization/analytics/usage/list

- The key listings, each key with its redacted hint: OpenAI
  ``GET /v1/organization/projects/{project_id}/api_keys`` (``redacted_value`` like ``sk-abc...def``,
  ``after``/``last_id`` paging): https://platform.openai.com/docs/api-reference/project-api-keys/list;
  Anthropic ``GET /v1/organizations/api_keys`` (``partial_key_hint`` like ``sk-ant-api03-R2D...igAA``,
  ``after_id``/``last_id`` paging): https://platform.claude.com/docs/en/api/admin/api_keys/list.
  A key is listed once the provider server has answered a call made with it; its id is derived from
  the key, so usage grouped by ``api_key_id`` names the same ids.

Simplifications: buckets are daily only (``bucket_width=1d``); Anthropic's cost reports give one token
cost per model and tier (``token_type`` null) rather than one per token type.
"""

from __future__ import annotations

import base64
import hashlib
import json
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Optional
from urllib.parse import parse_qs, urlsplit

from ._server import Issued, ProviderServer

__all__ = ["AdminServer", "ListedKey", "Usage"]

_ANTHROPIC_PATHS = ("/v1/messages",)
_OPENAI_COMPLETIONS = ("/v1/chat/completions", "/v1/responses", "/v1/completions")
_OPENAI_EMBEDDINGS = ("/v1/embeddings",)
_MAX_LIMIT = 31
_KEY_LIMITS = {"openai": 100, "anthropic": 1000}
_HINTED_LENGTH = 20  # shorter (test) keys are listed with an empty hint, never most of the key


@dataclass(frozen=True)
class Usage:
    """One issued response as the provider bills it."""

    response_id: str
    day: date
    kind: str  # completions | embeddings | messages
    model: str
    project_id: Optional[str]
    workspace_id: Optional[str]
    api_key_id: str
    service_tier: str
    batch: bool
    input_tokens: int  # all input, cache included
    output_tokens: int
    cache_read_tokens: int
    cache_write_5m_tokens: int
    cache_write_1h_tokens: int
    cost: Decimal


@dataclass(frozen=True)
class ListedKey:
    """An API key as the key listing shows it: id, redacted hint, project (OpenAI) or workspace."""

    id: str
    hint: str
    project_id: Optional[str]
    workspace_id: Optional[str]


def _key_hint(provider: str, key: str) -> str:
    """``key`` redacted as the provider's listing shows it (the documented examples' shapes)."""
    if len(key) < _HINTED_LENGTH:
        return "..."
    return f"{key[:16]}...{key[-4:]}" if provider == "anthropic" else f"{key[:6]}...{key[-3:]}"


class AdminServer:
    """A loopback admin API (``provider`` ``"openai"`` or ``"anthropic"``) fed by ``source``'s issued usage.

    ``page_size`` caps the buckets per page (small values make every range paginate);
    ``workspaces`` maps an Anthropic API key to its workspace id (else the default workspace: null).
    """

    def __init__(
        self,
        source: ProviderServer,
        provider: str,
        *,
        admin_key: str = "admin-key-for-tests",
        page_size: int = _MAX_LIMIT,
        workspaces: Optional[Mapping[str, str]] = None,
        analytics: bool = False,
    ) -> None:
        if provider not in ("openai", "anthropic"):
            raise ValueError(f"AdminServer fakes openai or anthropic, not {provider!r}")
        self.provider = provider
        self.admin_key = admin_key
        self.page_size = page_size
        self.workspaces = dict(workspaces or {})
        self.analytics = analytics
        self.usage: list[Usage] = []
        self.keys: dict[str, ListedKey] = {}
        """The listed API keys by id, in the order they were first used."""
        self.requests: list[tuple[str, dict[str, list[str]]]] = []
        """Each request's path and query parameters."""
        self._faults: list[tuple[int, dict[str, str]]] = []
        self._lock = threading.Lock()
        self._httpd: Optional[ThreadingHTTPServer] = None
        self.port = 0
        self._source = source
        source.on_issue.append(self._on_issue)

    # -- lifecycle -------------------------------------------------------

    def start(self) -> AdminServer:
        """Serve on a free port of 127.0.0.1 in a thread."""
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._httpd.daemon_threads = True
        self.port = self._httpd.server_address[1]
        threading.Thread(
            target=self._httpd.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="usagetap-admin",
            daemon=True,
        ).start()
        return self

    def stop(self) -> None:
        """Stop listening and counting what the provider server issues (idempotent)."""
        if self._on_issue in self._source.on_issue:
            self._source.on_issue.remove(self._on_issue)
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None

    def __enter__(self) -> AdminServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        """The base URL ``reconcile --base-url`` takes (``.../v1`` for OpenAI, like ``OPENAI_BASE_URL``)."""
        root = f"http://127.0.0.1:{self.port}"
        return f"{root}/v1" if self.provider == "openai" else root

    # -- behaviour -------------------------------------------------------

    def rate_limit_next(self, count: int = 1, *, retry_after: str = "0") -> None:
        """Answer the next ``count`` requests 429 with ``Retry-After: retry_after``."""
        with self._lock:
            self._faults.extend([(429, {"Retry-After": retry_after})] * count)

    def fail_next(self, status: int = 500, *, count: int = 1) -> None:
        """Answer the next ``count`` requests with ``status``."""
        with self._lock:
            self._faults.extend([(status, {})] * count)

    # -- what was issued -------------------------------------------------

    def _on_issue(self, issued: Issued, headers: Mapping[str, str]) -> None:
        kind = _kind(issued.path)
        if kind is None or (kind == "messages") != (self.provider == "anthropic"):
            return
        key = _api_key(headers)
        dims = dict(issued.dimensions)
        batch = dims.get("batch") is True
        if self.provider == "openai":
            tier = str(dims.setdefault("service_tier", "default"))
        else:
            tier = "batch" if batch else str(dims.get("service_tier") or "standard")
        usage = Usage(
            response_id=issued.response_id,
            day=datetime.now(timezone.utc).date(),
            kind=kind,
            model=issued.model,
            project_id=headers.get("openai-project")
            or ("proj_default" if self.provider == "openai" else None),
            workspace_id=self.workspaces.get(key) if self.provider == "anthropic" else None,
            api_key_id=self.key_id(key),
            service_tier=tier,
            batch=batch,
            input_tokens=issued.input_tokens,
            output_tokens=issued.output_tokens,
            cache_read_tokens=issued.cache_read_tokens,
            cache_write_5m_tokens=int(dims.get("cache_write_5m_tokens", issued.cache_write_tokens) or 0),
            cache_write_1h_tokens=int(dims.get("cache_write_1h_tokens", 0) or 0),
            cost=_price(self.provider, issued, dims),
        )
        listed = ListedKey(
            usage.api_key_id, _key_hint(self.provider, key), usage.project_id, usage.workspace_id
        )
        with self._lock:
            self.usage.append(usage)
            self.keys.setdefault(listed.id, listed)

    def key_id(self, key: str) -> str:
        """The id the provider gives ``key`` (in usage grouped by ``api_key_id`` and in the key listing)."""
        return ("key_" if self.provider == "openai" else "apikey_") + hashlib.sha256(
            key.encode()
        ).hexdigest()[:16]

    def cost_of(self, response_ids: Iterable[str]) -> Decimal:
        """What the provider charged for these responses."""
        wanted = set(response_ids)
        with self._lock:
            return sum((u.cost for u in self.usage if u.response_id in wanted), Decimal(0))

    # -- answering -------------------------------------------------------

    def answer(
        self, path: str, query: dict[str, list[str]], headers: Mapping[str, str]
    ) -> tuple[int, Any, dict[str, str]]:
        """Status, JSON body and headers for ``GET path?query``."""
        with self._lock:
            self.requests.append((path, query))
            fault = self._faults.pop(0) if self._faults else None
        if _api_key(headers) != self.admin_key:
            return 401, _error("invalid admin key", "authentication_error"), {}
        if fault is not None:
            return (
                fault[0],
                _error(f"injected {fault[0]}", "rate_limit_error" if fault[0] == 429 else "api_error"),
                fault[1],
            )
        routes = (
            {
                "/v1/organization/usage/completions": lambda q: self._openai_usage(q, "completions"),
                "/v1/organization/usage/embeddings": lambda q: self._openai_usage(q, "embeddings"),
                "/v1/organization/costs": self._openai_costs,
            }
            if self.provider == "openai"
            else {
                "/v1/organizations/usage_report/messages": self._anthropic_usage,
                "/v1/organizations/cost_report": self._anthropic_costs,
                **(
                    {
                        "/v1/organizations/analytics/usage": lambda q: self._analytics(q, "usage"),
                        "/v1/organizations/analytics/cost": lambda q: self._analytics(q, "cost"),
                    }
                    if self.analytics
                    else {}
                ),
            }
        )
        route = routes.get(path) or self._key_route(path)
        if route is None:
            return 404, _error(f"no route GET {path}", "not_found_error"), {}
        try:
            return 200, route(query), {}
        except ValueError as exc:
            return 400, _error(str(exc), "invalid_request_error"), {}

    def _key_route(self, path: str) -> Optional[Callable[[dict[str, list[str]]], dict[str, Any]]]:
        if self.provider == "anthropic":
            return self._anthropic_keys if path == "/v1/organizations/api_keys" else None
        prefix, suffix = "/v1/organization/projects/", "/api_keys"
        project = path.removeprefix(prefix).removesuffix(suffix)
        if not path.startswith(prefix) or not path.endswith(suffix) or not project or "/" in project:
            return None
        return lambda query: self._openai_keys(query, project)

    def _listed(
        self, query: dict[str, list[str]], cursor: str, keep: Callable[[ListedKey], bool]
    ) -> tuple[list[ListedKey], bool]:
        """A page of the listed keys ``keep`` selects, after the id ``cursor`` names; whether more follow."""
        limit = min(int((query.get("limit") or ["20"])[0]), _KEY_LIMITS[self.provider], self.page_size)
        with self._lock:
            keys = [k for k in self.keys.values() if keep(k)]
        after = query[cursor][0] if query.get(cursor) else None
        ids = [k.id for k in keys]
        if after is not None and after not in ids:
            raise ValueError(f"unknown {cursor}")
        start = ids.index(after) + 1 if after is not None else 0
        return keys[start : start + limit], start + limit < len(keys)

    def _openai_keys(self, query: dict[str, list[str]], project: str) -> dict[str, Any]:
        page, more = self._listed(query, "after", lambda k: k.project_id == project)
        data = [
            {
                "object": "organization.project.api_key",
                "redacted_value": k.hint,
                "name": f"key {n}",
                "created_at": 1764547200,
                "last_used_at": 1764547200,
                "id": k.id,
                "owner": {
                    "type": "service_account",
                    "service_account": {"id": f"svc_{n}", "name": f"svc {n}"},
                },
            }
            for n, k in enumerate(page)
        ]
        return {
            "object": "list",
            "data": data,
            "first_id": data[0]["id"] if data else None,
            "last_id": data[-1]["id"] if data else None,
            "has_more": more,
        }

    def _anthropic_keys(self, query: dict[str, list[str]]) -> dict[str, Any]:
        workspace = query["workspace_id"][0] if query.get("workspace_id") else None
        page, more = self._listed(
            query, "after_id", lambda k: workspace is None or k.workspace_id == workspace
        )
        data = [
            {
                "id": k.id,
                "type": "api_key",
                "name": f"key {n}",
                "workspace_id": k.workspace_id,
                "created_at": "2026-12-01T00:00:00Z",
                "created_by": {"id": f"user_{n}", "type": "user"},
                "partial_key_hint": k.hint,
                "status": "active",
            }
            for n, k in enumerate(page)
        ]
        return {
            "data": data,
            "has_more": more,
            "first_id": data[0]["id"] if data else None,
            "last_id": data[-1]["id"] if data else None,
        }

    def _days(self, query: dict[str, list[str]]) -> tuple[list[date], int]:
        """The days of the requested window on this page, and the index of the next page (0: none)."""
        if self.provider == "openai":
            start = _utc_day(int(_one(query, "start_time")))
            end_at = query.get("end_time")
            end = _utc_day(int(end_at[0])) if end_at else start + timedelta(days=7)
        else:
            start = _iso_day(_one(query, "starting_at"))
            end_at = query.get("ending_at")
            end = _iso_day(end_at[0]) if end_at else start + timedelta(days=7)
        width = (query.get("bucket_width") or ["1d"])[0]
        if width != "1d":
            raise ValueError(f"this fake serves bucket_width=1d only, not {width!r}")
        limit = min(int((query.get("limit") or ["7"])[0]), _MAX_LIMIT, self.page_size)
        offset = _cursor(query.get("page", [None])[0])
        days = [start + timedelta(days=i) for i in range((end - start).days)]
        page = days[offset : offset + limit]
        more = offset + limit if offset + limit < len(days) else 0
        return page, more

    def _page(self, buckets: list[dict[str, Any]], more: int) -> dict[str, Any]:
        token = "page_" + base64.urlsafe_b64encode(str(more).encode()).decode() if more else None
        if self.provider == "openai":
            return {"object": "page", "data": buckets, "has_more": bool(more), "next_page": token}
        return {"data": buckets, "has_more": bool(more), "next_page": token}

    def _grouped(
        self, day: date, kinds: Iterable[str], fields: Iterable[str]
    ) -> dict[tuple[Any, ...], list[Usage]]:
        groups: dict[tuple[Any, ...], list[Usage]] = {}
        with self._lock:
            items = [u for u in self.usage if u.day == day and u.kind in kinds]
        for item in items:
            groups.setdefault(tuple(getattr(item, f) for f in fields), []).append(item)
        return groups

    def _openai_usage(self, query: dict[str, list[str]], kind: str) -> dict[str, Any]:
        fields = [
            f
            for f in query.get("group_by", [])
            if f in ("model", "project_id", "api_key_id", "batch", "service_tier")
        ]
        page, more = self._days(query)
        buckets = []
        for day in page:
            results = []
            for values, items in self._grouped(day, (kind,), fields).items():
                result: dict[str, Any] = {
                    "object": f"organization.usage.{kind}.result",
                    "input_tokens": sum(u.input_tokens for u in items),
                    "num_model_requests": len(items),
                    "project_id": None,
                    "user_id": None,
                    "api_key_id": None,
                    "model": None,
                    **({"batch": None, "service_tier": None} if kind == "completions" else {}),
                }
                if kind == "completions":
                    result["output_tokens"] = sum(u.output_tokens for u in items)
                    result["input_cached_tokens"] = sum(u.cache_read_tokens for u in items)
                    result["input_audio_tokens"] = result["output_audio_tokens"] = 0
                result.update(zip(fields, values, strict=True))
                results.append(result)
            buckets.append({"object": "bucket", **_unix_span(day), "results": results})
        return self._page(buckets, more)

    def _openai_costs(self, query: dict[str, list[str]]) -> dict[str, Any]:
        fields = [f for f in query.get("group_by", []) if f == "project_id"]
        page, more = self._days(query)
        buckets = []
        for day in page:
            results = []
            for values, items in self._grouped(day, ("completions", "embeddings"), fields).items():
                result = {
                    "object": "organization.costs.result",
                    "amount": {"value": float(sum((u.cost for u in items), Decimal(0))), "currency": "usd"},
                    "line_item": None,
                    "project_id": None,
                }
                result.update(zip(fields, values, strict=True))
                results.append(result)
            buckets.append({"object": "bucket", **_unix_span(day), "results": results})
        return self._page(buckets, more)

    def _anthropic_usage(self, query: dict[str, list[str]]) -> dict[str, Any]:
        allowed = ("model", "workspace_id", "api_key_id", "service_tier")
        fields = [f for f in query.get("group_by[]", []) if f in allowed]
        page, more = self._days(query)
        buckets = []
        for day in page:
            results = []
            for values, items in self._grouped(day, ("messages",), fields).items():
                read = sum(u.cache_read_tokens for u in items)
                w5 = sum(u.cache_write_5m_tokens for u in items)
                w1 = sum(u.cache_write_1h_tokens for u in items)
                result: dict[str, Any] = {
                    "uncached_input_tokens": sum(u.input_tokens for u in items) - read - w5 - w1,
                    "cache_creation": {"ephemeral_1h_input_tokens": w1, "ephemeral_5m_input_tokens": w5},
                    "cache_read_input_tokens": read,
                    "output_tokens": sum(u.output_tokens for u in items),
                    "server_tool_use": {"web_search_requests": 0},
                    "api_key_id": None,
                    "workspace_id": None,
                    "model": None,
                    "service_tier": None,
                    "context_window": None,
                }
                result.update(zip(fields, values, strict=True))
                results.append(result)
            buckets.append({**_iso_span(day), "results": results})
        return self._page(buckets, more)

    def _anthropic_costs(self, query: dict[str, list[str]]) -> dict[str, Any]:
        grouped = query.get("group_by[]", [])
        described = "description" in grouped
        fields = (["workspace_id"] if "workspace_id" in grouped else []) + (
            ["model", "service_tier"] if described else []
        )
        page, more = self._days(query)
        buckets = []
        for day in page:
            results = []
            for values, items in self._grouped(day, ("messages",), fields).items():
                named = dict(zip(fields, values, strict=True))
                cents = sum((u.cost for u in items), Decimal(0)) * 100
                results.append(
                    {
                        "currency": "USD",
                        "amount": str(cents),
                        "workspace_id": named.get("workspace_id"),
                        "description": f"{named['model']} usage" if described else None,
                        "cost_type": "tokens" if described else None,
                        "context_window": None,
                        "model": named.get("model"),
                        "service_tier": named.get("service_tier"),
                        "token_type": None,
                    }
                )
            buckets.append({**_iso_span(day), "results": results})
        return self._page(buckets, more)

    def _analytics(self, query: dict[str, list[str]], report: str) -> dict[str, Any]:
        """Rows of the analytics API: one per day and group, ``limit`` rows a page."""
        start, end = _iso_day(_one(query, "starting_at")), _iso_day(_one(query, "ending_at"))
        width = (query.get("time_bucket_width") or ["1d"])[0]
        if width != "1d":
            raise ValueError(f"this fake serves time_bucket_width=1d only, not {width!r}")
        allowed = ("model", "workspace_id", "api_key_id", "service_tier")
        fields = [f for f in query.get("group_by[]", []) if f in allowed]
        rows: list[dict[str, Any]] = []
        for offset in range((end - start).days):
            day = start + timedelta(days=offset)
            for values, items in self._grouped(day, ("messages",), fields).items():
                group: dict[str, Any] = dict.fromkeys((*allowed, "cost_type", "token_type"))
                group.update(zip(fields, values, strict=True))
                row: dict[str, Any] = {**_iso_span(day), "group": group}
                if report == "usage":
                    read = sum(u.cache_read_tokens for u in items)
                    w5 = sum(u.cache_write_5m_tokens for u in items)
                    w1 = sum(u.cache_write_1h_tokens for u in items)
                    row["usage"] = {
                        "uncached_input_tokens": sum(u.input_tokens for u in items) - read - w5 - w1,
                        "cache_creation": {"ephemeral_1h_input_tokens": w1, "ephemeral_5m_input_tokens": w5},
                        "cache_read_input_tokens": read,
                        "output_tokens": sum(u.output_tokens for u in items),
                        "requests": len(items),
                        "server_tool_use": {"web_search_requests": 0},
                    }
                else:
                    group["cost_type"] = "tokens" if "cost_type" in query.get("group_by[]", []) else None
                    cents = str(sum((u.cost for u in items), Decimal(0)) * 100)
                    row["cost"] = {
                        "amount": cents,
                        "currency": "USD",
                        "list_amount": cents,
                        "requests": len(items),
                    }
                rows.append(row)
        limit = min(int((query.get("limit") or ["20"])[0]), self.page_size)
        offset = _cursor(query.get("page", [None])[0])
        more = offset + limit if offset + limit < len(rows) else 0
        page = self._page(rows[offset : offset + limit], more)
        page["data_refreshed_at"] = datetime.now(timezone.utc).isoformat().replace("+00:00", "Z")
        return page


def _kind(path: str) -> Optional[str]:
    if path.startswith(_ANTHROPIC_PATHS):
        return "messages"
    if path in _OPENAI_COMPLETIONS:
        return "completions"
    if path in _OPENAI_EMBEDDINGS:
        return "embeddings"
    return None


def _api_key(headers: Mapping[str, str]) -> str:
    auth = headers.get("authorization", "")
    return auth[7:] if auth.lower().startswith("bearer ") else headers.get("x-api-key", "")


def _price(provider: str, issued: Issued, dims: dict[str, Any]) -> Decimal:
    """What the provider charges for ``issued``: the price usagetap's table gives it (0 when it has none)."""
    from .._cost import price_record
    from .._record import UsageRecord, new_event_id

    record = UsageRecord(
        event_id=new_event_id(),
        timestamp=datetime.now(timezone.utc),
        customer=None,
        provider=provider,
        model=issued.model,
        request_model=issued.model,
        operation="fake",
        input_tokens=issued.input_tokens,
        output_tokens=issued.output_tokens,
        cache_read_tokens=issued.cache_read_tokens,
        cache_write_tokens=issued.cache_write_tokens,
        reasoning_tokens=issued.reasoning_tokens,
        dimensions=dims,
    )
    return price_record(record).cost or Decimal(0)


def _one(query: dict[str, list[str]], name: str) -> str:
    values = query.get(name)
    if not values:
        raise ValueError(f"{name} is required")
    return values[0]


def _cursor(token: Optional[str]) -> int:
    if not token:
        return 0
    try:
        return int(base64.urlsafe_b64decode(token.removeprefix("page_")).decode())
    except ValueError:
        raise ValueError("invalid page token") from None


def _utc_day(seconds: int) -> date:
    return datetime.fromtimestamp(seconds, timezone.utc).date()


def _iso_day(text: str) -> date:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(timezone.utc).date()


def _unix_span(day: date) -> dict[str, int]:
    start = int(datetime(day.year, day.month, day.day, tzinfo=timezone.utc).timestamp())
    return {"start_time": start, "end_time": start + 86400}


def _iso_span(day: date) -> dict[str, str]:
    end = day + timedelta(days=1)
    return {"starting_at": f"{day.isoformat()}T00:00:00Z", "ending_at": f"{end.isoformat()}T00:00:00Z"}


def _error(message: str, kind: str) -> dict[str, Any]:
    return {"type": "error", "error": {"type": kind, "message": message}}


def _handler(server: AdminServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def do_GET(self) -> None:
            url = urlsplit(self.path)
            headers = {k.lower(): v for k, v in self.headers.items()}
            status, body, extra = server.answer(url.path, parse_qs(url.query), headers)
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for key, value in extra.items():
                self.send_header(key, value)
            self.end_headers()
            self.wfile.write(data)

    return Handler
