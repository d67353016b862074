"""Matching the ledger's records against the provider's usage and cost, bucket by bucket."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal
from typing import Any, Optional

from ._keys import resolve
from ._model import Bucket, CostRow, Day, Key, Result, UsageRow

__all__ = ["HINT_DIMENSION", "LedgerRow", "SCOPE_DIMENSION", "hinted", "match"]

LedgerRow = tuple[str, str, Mapping[str, Any], int, int, Optional[Decimal]]
"""A metered record: UTC day, model, dimensions, input tokens, output tokens, cost."""

SCOPE_DIMENSION = {"openai": "openai_project", "anthropic": "anthropic_workspace"}
"""The record dimension that names the provider's project (OpenAI) or workspace (Anthropic)."""
HINT_DIMENSION = "api_key_hint"
"""The record dimension holding the client's API key as the provider shows it (``instrument._account``)."""
DEFAULT_TIER = {"openai": "default", "anthropic": "standard"}


def hinted(ledger: Sequence[LedgerRow]) -> bool:
    """Whether every record carries an ``api_key_hint`` (then buckets can split by key)."""
    return bool(ledger) and all(dims.get(HINT_DIMENSION) for _, _, dims, *_ in ledger)


def match(
    provider: str,
    since: str,
    until: str,
    usage: Iterable[UsageRow],
    costs: Iterable[CostRow],
    ledger: Sequence[LedgerRow],
    *,
    max_drift: Decimal,
    costs_per_bucket: bool,
    api_keys: Optional[Mapping[str, str]] = None,
) -> Result:
    """Put the provider's usage and cost and the metered records into the same buckets.

    Buckets are split by project/workspace only when every metered record names one (else the
    provider's rows are summed over them); ``costs_per_bucket``: the provider's cost splits by
    model (Anthropic), else it is compared per day only (OpenAI). ``api_keys`` (key id -> the
    provider's hint): buckets split by key too, each record in the key its ``api_key_hint`` names
    (``""``: none or several), and costs are compared per day (the cost reports have no key).
    """
    by_key = api_keys is not None
    owner = resolve((str(d.get(HINT_DIMENSION) or "") for _, _, d, *_ in ledger), api_keys or {})
    costs_per_bucket = costs_per_bucket and not by_key
    dimension = SCOPE_DIMENSION[provider]
    by_scope = bool(ledger) and all(dims.get(dimension) for _, _, dims, *_ in ledger)
    buckets: dict[Key, Bucket] = {}
    days: dict[str, Day] = {}

    def bucket(key: Key) -> Bucket:
        if not by_scope and key.scope:
            key = dataclasses.replace(key, scope="")
        if not by_key and key.api_key:
            key = dataclasses.replace(key, api_key="")
        found = buckets.get(key)
        if found is None:
            found = buckets[key] = Bucket(key, has_cost=costs_per_bucket)
        return found

    def day(name: str) -> Day:
        return days.setdefault(name, Day(name))

    for row in usage:
        for side in (bucket(row.key).provider, day(row.key.day).provider):
            side.calls += row.requests
            side.input_tokens += row.input_tokens
            side.output_tokens += row.output_tokens
    for cost in costs:
        day(cost.day).provider.cost += cost.amount
        if cost.key is not None and costs_per_bucket:
            bucket(cost.key).provider.cost += cost.amount
    unpriced = 0
    for name, model, dims, input_tokens, output_tokens, amount in ledger:
        key = _ledger_key(provider, name, model, dims, dimension if by_scope else None)
        if by_key:
            key = dataclasses.replace(key, api_key=owner.get(str(dims.get(HINT_DIMENSION) or "")) or "")
        unpriced += amount is None
        for side in (bucket(key).metered, day(name).metered):
            side.calls += 1
            side.input_tokens += input_tokens
            side.output_tokens += output_tokens
            side.cost += amount or Decimal(0)
    return Result(
        provider=provider,
        since=since,
        until=until,
        max_drift=max_drift,
        buckets=[buckets[k] for k in sorted(buckets)],
        days=[days[d] for d in sorted(days)],
        scope=dimension if by_scope else None,
        unpriced=unpriced,
        api_keys=dict(api_keys) if api_keys is not None else None,
    )


def _ledger_key(
    provider: str, day: str, model: str, dims: Mapping[str, Any], dimension: Optional[str]
) -> Key:
    tier = dims.get("service_tier")
    batch = dims.get("batch") is True or tier == "batch"
    return Key(
        day=day,
        model=model,
        scope=str(dims.get(dimension) or "") if dimension else "",
        tier=str(tier)
        if isinstance(tier, str) and tier
        else ("batch" if batch and provider == "anthropic" else DEFAULT_TIER[provider]),
        batch=batch,
    )
