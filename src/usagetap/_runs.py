"""A run: the calls made inside one ``usagetap.track()`` block or call, and their totals.

Calls join the run in scope when they finish (the caller's thread only appends
the pending capture); totals are computed when read, so reading
``run.input_tokens`` right after a call returns includes that call. A nested
run's calls count in every enclosing run too.
"""

from __future__ import annotations

import collections
import threading
import time
from collections.abc import Mapping
from datetime import datetime, timezone
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Optional

from ._record import Scalar, UsageRecord, new_event_id
from ._state import STATE
from .publish import register

if TYPE_CHECKING:
    from .delivery.intake import Capture

__all__ = ["RUN_TOTALS", "Run"]


class _RunTotals:
    """The consumer of finished calls that counts each in the run in scope when it was made."""

    def on_end(self, capture: Capture) -> None:
        run = capture.run
        while run is not None:
            run._pending.append(capture)
            run = run.parent


RUN_TOTALS = _RunTotals()


class Run:
    """The totals of one ``usagetap.track()`` run, updated as its calls complete.

    ``calls`` counts completed calls (a stream counts when it ends), including
    calls made in tasks and propagated threads started inside the run and in
    nested runs. ``cost`` is the sum of the calls' costs in USD, or None when
    any call has no price (``unpriced_calls`` says how many). ``duration`` is
    in seconds, still growing while the run is open. A call started in the
    run that finishes after it ended (a stream read later, a task that
    outlives it) still counts in it and carries its ``run_id``.
    """

    __slots__ = (
        "__weakref__",
        "_billed",
        "_captures",
        "_cost",
        "_lock",
        "_pending",
        "_priced",
        "_t0",
        "_t1",
        "_tokens",
        "_unbilled",
        "_unpriced",
        "customer",
        "dimensions",
        "ended_at",
        "error",
        "id",
        "name",
        "parent",
        "started_at",
    )

    def __init__(
        self,
        customer: Optional[str] = None,
        dimensions: Optional[Mapping[str, Scalar]] = None,
        parent: Optional[Run] = None,
        name: Optional[str] = None,
    ) -> None:
        self.id = new_event_id()
        self.parent = parent
        self.customer = customer
        self.dimensions: Mapping[str, Scalar] = dict(dimensions or {})
        self.name = name
        self.started_at = datetime.now(timezone.utc)
        self.ended_at: Optional[datetime] = None
        self.error: Optional[str] = None
        self._t0 = time.perf_counter()
        self._t1: Optional[float] = None
        self._lock = threading.Lock()
        self._pending: collections.deque[Capture] = collections.deque()
        self._captures: list[Capture] = []
        self._tokens = [0, 0, 0, 0, 0]
        self._priced = 0
        self._cost = Decimal(0)
        self._billed: Optional[Decimal] = None
        self._unpriced = 0
        self._unbilled = 0
        if RUN_TOTALS not in STATE.consumers:
            register(RUN_TOTALS)

    @property
    def parent_id(self) -> Optional[str]:
        """The id of the enclosing run, or None for a top-level run."""
        return None if self.parent is None else self.parent.id

    # -- collecting ------------------------------------------------------

    def _fold(self) -> list[Capture]:
        """Add the calls finished since the last read to the totals (building each record once)."""
        pending = self._pending
        with self._lock:
            while pending:
                capture = pending.popleft()
                record = capture.record(price=False)
                if record is None:
                    continue
                self._captures.append(capture)
                tokens = self._tokens
                tokens[0] += record.input_tokens
                tokens[1] += record.output_tokens
                tokens[2] += record.cache_read_tokens
                tokens[3] += record.cache_write_tokens
                tokens[4] += record.reasoning_tokens
            return self._captures

    def _price(self) -> None:
        captures = self._fold()
        with self._lock:
            for capture in captures[self._priced :]:
                record = capture.record()
                if record is None:
                    continue
                if record.cost is None:
                    self._unpriced += 1
                else:
                    self._cost += record.cost
                if record.billed_cost is None:
                    self._unbilled += 1
                else:
                    self._billed = (self._billed or Decimal(0)) + record.billed_cost
            self._priced = len(captures)

    # -- totals ----------------------------------------------------------

    @property
    def calls(self) -> int:
        """Calls completed in the run so far (nested runs and propagated threads included)."""
        return len(self._fold())

    @property
    def input_tokens(self) -> int:
        """All input tokens of the run's calls, cache reads and writes included."""
        self._fold()
        return self._tokens[0]

    @property
    def output_tokens(self) -> int:
        """All output tokens of the run's calls, reasoning included."""
        self._fold()
        return self._tokens[1]

    @property
    def cache_read_tokens(self) -> int:
        """Input tokens read from the provider's prompt cache."""
        self._fold()
        return self._tokens[2]

    @property
    def cache_write_tokens(self) -> int:
        """Input tokens written to the provider's prompt cache."""
        self._fold()
        return self._tokens[3]

    @property
    def reasoning_tokens(self) -> int:
        """Output tokens spent on reasoning."""
        self._fold()
        return self._tokens[4]

    @property
    def total_tokens(self) -> int:
        """``input_tokens + output_tokens``."""
        self._fold()
        return self._tokens[0] + self._tokens[1]

    @property
    def cost(self) -> Optional[Decimal]:
        """USD cost of the run's calls (priced on first read), or None if any call has no price."""
        self._price()
        return None if self._unpriced else self._cost

    @property
    def billed_cost(self) -> Optional[Decimal]:
        """What the calls are billed at with the configured markup, or None (no markup, or unpriced calls)."""
        self._price()
        return None if self._unbilled else self._billed

    @property
    def unpriced_calls(self) -> int:
        """Calls whose model has no price (their cost is unknown, not 0)."""
        self._price()
        return self._unpriced

    @property
    def records(self) -> list[UsageRecord]:
        """The records of the run's completed calls so far (priced), in completion order."""
        return [r for r in (c.record() for c in self._fold()) if r is not None]

    @property
    def duration(self) -> float:
        """Seconds from start to end (to now while the run is open)."""
        end = self._t1 if self._t1 is not None else time.perf_counter()
        return end - self._t0

    @property
    def running(self) -> bool:
        """Whether the run is still open."""
        return self.ended_at is None

    def summary(self) -> dict[str, Any]:
        """The run as a JSON-ready dict (ids, customer, times, totals; decimals as strings)."""
        cost, billed = self.cost, self.billed_cost
        return {
            "run_id": self.id,
            "parent_run_id": self.parent_id,
            "name": self.name,
            "customer": self.customer,
            "dimensions": dict(self.dimensions),
            "started_at": self.started_at.isoformat(),
            "ended_at": None if self.ended_at is None else self.ended_at.isoformat(),
            "duration": self.duration,
            "error": self.error,
            "calls": self.calls,
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "cache_read_tokens": self.cache_read_tokens,
            "cache_write_tokens": self.cache_write_tokens,
            "reasoning_tokens": self.reasoning_tokens,
            "cost": None if cost is None else str(cost),
            "billed_cost": None if billed is None else str(billed),
            "unpriced_calls": self.unpriced_calls,
        }

    # -- lifecycle -------------------------------------------------------

    def end(self, error: Optional[BaseException] = None) -> None:
        """Mark the run ended (``track()`` does this); idempotent."""
        with self._lock:
            if self.ended_at is not None:
                return
            self._t1 = time.perf_counter()
            self.ended_at = datetime.now(timezone.utc)
            if error is not None and not isinstance(error, GeneratorExit):
                self.error = type(error).__name__

    def __repr__(self) -> str:
        state = "running" if self.ended_at is None else "ended"
        return f"<usagetap.Run {self.id} customer={self.customer!r} {state}>"
