"""Usage -> cost, from the genai-prices table bundled with the installed package (no network I/O).

Pricing runs on the delivery worker, not on the caller's thread: genai-prices
is imported on first use and a price costs about 100 µs, so results are memoised.
An unknown model prices as ``None`` (never 0) with one warning per model.
"""

from __future__ import annotations

import functools
import logging
from datetime import date, datetime, timezone
from decimal import Decimal
from typing import Any, Optional

from ._forksafe import module_lock
from ._log import log_once
from .record import UsageRecord

__all__ = ["price_record", "price_version", "pricing_provider"]

# usagetap provider name -> genai-prices provider id
_PROVIDER_IDS: dict[str, str] = {
    "openai": "openai",
    "azure": "azure",
    "anthropic": "anthropic",
    "bedrock": "aws",
    "vertex": "google",
}

_lock = module_lock(globals(), "_lock")


def pricing_provider(provider: str) -> tuple[Optional[str], Optional[str]]:
    """Return ``(provider_id, provider_api_url)`` for genai-prices; exactly one is set."""
    known = _PROVIDER_IDS.get(provider)
    if known is not None:
        return known, None
    return None, f"https://{provider}"


@functools.lru_cache(maxsize=1)
def price_version() -> str:
    """The version of the price table in use, stored on every priced record."""
    import genai_prices

    version = str(getattr(genai_prices, "__version__", "unknown"))
    try:
        from genai_prices import data_snapshot

        snapshot = data_snapshot.get_snapshot()
        if getattr(snapshot, "from_auto_update", False):
            return f"genai-prices {version} (updated {snapshot.timestamp.isoformat()})"
    except Exception:  # pragma: no cover - older genai-prices without snapshots
        pass
    return f"genai-prices {version}"


def price_record(record: UsageRecord) -> Optional[Decimal]:
    """Price ``record`` and set its ``cost`` and ``price_version``; return the cost (None when unknown)."""
    if record.price_version is not None:
        return record.cost
    cost = _price(
        record.provider,
        record.model,
        record.input_tokens,
        record.output_tokens,
        record.cache_read_tokens,
        record.cache_write_tokens,
        record.timestamp.date(),
    )
    record.cost = cost
    record.price_version = price_version()
    return cost


@functools.lru_cache(maxsize=8192)
def _price(
    provider: str,
    model: str,
    input_tokens: int,
    output_tokens: int,
    cache_read_tokens: int,
    cache_write_tokens: int,
    day: date,
) -> Optional[Decimal]:
    from genai_prices import Usage, calc_price

    provider_id, provider_api_url = pricing_provider(provider)
    usage = Usage(
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        cache_read_tokens=cache_read_tokens or None,
        cache_write_tokens=cache_write_tokens or None,
    )
    kwargs: dict[str, Any] = {
        "genai_request_timestamp": datetime(day.year, day.month, day.day, 12, tzinfo=timezone.utc)
    }
    if provider_id is not None:
        kwargs["provider_id"] = provider_id
    else:
        kwargs["provider_api_url"] = provider_api_url
    try:
        with _lock:
            result = calc_price(usage, model, **kwargs)
    except LookupError:
        log_once(
            logging.WARNING,
            f"unknown-model:{provider}:{model}",
            "usagetap: no price for model %r at provider %r; its records carry cost=None "
            "(set one with usagetap.prices.set)",
            model,
            provider,
        )
        return None
    return Decimal(result.total_price)
