"""The sink interface: translate records to one backend's wire format and report per-event outcomes.

A sink does not queue, batch, time or retry; the delivery pipeline does. It
receives priced records (at most ``max_batch`` at once) and says, for each
event id, whether the backend took it (a duplicate counts as taken), whether
it is worth trying again, or why it never will be.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Optional, Protocol, runtime_checkable

from .._record import UsageRecord
from ..errors import ConfigurationError

__all__ = [
    "DEFAULT_IN_FLIGHT",
    "MAX_TIMEOUT",
    "BaseSink",
    "Outcomes",
    "Sink",
    "SinkAdapter",
    "as_sink",
    "is_sink",
    "meter_of",
]

MAX_TIMEOUT = 3600.0  # seconds; every sink's timeout is at most this
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
    """What a sink must be: a ``name`` (its key in the spool) and ``send()``.

    Everything else a sink may say has a default, declared on :class:`BaseSink`
    (which the sinks of :mod:`usagetap.sinks` derive from): a sink written as a
    plain class with ``name`` and ``send()`` works as it is, and
    :func:`as_sink` gives it the defaults where delivery takes it in (a sink
    without ``close()``, declared here for type checkers, is closed as a no-op).
    """

    name: str

    def send(self, records: Sequence[UsageRecord]) -> Outcomes:
        """Deliver ``records`` (already priced) and report every event id's outcome."""
        ...

    def close(self) -> None:
        """Release connections; called once, at shutdown."""
        ...


class BaseSink:
    """A sink with every member delivery reads, each with its default (httpx's ``BaseTransport``).

    ``max_batch``: the most records one ``send()`` takes (None: the pipeline's
    ``batch_size``). ``max_in_flight``: batches sent at once (1: one after the
    other, in order; the remote sinks whose backends dedupe take
    :data:`DEFAULT_IN_FLIGHT`, set it on an instance to change it).
    ``local``: records stay on this machine (a file, this process), no
    network. ``unavailable``: why this sink cannot deliver anything (it stands
    for one that could not be built); delivery to it stays halted.
    """

    name: str
    max_batch: Optional[int] = None
    max_in_flight: int = 1
    local: bool = False
    unavailable: Optional[str] = None

    def send(self, records: Sequence[UsageRecord]) -> Outcomes:
        """Deliver ``records`` (already priced) and report every event id's outcome."""
        raise NotImplementedError

    def close(self) -> None:
        """Release connections; called once, at shutdown. Default: nothing to release."""

    def after_fork(self) -> None:
        """In a forked child, before its first send: drop what belongs to the parent. Default: nothing."""


class SinkAdapter(BaseSink):
    """A sink that does not derive from :class:`BaseSink`, with the defaults for what it leaves out."""

    def __init__(self, sink: Sink) -> None:
        self.sink = sink
        self.name = sink.name
        # The one place a sink's optional members are looked up by name: they are optional.
        self.max_batch = _count(getattr(sink, "max_batch", None))
        self.max_in_flight = _count(getattr(sink, "max_in_flight", None)) or 1
        self.local = bool(getattr(sink, "local", False))
        reason = getattr(sink, "unavailable", None)
        self.unavailable = reason if isinstance(reason, str) and reason else None

    def send(self, records: Sequence[UsageRecord]) -> Outcomes:
        return self.sink.send(records)

    def close(self) -> None:
        close = getattr(self.sink, "close", None)
        if callable(close):
            close()

    def after_fork(self) -> None:
        reset = getattr(self.sink, "after_fork", None)
        if callable(reset):
            reset()

    def __repr__(self) -> str:
        return repr(self.sink)


def _count(value: Any) -> Optional[int]:
    """A count a sink declares, or None when it declares none (or zero)."""
    return int(value) if value else None


def is_sink(candidate: object) -> bool:
    """Whether ``candidate`` can be a sink: a :class:`BaseSink`, or anything with ``name`` and ``send()``."""
    if isinstance(candidate, BaseSink):
        return True
    return isinstance(candidate, _Named) and isinstance(candidate.name, str) and callable(candidate.send)


def as_sink(candidate: Sink) -> BaseSink:
    """``candidate`` with every member delivery reads: itself when it is a :class:`BaseSink`, else
    a :class:`SinkAdapter` around it. Raises :class:`~usagetap.ConfigurationError` when it is no sink."""
    if isinstance(candidate, BaseSink):
        return candidate
    if not is_sink(candidate):
        raise ConfigurationError(f"{candidate!r} is not a sink (it needs a name and send(records))")
    return SinkAdapter(candidate)


@runtime_checkable
class _Named(Protocol):
    """The least a sink has: what :func:`is_sink` checks."""

    name: object

    def send(self, records: Sequence[UsageRecord]) -> Outcomes: ...
