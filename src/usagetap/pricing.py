"""Usage -> cost, from the genai-prices table bundled with the installed package (no network I/O).

Pricing runs on the delivery worker, not on the caller's thread: genai-prices
is imported on first use and a price costs about 100 µs, so results are memoised.
An unknown model prices as ``None`` (never 0) with one warning per model.

What is priced, where the installed genai-prices has it: input (long-context
tiers follow from the total input), cache reads, cache writes with the 5-minute
/ 1-hour split (dimensions ``cache_write_5m_tokens`` / ``cache_write_1h_tokens``),
reasoning, audio tokens, web searches (``web_search_requests``), the batch
discount (``batch=True``) and ``service_tier`` prices. Older genai-prices
without some of these price them at the base rates, saying so once.
User overrides (:mod:`usagetap.prices`) win over the table; a markup is
recorded as ``billed_cost``.
"""

from __future__ import annotations

import functools
import inspect
import logging
import warnings
from datetime import date, datetime, timezone
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Optional

from . import prices
from ._forksafe import module_lock
from ._log import log_once
from .record import UsageRecord

if TYPE_CHECKING:
    from .prices import Price

__all__ = ["context_of", "price_record", "price_version", "pricing_provider", "usage_of"]

# usagetap provider name -> genai-prices provider id
_PROVIDER_IDS: dict[str, str] = {
    "openai": "openai",
    "azure": "azure",
    "anthropic": "anthropic",
    "bedrock": "aws",
    "vertex": "google",
}

# record dimension -> genai-prices usage key
_DIMENSION_USAGE: dict[str, str] = {
    "cache_write_5m_tokens": "cache_write_5m_tokens",
    "cache_write_1h_tokens": "cache_write_1h_tokens",
    "input_audio_tokens": "input_audio_tokens",
    "output_audio_tokens": "output_audio_tokens",
    "web_search_requests": "web_searches",
}
# usage keys a genai-prices without them prices at the base rate anyway (no warning)
_QUIET_KEYS = frozenset({"output_reasoning_tokens"})

UsageItems = tuple[tuple[str, int], ...]
ContextItems = tuple[tuple[str, str], ...]

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


@functools.cache
def supports_usage_key(key: str) -> bool:
    """Whether the installed genai-prices ``Usage`` takes ``key``."""
    from genai_prices import Usage

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            Usage(**{key: 0})
    except (TypeError, ValueError, Warning):
        return False
    return True


@functools.lru_cache(maxsize=1)
def supports_price_context() -> bool:
    """Whether the installed genai-prices selects batch / service-tier prices (``price_context``)."""
    from genai_prices import calc_price

    try:
        return "price_context" in inspect.signature(calc_price).parameters
    except (TypeError, ValueError):  # pragma: no cover
        return False


def usage_of(record: UsageRecord) -> UsageItems:
    """The record's usage as genai-prices usage keys, limited to those the installed version knows."""
    items = [("input_tokens", record.input_tokens), ("output_tokens", record.output_tokens)]
    if record.cache_read_tokens:
        items.append(("cache_read_tokens", record.cache_read_tokens))
    if record.cache_write_tokens:
        items.append(("cache_write_tokens", record.cache_write_tokens))
    if record.reasoning_tokens:
        items.append(("output_reasoning_tokens", record.reasoning_tokens))
    for dimension, key in _DIMENSION_USAGE.items():
        value = record.dimensions.get(dimension)
        if type(value) is int and value > 0:
            items.append((key, value))
    supported = []
    for key, value in items:
        if supports_usage_key(key):
            supported.append((key, value))
        elif key not in _QUIET_KEYS:
            log_once(
                logging.WARNING,
                f"unsupported-usage:{key}",
                "usagetap: the installed genai-prices has no %s prices; those are priced at the base "
                "rate (upgrade genai-prices for exact costs)",
                key,
            )
    return tuple(supported)


def context_of(record: UsageRecord) -> ContextItems:
    """The genai-prices ``price_context`` of a record: batch processing and service tier."""
    dimensions = record.dimensions
    tier = dimensions.get("service_tier")
    items: list[tuple[str, str]] = []
    if dimensions.get("batch") is True or tier == "batch":
        items.append(("processing", "batch"))
    if isinstance(tier, str) and tier and tier != "batch":
        items.append(("service_tier", tier))
    if items and not supports_price_context():
        log_once(
            logging.WARNING,
            "unsupported-price-context",
            "usagetap: the installed genai-prices has no batch or service-tier prices; such calls are "
            "priced at standard rates (upgrade genai-prices for exact costs)",
        )
        return ()
    return tuple(items)


def price_record(record: UsageRecord) -> Optional[Decimal]:
    """Price ``record`` (``cost``, ``price_version``, ``billed_cost``); return the cost, None if unknown."""
    if record.price_version is not None:
        return record.cost
    usage = usage_of(record)
    override = prices.lookup(record.provider, record.model, record.request_model)
    if override is not None:
        cost: Optional[Decimal] = _price_override(override, usage)
        version = override.version
    else:
        cost = _price(record.provider, record.model, usage, context_of(record), record.timestamp.date())
        version = price_version()
    record.cost = cost
    record.billed_cost = prices.billed(record)
    record.price_version = version
    return cost


@functools.lru_cache(maxsize=1024)
def _price_override(price: Price, usage: UsageItems) -> Decimal:
    from genai_prices import Usage
    from genai_prices.types import ModelPrice

    result = ModelPrice(**price.genai_prices_kwargs()).calc_price(Usage(**dict(usage)))
    return Decimal(result["total_price"])


_BASE_KEYS = frozenset({"input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens"})


@functools.lru_cache(maxsize=8192)
def _price(
    provider: str, model: str, usage: UsageItems, context: ContextItems, day: date
) -> Optional[Decimal]:
    from genai_prices import Usage, calc_price

    provider_id, provider_api_url = pricing_provider(provider)
    kwargs: dict[str, Any] = {
        "genai_request_timestamp": datetime(day.year, day.month, day.day, 12, tzinfo=timezone.utc)
    }
    if provider_id is not None:
        kwargs["provider_id"] = provider_id
    else:
        kwargs["provider_api_url"] = provider_api_url
    if context:
        kwargs["price_context"] = dict(context)
    try:
        with _lock:
            try:
                result = calc_price(Usage(**dict(usage)), model, **kwargs)
            except ValueError:
                base = {k: v for k, v in usage if k in _BASE_KEYS}
                if len(base) == len(usage):
                    raise
                log_once(
                    logging.WARNING,
                    f"inconsistent-usage:{provider}:{model}",
                    "usagetap: genai-prices refused the detailed usage of a %s call (%s); priced without it",
                    model,
                    ", ".join(k for k, _ in usage if k not in _BASE_KEYS),
                )
                result = calc_price(Usage(**base), model, **kwargs)
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
    except ValueError as exc:
        log_once(
            logging.WARNING,
            f"unpriceable:{provider}:{model}",
            "usagetap: genai-prices could not price a %s call (%s); its record carries cost=None",
            model,
            exc,
        )
        return None
    return Decimal(result.total_price)
