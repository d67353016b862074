"""What every budget store does: reserve a call's worst case atomically, settle it, release it.

A *bucket* is one limit's period for one scope (a customer, or a customer x feature): its key
starts with the customer in braces (``{org_1}|...``), which is the Redis Cluster hash tag, so all
of a customer's buckets live on one node. Amounts are whole tokens and whole nano-dollars.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Optional, Protocol, runtime_checkable

__all__ = [
    "BudgetStore",
    "Charge",
    "Refusal",
    "Seed",
    "SeededStore",
    "StoreUnavailable",
    "Used",
    "distinct",
    "passes",
]

NANOS = 10**9
"""Nano-dollars per US dollar: costs are kept as whole nano-dollars in every store."""


class StoreUnavailable(Exception):
    """The budget store could not be reached or did not answer in time."""


@dataclass(frozen=True)
class Charge:
    """One limit a call is checked against: the bucket it is added to, the buckets summed (a rolling
    window spans several), the reserved amounts and the maxima (None: no maximum of that kind)."""

    bucket: str
    window: tuple[str, ...]
    tokens: int
    nanos: int
    max_tokens: Optional[int]
    max_nanos: Optional[int]
    expires: Optional[float]
    """When the bucket may be forgotten (epoch seconds, after its period); None: never."""


@dataclass(frozen=True)
class Used:
    """A bucket's (or window's) settled usage and what live reservations hold in it."""

    calls: int = 0
    tokens: int = 0
    nanos: int = 0
    unpriced: int = 0
    held_tokens: int = 0
    held_nanos: int = 0


@dataclass(frozen=True)
class Refusal:
    """A reservation refused: the index of the charge that would pass its limit, and its window's usage."""

    index: int
    used: Used


class BudgetStore(Protocol):
    """Budget state shared by the processes that use the same store."""

    def reserve(self, hold: str, charges: tuple[Charge, ...], ttl: float) -> Optional[Refusal]:
        """Reserve every charge under ``hold`` for ``ttl`` seconds, all or none: None when reserved,
        else the first charge whose window's settled + held + reserved amount would pass its maximum."""
        ...

    def settle(self, hold: str, charges: tuple[Charge, ...], actual: Used) -> None:
        """Drop ``hold``'s reservations and add ``actual`` to each charge's bucket (even if it expired)."""
        ...

    def release(self, hold: str, charges: tuple[Charge, ...]) -> None:
        """Drop ``hold``'s reservations (the call was not billed)."""
        ...

    def used(self, window: tuple[str, ...]) -> Used:
        """The settled usage in ``window``'s buckets and what live reservations hold there."""
        ...

    def close(self) -> None:
        """Close connections (idempotent)."""
        ...


@dataclass(frozen=True)
class Seed:
    """What a ledger held for a bucket's period before the store first saw the bucket."""

    bucket: str
    used: Used
    expires: Optional[float]


@runtime_checkable
class SeededStore(Protocol):
    """A store that takes past spend from the machine's ledger, once per bucket across its processes."""

    def seed(self, seeds: Sequence[Seed]) -> None:
        """Add each seed's usage to its bucket, atomically, unless the bucket was seeded before."""
        ...


def passes(charge: Charge, used: Used) -> bool:
    """Whether reserving ``charge`` on top of ``used`` would pass one of its maxima."""
    over_tokens = (
        charge.max_tokens is not None and used.tokens + used.held_tokens + charge.tokens > charge.max_tokens
    )
    over_nanos = (
        charge.max_nanos is not None and used.nanos + used.held_nanos + charge.nanos > charge.max_nanos
    )
    return over_tokens or over_nanos


def distinct(charges: Sequence[Charge]) -> list[Charge]:
    """``charges`` with one per bucket (settled usage is added to each bucket once)."""
    seen: dict[str, Charge] = {}
    for charge in charges:
        seen.setdefault(charge.bucket, charge)
    return list(seen.values())
