"""From records to the items a backend receives, and from per-item answers back to per-event outcomes.

A backend that takes one quantity per event gets, with ``split_by_token_type``,
one item per token type (``input`` = uncached input, ``cache_read``,
``cache_write``, ``output``) keyed ``{event_id}:{token_type}``, the quantities
summing to the record's total; zero quantities are not sent. A record's non-token
fees (``record.fees``) are items of their own where a sink sends them
(:func:`fee_items`: ``token_type`` is the fee's name, keyed ``{event_id}:{fee}``).
An event is delivered only when every one of its items is.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, NamedTuple, Optional

from .._record import Scalar, UsageRecord
from .base import Outcomes

__all__ = [
    "TOKEN_TYPES",
    "OutcomeTally",
    "Unsendable",
    "WireItem",
    "clean_scalars",
    "fee_items",
    "items_for",
    "unique",
]

TOKEN_TYPES = ("input", "cache_read", "cache_write", "output")


class Unsendable(Exception):
    """This event can never be valid for this backend; the message is the dead-letter reason."""


class WireItem(NamedTuple):
    """One quantity a backend receives for a record: the whole record, or one of its token types (or a
    part of one), under its own idempotency ``key``.

    A named tuple: a batch makes one per event, and a frozen dataclass costs four times as much to build.
    """

    record: UsageRecord
    key: str
    quantity: int
    token_type: Optional[str] = None
    fee: Optional[str] = None


def token_quantities(record: UsageRecord) -> dict[str, int]:
    """The record's tokens by type; they sum to ``record.total_tokens``."""
    return {
        "input": record.uncached_input_tokens,
        "cache_read": record.cache_read_tokens,
        "cache_write": record.cache_write_tokens,
        "output": record.output_tokens,
    }


def items_for(
    record: UsageRecord, *, split: bool, max_quantity: Optional[int] = None, max_parts: Optional[int] = None
) -> list[WireItem]:
    """The items for ``record``; a quantity over ``max_quantity`` goes in parts (``{key}:part{n}``).

    Raises :class:`Unsendable` when that would take more than ``max_parts`` items (counted first).
    """
    if split:
        items = [
            WireItem(record, f"{record.event_id}:{kind}", quantity, kind)
            for kind, quantity in token_quantities(record).items()
            if quantity > 0
        ]
    else:
        items = [WireItem(record, record.event_id, record.total_tokens)] if record.total_tokens > 0 else []
    if max_quantity is None:
        return items
    if max_parts is not None:
        needed = sum(-(-item.quantity // max_quantity) for item in items)
        if needed > max_parts:
            raise Unsendable(
                f"{record.total_tokens} tokens would take {needed} events of at most {max_quantity} "
                f"units; more than the {max_parts} one record may take"
            )
    out: list[WireItem] = []
    for item in items:
        if item.quantity <= max_quantity:
            out.append(item)
            continue
        parts = math.ceil(item.quantity / max_quantity)
        for n in range(parts):
            quantity = min(max_quantity, item.quantity - n * max_quantity)
            out.append(WireItem(record, f"{item.key}:part{n + 1}", quantity, item.token_type))
    return out


def fee_items(record: UsageRecord) -> list[WireItem]:
    """One item per non-token fee of ``record`` (``web_search``, ...): the fee's name as its
    ``token_type``, its count as the quantity, keyed ``{event_id}:{fee}``."""
    return [
        WireItem(record, f"{record.event_id}:{fee}", quantity, fee)
        for fee, quantity in record.fees.items()
        if type(quantity) is int and quantity > 0
    ]


def unique(records: Iterable[UsageRecord]) -> list[UsageRecord]:
    """``records`` without repeated event ids (the first one wins)."""
    seen: set[str] = set()
    out = []
    for record in records:
        if record.event_id not in seen:
            seen.add(record.event_id)
            out.append(record)
    return out


def clean_scalars(
    values: Mapping[Any, Any],
    *,
    max_key: Optional[int] = None,
    max_str: Optional[int] = None,
    allow_empty_str: bool = True,
) -> dict[str, Scalar]:
    """Keep what a JSON backend can take: str/int/float/bool values, finite numbers, no NUL characters.

    Over-long keys and strings are truncated (a key that then collides is dropped).
    """
    out: dict[str, Scalar] = {}
    for raw_key, value in values.items():
        if not isinstance(raw_key, str):
            continue
        key = raw_key.replace("\x00", "")
        if max_key is not None:
            key = key[:max_key]
        if not key or key in out:
            continue
        if isinstance(value, int):  # bool included
            out[key] = value
        elif isinstance(value, float):
            if math.isfinite(value):
                out[key] = value
        elif isinstance(value, str):
            text = value.replace("\x00", "")
            if max_str is not None:
                text = text[:max_str]
            if text or allow_empty_str:
                out[key] = text
    return out


class OutcomeTally:
    """A batch's per-item answers, tallied into per-event :class:`Outcomes` (an event is delivered only
    when every one of its items is)."""

    def __init__(self, records: Sequence[UsageRecord]) -> None:
        self.records = unique(records)
        self._items: dict[str, list[str]] = {r.event_id: [] for r in self.records}
        self._duplicate: dict[str, bool] = {}  # every item delivered so far was a duplicate
        self._reasons: dict[str, list[str]] = {}
        self.duplicates = 0
        self.retry_after: Optional[float] = None
        self.halt: Optional[str] = None
        self.split: Optional[str] = None
        self.retry_reason: Optional[str] = None
        self.too_large = False

    def collect(self, make: Callable[[UsageRecord], Iterable[WireItem]]) -> list[WireItem]:
        """Every record's items; a record that can never be sent is dead-lettered with the reason."""
        items: list[WireItem] = []
        for record in self.records:
            try:
                items.extend(make(record))
            except Unsendable as exc:
                self.dead_event(record, str(exc))
        return items

    def send_in_chunks(
        self, items: Sequence[WireItem], size: int, send: Callable[[list[WireItem]], None]
    ) -> None:
        """``send`` the items ``size`` at a time; after a halt or a Retry-After, the rest wait."""
        for start in range(0, len(items), size):
            chunk = list(items[start : start + size])
            if self.halt or self.retry_after is not None:
                for item in chunk:
                    self.retry(item)
                continue
            send(chunk)

    def delivered(self, item: WireItem, *, duplicate: bool = False) -> None:
        event_id = item.record.event_id
        self._items[event_id].append("delivered")
        self._duplicate[event_id] = duplicate and self._duplicate.get(event_id, True)

    def retry(
        self, item: WireItem, retry_after: Optional[float] = None, reason: Optional[str] = None
    ) -> None:
        self._items[item.record.event_id].append("retry")
        self.wait(retry_after)
        self.retry_reason = self.retry_reason or reason

    def dead(self, item: WireItem, reason: str) -> None:
        self.dead_event(item.record, reason)

    def dead_event(self, record: UsageRecord, reason: str) -> None:
        self._items[record.event_id].append("dead")
        reasons = self._reasons.setdefault(record.event_id, [])
        if reason not in reasons:
            reasons.append(reason)

    def wait(self, retry_after: Optional[float]) -> None:
        if retry_after is not None:
            self.retry_after = max(self.retry_after or 0.0, retry_after)

    def apply(self, outcomes: Outcomes, items: Sequence[WireItem]) -> None:
        """Record a whole-request answer (from :func:`answer_outcomes`) for ``items``."""
        for item in items:
            event_id = item.record.event_id
            if event_id in outcomes.dead:
                self.dead(item, outcomes.dead[event_id])
            elif event_id in outcomes.delivered:
                self.delivered(item)
            else:
                self.retry(item)
        self.wait(outcomes.retry_after)
        self.halt = self.halt or outcomes.halt
        self.split = self.split or outcomes.split
        self.retry_reason = self.retry_reason or outcomes.retry_reason
        self.too_large = self.too_large or outcomes.too_large

    def merge(self, other: OutcomeTally) -> None:
        """Add the answers ``other`` tallied for some of the same records (one item sent on its own)."""
        for event_id, states in other._items.items():
            self._items[event_id].extend(states)
            if event_id in other._duplicate:
                self._duplicate[event_id] = other._duplicate[event_id] and self._duplicate.get(event_id, True)
            for reason in other._reasons.get(event_id, ()):
                reasons = self._reasons.setdefault(event_id, [])
                if reason not in reasons:
                    reasons.append(reason)
        self.duplicates += other.duplicates
        self.wait(other.retry_after)
        self.halt = self.halt or other.halt
        self.split = self.split or other.split
        self.retry_reason = self.retry_reason or other.retry_reason
        self.too_large = self.too_large or other.too_large

    def outcomes(self) -> Outcomes:
        result = Outcomes(
            duplicates=self.duplicates,
            retry_after=self.retry_after,
            halt=self.halt,
            split=self.split,
            retry_reason=self.retry_reason,
            too_large=self.too_large,
        )
        for record in self.records:
            states = self._items[record.event_id]
            if "retry" in states:
                result.retry.append(record.event_id)
            elif "dead" in states:
                result.dead[record.event_id] = "; ".join(self._reasons[record.event_id])
            else:
                result.delivered.append(record.event_id)
                if self._duplicate.get(record.event_id):
                    result.duplicates += 1
        return result
