"""What reconciliation compares: the provider's usage and cost rows, the ledger's, and the result."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Optional

__all__ = ["Bucket", "CostRow", "Day", "Key", "Result", "Side", "UsageRow"]


@dataclass(frozen=True, order=True)
class Key:
    """A bucket: UTC day x model x project/workspace ("" when not matched by it) x tier x batch x
    the provider's API key id ("" when not matched by key)."""

    day: str
    model: str
    scope: str
    tier: str
    batch: bool
    api_key: str = ""


@dataclass(frozen=True)
class UsageRow:
    """The provider's tokens in one bucket, in usagetap's convention (input includes cache)."""

    key: Key
    input_tokens: int
    output_tokens: int
    cache_read_tokens: int = 0
    requests: int = 0


@dataclass(frozen=True)
class CostRow:
    """The provider's cost in USD for one day (``key`` None: only per day) or one bucket."""

    day: str
    amount: Decimal
    key: Optional[Key] = None


@dataclass
class Side:
    """One side's totals in a bucket or a day."""

    calls: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cost: Decimal = Decimal(0)

    @property
    def tokens(self) -> int:
        return self.input_tokens + self.output_tokens

    def as_dict(self) -> dict[str, Any]:
        return {
            "calls": self.calls,
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "cost": str(self.cost),
        }


def _coverage(metered: int, provider: int) -> Decimal:
    if provider == 0:
        return Decimal(100) if metered == 0 else Decimal("Infinity")
    return (Decimal(metered) * 100 / provider).quantize(Decimal("0.01"))


@dataclass
class Bucket:
    """Provider and metered tokens in one bucket; costs too where the provider splits them so."""

    key: Key
    provider: Side = field(default_factory=Side)
    metered: Side = field(default_factory=Side)
    has_cost: bool = False

    @property
    def coverage(self) -> Decimal:
        """Metered tokens as a percentage of the provider's."""
        return _coverage(self.metered.tokens, self.provider.tokens)

    @property
    def residual_tokens(self) -> int:
        """Provider tokens usagetap did not meter (negative: metered more than the provider counted)."""
        return self.provider.tokens - self.metered.tokens

    @property
    def residual_cost(self) -> Optional[Decimal]:
        return self.provider.cost - self.metered.cost if self.has_cost else None

    def as_dict(self) -> dict[str, Any]:
        residual = self.residual_cost
        return {
            "day": self.key.day,
            "model": self.key.model,
            "scope": self.key.scope or None,
            "tier": self.key.tier,
            "batch": self.key.batch,
            "api_key": self.key.api_key or None,
            "provider": self.provider.as_dict() if self.has_cost else _tokens_only(self.provider),
            "metered": self.metered.as_dict(),
            "coverage": str(self.coverage),
            "residual_tokens": self.residual_tokens,
            "residual_cost": None if residual is None else str(residual),
        }


def _tokens_only(side: Side) -> dict[str, Any]:
    out = side.as_dict()
    out["cost"] = None
    return out


@dataclass
class Day:
    """Provider and metered cost (and tokens) of one UTC day."""

    day: str
    provider: Side = field(default_factory=Side)
    metered: Side = field(default_factory=Side)

    @property
    def coverage(self) -> Decimal:
        return _coverage(self.metered.tokens, self.provider.tokens)

    @property
    def residual_cost(self) -> Decimal:
        return self.provider.cost - self.metered.cost

    @property
    def cost_drift(self) -> Decimal:
        """``|residual cost|`` as a percentage of the provider's cost."""
        if self.provider.cost == 0:
            return Decimal(0) if self.metered.cost == 0 else Decimal("Infinity")
        return (abs(self.residual_cost) * 100 / self.provider.cost).quantize(Decimal("0.01"))

    def as_dict(self) -> dict[str, Any]:
        return {
            "day": self.day,
            "provider": self.provider.as_dict(),
            "metered": self.metered.as_dict(),
            "coverage": str(self.coverage),
            "residual_tokens": self.provider.tokens - self.metered.tokens,
            "residual_cost": str(self.residual_cost),
            "cost_drift": str(self.cost_drift),
        }


@dataclass
class Result:
    """A reconciliation: buckets, days, and whether any drifted past ``max_drift`` percent."""

    provider: str
    since: str
    until: str
    max_drift: Decimal
    buckets: list[Bucket]
    days: list[Day]
    scope: Optional[str] = None
    unpriced: int = 0
    api_keys: Optional[dict[str, str]] = None
    """Matched by API key: each listed key id's hint (None: not matched by key)."""

    @property
    def drifted(self) -> list[str]:
        """What passed the threshold, one line each (empty: the ledger matches the provider)."""
        out: list[str] = []
        for bucket in self.buckets:
            if abs(bucket.coverage - 100) > self.max_drift:
                k = bucket.key
                key = f" key {self.hint_of(k.api_key)}" if self.api_keys is not None else ""
                batch = " batch" if k.batch else ""
                out.append(f"{k.day} {k.model} {k.tier}{batch}{key}: coverage {bucket.coverage}%")
        for day in self.days:
            if day.cost_drift > self.max_drift:
                out.append(f"{day.day}: cost drift {day.cost_drift}%")
        return out

    def hint_of(self, key_id: str) -> str:
        """How a bucket's key shows: its hint and id, or ``(no key matched)``."""
        if not key_id:
            return "(no key matched)"
        return f"{(self.api_keys or {}).get(key_id, '?')} ({key_id})"

    def as_dict(self) -> dict[str, Any]:
        return {
            "provider": self.provider,
            "since": self.since,
            "until": self.until,
            "max_drift": str(self.max_drift),
            "matched_by_scope": self.scope,
            "matched_by_key": self.api_keys is not None,
            "api_keys": self.api_keys,
            "unpriced_records": self.unpriced,
            "buckets": [b.as_dict() for b in self.buckets],
            "days": [d.as_dict() for d in self.days],
            "drifted": self.drifted,
        }
