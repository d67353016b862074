"""OpenAI's organization usage and costs APIs (admin key), as usage and cost rows.

Usage: ``GET /v1/organization/usage/completions`` and ``/usage/embeddings``, daily buckets
(``bucket_width=1d``) grouped by model, project, batch and service tier. Costs:
``GET /v1/organization/costs``, daily, which OpenAI does not split by model: they are compared per day.
Keys: ``GET /v1/organization/projects/{project_id}/api_keys`` (``redacted_value`` per key id), for
the projects the usage names. Admin keys (``/v1/organization/admin_api_keys``) are not read: they
cannot call models, so no usage is ever theirs.
https://platform.openai.com/docs/api-reference/usage,
https://platform.openai.com/docs/api-reference/project-api-keys/list
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import date, datetime, time, timedelta, timezone
from decimal import Decimal
from typing import Any

from ._http import AdminAPI
from ._model import CostRow, Key, UsageRow

__all__ = ["BUCKETS_PER_PAGE", "DEFAULT_URL", "api_keys", "costs", "headers", "usage"]

DEFAULT_URL = "https://api.openai.com/v1"
BUCKETS_PER_PAGE = 31  # the most daily buckets a page holds
KEYS_PER_PAGE = 100  # the most keys a listing page holds
# each usage endpoint with what it can group by (embeddings have no batch or service tier)
_USAGE = {
    "completions": ("model", "project_id", "batch", "service_tier"),
    "embeddings": ("model", "project_id"),
}


def headers(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def _window(since: date, until: date) -> list[tuple[str, str]]:
    start = datetime.combine(since, time(0), timezone.utc)
    end = datetime.combine(until + timedelta(days=1), time(0), timezone.utc)
    return [
        ("start_time", str(int(start.timestamp()))),
        ("end_time", str(int(end.timestamp()))),
        ("bucket_width", "1d"),
        ("limit", str(BUCKETS_PER_PAGE)),
    ]


def _day(seconds: Any) -> str:
    return datetime.fromtimestamp(int(seconds), timezone.utc).date().isoformat()


def usage(api: AdminAPI, since: date, until: date, *, by_key: bool = False) -> Iterator[UsageRow]:
    """Tokens per day x model x project x tier x batch (x API key id), completions and embeddings."""
    for kind, groups in _USAGE.items():
        params = [
            *_window(since, until),
            *(("group_by", g) for g in (*groups, *(("api_key_id",) if by_key else ()))),
        ]
        for page in api.pages(f"/organization/usage/{kind}", params):
            for bucket in page.get("data") or ():
                day = _day(bucket["start_time"])
                for result in bucket.get("results") or ():
                    batch = result.get("batch") is True
                    key = Key(
                        day=day,
                        model=str(result.get("model") or "unknown"),
                        scope=str(result.get("project_id") or ""),
                        tier=str(result.get("service_tier") or "default"),
                        batch=batch,
                        api_key=str(result.get("api_key_id") or "") if by_key else "",
                    )
                    yield UsageRow(
                        key,
                        input_tokens=int(result.get("input_tokens") or 0),
                        output_tokens=int(result.get("output_tokens") or 0),
                        cache_read_tokens=int(result.get("input_cached_tokens") or 0),
                        requests=int(result.get("num_model_requests") or 0),
                    )


def costs(api: AdminAPI, since: date, until: date) -> Iterator[CostRow]:
    """Cost in USD per day (OpenAI's costs have no model)."""
    for page in api.pages("/organization/costs", _window(since, until)):
        for bucket in page.get("data") or ():
            day = _day(bucket["start_time"])
            for result in bucket.get("results") or ():
                amount = result.get("amount") or {}
                currency = str(amount.get("currency") or "usd").lower()
                if currency != "usd":
                    raise ValueError(f"OpenAI reported a cost in {currency!r}; usagetap compares USD only")
                yield CostRow(day, Decimal(str(amount.get("value") or 0)))


def api_keys(api: AdminAPI, projects: Iterable[str]) -> dict[str, str]:
    """Each key id of ``projects`` with its ``redacted_value``."""
    out: dict[str, str] = {}
    for project in sorted(set(projects)):
        path = f"/organization/projects/{project}/api_keys"
        for item in api.listing(path, [("limit", str(KEYS_PER_PAGE))], "after"):
            if item.get("id") and item.get("redacted_value"):
                out[str(item["id"])] = str(item["redacted_value"])
    return out
