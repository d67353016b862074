"""A finished call becomes its record here: built, priced and frozen once, off the caller's thread.

The caller's thread only stamps the time and publishes a :class:`Capture` holding the facts
of the call; the usage is extracted and the record built, validated and priced by whoever
reads it first: a run's totals asked for on the caller's thread, else the intake thread.
Every reader then shares that one frozen record.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Mapping
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Optional, Union

from .. import _stats
from .._fees import fees_of
from .._forksafe import module_lock
from .._log import ERROR, WARNING, internal_error, log_once
from .._record import MAX_DIMENSIONS, Scalar, UsageRecord, cap_dimensions, derive_event_id, new_event_id
from ..errors import InvalidRecord
from ..providers.base import TokenUsage, fit_usage

if TYPE_CHECKING:
    from .._runs import Run

__all__ = ["Capture", "Captured", "Extract", "build_record", "record_of"]

Extract = Callable[[Any], Optional[TokenUsage]]
"""Reads the usage of a finished call from its response (None: nothing to bill)."""

_lock = module_lock(globals(), "_lock")
_UNBUILT: Any = object()
_NO_ACCOUNT: Mapping[str, Scalar] = {}


class Capture:
    """A finished call on its way to becoming a record, with the facts of the call it needs.

    ``extract(source)`` gives the usage; ``dimensions`` are the client's and the scope's
    (the usage's own are added when built); ``account``: the client's account dimensions
    (``instrument._account``); ``trusted_ids``: the provider's response ids are unique, so the
    event id is derived from them.
    """

    __slots__ = (
        "_built",
        "_priced",
        "account",
        "customer",
        "dimensions",
        "extract",
        "meter",
        "operation",
        "provider",
        "request_model",
        "run",
        "scope_dimensions",
        "source",
        "status",
        "trusted_ids",
        "ts",
    )

    def __init__(
        self,
        provider: str,
        operation: str,
        request_model: Optional[str],
        customer: Optional[str],
        dimensions: Mapping[str, Scalar],
        scope_dimensions: Mapping[str, Scalar],
        meter: Optional[str],
        run: Optional[Run],
        trusted_ids: bool,
        extract: Extract,
        source: Any,
        status: str = "ok",
        account: Mapping[str, Scalar] = _NO_ACCOUNT,
    ) -> None:
        self.provider = provider
        self.operation = operation
        self.request_model = request_model
        self.customer = customer
        self.dimensions = dimensions
        self.scope_dimensions = scope_dimensions
        self.meter = meter
        self.run = run
        self.trusted_ids = trusted_ids
        self.extract = extract
        self.source: Any = source
        self.status = status
        self.account = account
        self.ts = time.time()
        self._built: Optional[UsageRecord] = _UNBUILT
        self._priced = False

    @classmethod
    def of(cls, record: UsageRecord, run: Optional[Run] = None) -> Capture:
        """The capture of a record already built (``usagetap.record()``): nothing left to build."""
        capture = cls.__new__(cls)
        capture.customer, capture.run, capture.source = record.customer, run, None
        capture._built, capture._priced = record, record.price_version is not None
        return capture

    @property
    def priced(self) -> bool:
        """Whether the record has been priced (or pricing it was tried and failed)."""
        return self._priced

    def record(self, *, price: bool = True) -> Optional[UsageRecord]:
        """The frozen record (built on first use, priced once when ``price``); None if nothing is billed."""
        with _lock:
            built = self._built
            if built is _UNBUILT:
                built = self._built = self._build()
                self.source = None
            if price and not self._priced and built is not None:
                self._built = built = _priced(built)
                self._priced = True
            return built

    def _build(self) -> Optional[UsageRecord]:
        try:
            usage = self.extract(self.source)
            if usage is None:  # nothing billable after all (e.g. a response already metered)
                return None
            return build_record(self, usage, self.status, self.ts).validate()
        except InvalidRecord as exc:
            _stats.incr("partial.invalid")
            log_once(
                ERROR,
                f"invalid:{_rule(exc)}",
                "usagetap: a usage record broke a rule (%s); kept as a partial record without its usage",
                exc,
            )
            issue = f"invalid record: {_rule(exc)}"
        except Exception as exc:
            internal_error("extract", exc)
            issue = f"usage unreadable: {type(exc).__name__}"
        return self._unread(issue)

    def _unread(self, issue: str) -> Optional[UsageRecord]:
        """The billed call's record when its usage could not be read: partial, the reason named."""
        try:
            usage = TokenUsage(model=self.request_model, reported=False, issue=issue)
            return build_record(self, usage, "partial", self.ts).validate()
        except Exception as exc:
            _stats.incr("dropped.invalid")
            internal_error("extract", exc)
            return None


Captured = Union[UsageRecord, Capture]
"""What the pipeline takes: a record, or a capture that becomes one on the intake thread."""


def record_of(item: Captured, *, price: bool = True) -> Optional[UsageRecord]:
    """The record of ``item``; a bare record is priced here when ``price`` (a priced copy)."""
    if isinstance(item, Capture):
        return item.record(price=price)
    return _priced(item) if price and item.price_version is None else item


def _priced(record: UsageRecord) -> UsageRecord:
    from .._cost import price_record

    try:
        return price_record(record)
    except Exception as exc:
        internal_error("pricing", exc)
        return record


def build_record(capture: Capture, usage: TokenUsage, status: str, ts: Optional[float] = None) -> UsageRecord:
    """The record of ``usage``; usage that breaks the record's rules is fitted and flagged ``partial``."""
    run = capture.run
    _fit_usage(capture.provider, usage)
    dimensions: dict[str, Scalar] = {**capture.dimensions, **capture.scope_dimensions, **usage.dimensions}
    if len(dimensions) > MAX_DIMENSIONS:  # nested scopes each within the cap, together over it
        dimensions = {
            **cap_dimensions({**capture.dimensions, **capture.scope_dimensions}),
            **usage.dimensions,
        }
    if capture.account:  # the client's account, outside the cap (reconcile matches by it); the user's wins
        dimensions = {**capture.account, **dimensions}
    if capture.meter:
        dimensions["meter"] = capture.meter
    if usage.issue:
        dimensions["usage_issue"] = usage.issue
    if usage.response_id and capture.trusted_ids:
        event_id = derive_event_id(capture.provider, capture.operation, usage.response_id)
    else:
        event_id = new_event_id()
    return UsageRecord(
        event_id=event_id,
        timestamp=datetime.now(timezone.utc) if ts is None else datetime.fromtimestamp(ts, timezone.utc),
        customer=capture.customer,
        provider=capture.provider,
        model=usage.model or capture.request_model or "unknown",
        request_model=capture.request_model,
        operation=capture.operation,
        input_tokens=usage.input_tokens,
        output_tokens=usage.output_tokens,
        cache_read_tokens=usage.cache_read_tokens,
        cache_write_tokens=usage.cache_write_tokens,
        reasoning_tokens=usage.reasoning_tokens,
        dimensions=dimensions,
        status=status if usage.reported and not usage.issue else "partial",
        response_id=usage.response_id,
        run_id=None if run is None else run.id,
        parent_run_id=None if run is None else run.parent_id,
        fees=fees_of(usage.dimensions),
    )


def _fit_usage(provider: str, usage: TokenUsage) -> None:
    """Fit usage that does not add up (``fit_usage``), counting and logging each kind of fault once."""
    for kind in fit_usage(usage):
        _stats.incr(f"partial.{kind}")
        log_once(
            WARNING,
            f"usage:{kind}:{provider}",
            "usagetap: %s reported usage that does not add up (%s); recorded as partial with a usage_issue",
            provider,
            usage.issue,
        )


def _rule(exc: InvalidRecord) -> str:
    """The rule a record broke, without its values: one log line per rule, not per bad value."""
    text = str(exc).split(", got ")[0].split(" (")[0]
    return re.sub(r"(['\"]).*?\1|\d+", "_", text)[:200]
