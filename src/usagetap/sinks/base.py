"""The sink interface: translate records to one backend's wire format and report per-event outcomes.

A sink does not queue, batch, time or retry; the delivery pipeline does. It
receives priced records (at most ``max_batch`` at once) and says, for each
event id, whether the backend took it (a duplicate counts as taken), whether
it is worth trying again, or why it never will be.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Optional, Protocol, runtime_checkable

from ..record import UsageRecord

__all__ = ["DEFAULT_IN_FLIGHT", "Outcomes", "Sink", "meter_of"]

# Batches a remote sink whose backend dedupes (and does not care about order) has in flight at once.
DEFAULT_IN_FLIGHT = 4


@dataclass
class Outcomes:
    """What became of each event of one ``send()``.

    ``delivered``: acknowledged by the backend (``duplicates`` of them were
    already there). ``retry``: try again, not before ``retry_after`` seconds if
    set; ``retry_reason`` says why (a status code, an unreachable host).
    ``dead``: event id -> the backend's reason; never retried.
    ``halt``: the sink cannot deliver anything until someone acts (a rejected
    API key): every event of the batch stays pending, delivery to this sink
    pauses, and the reason is logged loudly once.
    ``split``: the backend refused the batch as a whole (413 too large, or a
    422 that one bad event causes for all): the pipeline resends it in halves,
    down to single events; a single event refused this way is dead-lettered
    with this reason. ``too_large``: the split is for size (HTTP 413): the
    pipeline remembers, per sink, the sizes taken and refused.
    """

    delivered: list[str] = field(default_factory=list)
    retry: list[str] = field(default_factory=list)
    dead: dict[str, str] = field(default_factory=dict)
    duplicates: int = 0
    retry_after: Optional[float] = None
    halt: Optional[str] = None
    split: Optional[str] = None
    retry_reason: Optional[str] = None
    too_large: bool = False

    @classmethod
    def all_delivered(cls, records: Iterable[UsageRecord], duplicates: int = 0) -> Outcomes:
        """Every record acknowledged; ``duplicates`` of them were already there."""
        return cls(delivered=[r.event_id for r in records], duplicates=duplicates)

    @classmethod
    def all_retry(
        cls,
        records: Iterable[UsageRecord],
        retry_after: Optional[float] = None,
        reason: Optional[str] = None,
    ) -> Outcomes:
        """Every record to be retried, not before ``retry_after`` seconds if given; ``reason``: why."""
        return cls(retry=[r.event_id for r in records], retry_after=retry_after, retry_reason=reason)

    @classmethod
    def all_dead(cls, records: Iterable[UsageRecord], reason: str) -> Outcomes:
        """Every record refused for good with ``reason``."""
        return cls(dead={r.event_id: reason for r in records})

    @classmethod
    def split_batch(cls, records: Iterable[UsageRecord], reason: str, *, too_large: bool = False) -> Outcomes:
        """The batch refused as a whole with ``reason`` (``too_large``: for its size): resend it in halves."""
        return cls(retry=[r.event_id for r in records], split=reason, too_large=too_large)

    @classmethod
    def halted(
        cls, records: Iterable[UsageRecord], reason: str, retry_after: Optional[float] = None
    ) -> Outcomes:
        """Nothing can be delivered until someone acts (``reason``): keep every record, pause the sink."""
        return cls(retry=[r.event_id for r in records], halt=reason, retry_after=retry_after)

    def merge(self, other: Outcomes) -> Outcomes:
        """Combine the outcomes of two sends (e.g. halves of a split batch)."""
        after = [a for a in (self.retry_after, other.retry_after) if a is not None]
        return Outcomes(
            delivered=self.delivered + other.delivered,
            retry=self.retry + other.retry,
            dead={**self.dead, **other.dead},
            duplicates=self.duplicates + other.duplicates,
            retry_after=max(after) if after else None,
            halt=self.halt or other.halt,
            split=self.split or other.split,
            retry_reason=self.retry_reason or other.retry_reason,
            too_large=self.too_large or other.too_large,
        )


def meter_of(record: UsageRecord, default: str) -> str:
    """The meter (event name) a record goes to: the one its client was wrapped with, else the sink's."""
    meter = record.dimensions.get("meter")
    return meter if isinstance(meter, str) and meter else default


@runtime_checkable
class Sink(Protocol):
    """Where usage records go. Implementations: :mod:`usagetap.sinks`.

    A sink may also say how many batches it takes at once, ``max_in_flight``
    (without it: 1, one batch after the other, in order). The remote sinks
    whose backends dedupe take :data:`DEFAULT_IN_FLIGHT`; set the attribute on
    an instance to change it (1 where order or a tight rate limit matters).
    """

    name: str
    max_batch: int

    def send(self, records: Sequence[UsageRecord]) -> Outcomes:
        """Deliver ``records`` (already priced) and report every event id's outcome."""
        ...

    def close(self) -> None:
        """Release connections; called once, at shutdown."""
        ...
