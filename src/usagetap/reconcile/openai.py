"""OpenAI's organization usage and costs APIs (admin key), as usage and cost rows.

Usage: ``GET /v1/organization/usage/completions`` and ``/usage/embeddings``, daily buckets
(``bucket_width=1d``) grouped by model, project, batch and service tier. Costs:
``GET /v1/organization/costs``, daily, which OpenAI does not split by model: they are compared per day.
https://platform.openai.com/docs/api-reference/usage
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, datetime, time, timedelta, timezone
from decimal import Decimal
from typing import Any

from ._http import AdminAPI
from ._model import CostRow, Key, UsageRow

__all__ = ["BUCKETS_PER_PAGE", "DEFAULT_URL", "costs", "headers", "usage"]

DEFAULT_URL = "https://api.openai.com/v1"
BUCKETS_PER_PAGE = 31  # the most daily buckets a page holds
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


def usage(api: AdminAPI, since: date, until: date) -> Iterator[UsageRow]:
    """Tokens per day x model x project x tier x batch, completions and embeddings."""
    for kind, groups in _USAGE.items():
        params = [*_window(since, until), *(("group_by", g) for g in groups)]
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
