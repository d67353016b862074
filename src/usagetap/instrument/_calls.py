"""One metered call: what was asked, what came back, and the record it becomes.

The interceptors here wrap a client's ``request()`` method. They never change
what reaches the caller: the SDK's result (the same object) or the SDK's own
exception. Anything usagetap fails at is logged and counted by the guard.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Optional, Union

from .. import _runtime, _stats, limits
from .._forksafe import module_lock
from .._log import ERROR, WARNING, internal_error, log_once
from ..context import Scope, current_scope
from ..errors import InvalidRecord
from ..policy import admit
from ..providers.base import TokenUsage, fit_usage
from ..record import MAX_DIMENSIONS, Scalar, UsageRecord, cap_dimensions, derive_event_id, new_event_id

if TYPE_CHECKING:
    from ._binding import Binding

__all__ = ["Call", "Capture", "emit", "intercept_async", "intercept_sync", "make_record"]

# providers whose response ids are unique, so the event id can be derived from them
_TRUSTED_IDS = frozenset({"openai", "azure", "anthropic", "bedrock", "vertex"})


class Call:
    """A request usagetap meters, planned before it is sent."""

    __slots__ = (
        "binding",
        "hide_usage",
        "operation",
        "options",
        "original_options",
        "provider",
        "request_model",
        "scope",
        "stream",
    )

    def __init__(
        self,
        binding: Binding,
        operation: str,
        request_model: Optional[str],
        stream: bool,
        options: Any,
    ) -> None:
        self.binding = binding
        self.provider = binding.provider
        self.operation = operation
        self.request_model = request_model
        self.stream = stream
        self.options = options
        self.original_options = options
        self.hide_usage = False
        self.scope: Scope = current_scope()

    @property
    def customer(self) -> Optional[str]:
        """Who the call is billed to: the scope in effect at call time, else the client's bound customer."""
        return self.scope.customer if self.scope.customer is not None else self.binding.customer


def make_record(call: Call, usage: TokenUsage, status: str, ts: Optional[float] = None) -> UsageRecord:
    """The record of ``usage``; usage that breaks the record's rules is fitted and flagged ``partial``."""
    binding, scope = call.binding, call.scope
    run = scope.run
    _settle_usage(call, usage)
    dimensions: dict[str, Scalar] = {**binding.dimensions, **scope.dimensions, **usage.dimensions}
    if len(dimensions) > MAX_DIMENSIONS:  # nested scopes each within the cap, together over it
        dimensions = {**cap_dimensions({**binding.dimensions, **scope.dimensions}), **usage.dimensions}
    if binding.meter:
        dimensions["meter"] = binding.meter
    if usage.issue:
        dimensions["usage_issue"] = usage.issue
    if usage.response_id and call.provider in _TRUSTED_IDS:
        event_id = derive_event_id(call.provider, call.operation, usage.response_id)
    else:
        event_id = new_event_id()
    return UsageRecord(
        event_id=event_id,
        timestamp=datetime.now(timezone.utc) if ts is None else datetime.fromtimestamp(ts, timezone.utc),
        customer=call.customer,
        provider=call.provider,
        model=usage.model or call.request_model or "unknown",
        request_model=call.request_model,
        operation=call.operation,
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
    )


def _settle_usage(call: Call, usage: TokenUsage) -> None:
    for kind in fit_usage(usage):
        _stats.incr(f"partial.{kind}")
        log_once(
            WARNING,
            f"usage:{kind}:{call.provider}",
            "usagetap: %s reported usage that does not add up (%s); recorded as partial with a usage_issue",
            call.provider,
            usage.issue,
        )


_materialize_lock = module_lock(globals(), "_materialize_lock")


class Capture:
    """A finished call on its way to becoming a record.

    The caller's thread only stamps the time and queues this; extraction,
    the record itself and its validation are built on the delivery worker
    (or by whoever reads run totals first), once.
    """

    __slots__ = ("_record", "call", "extract", "source", "status", "ts")

    def __init__(
        self, call: Call, extract: Callable[[Any], Optional[TokenUsage]], source: Any, status: str
    ) -> None:
        self.call = call
        self.extract = extract
        self.source: Any = source
        self.status = status
        self.ts = time.time()
        self._record: Union[UsageRecord, bool, None] = False

    def materialize(self) -> Optional[UsageRecord]:
        """The validated record (built on first use), or None if it could not be built."""
        with _materialize_lock:
            if self._record is False:
                self._record = self._build()
                self.source = None
            return self._record if isinstance(self._record, UsageRecord) else None

    def _build(self) -> Optional[UsageRecord]:
        try:
            usage = self.extract(self.source)
            if usage is None:  # nothing billable after all (e.g. a response already metered)
                return None
            return make_record(self.call, usage, self.status, self.ts).validate()
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
            usage = TokenUsage(model=self.call.request_model, reported=False, issue=issue)
            return make_record(self.call, usage, "partial", self.ts).validate()
        except Exception as exc:
            _stats.incr("dropped.invalid")
            internal_error("extract", exc)
            return None


def _rule(exc: InvalidRecord) -> str:
    """The rule a record broke, without its values: one log line per rule, not per bad value."""
    text = str(exc).split(", got ")[0].split(" (")[0]
    return re.sub(r"(['\"]).*?\1|\d+", "_", text)[:200]


def emit(call: Call, extract: Callable[[Any], Optional[TokenUsage]], source: Any, status: str = "ok") -> None:
    """Queue the usage of a finished call (``extract(source)``, computed later); never raises.

    ``extract`` may return None when it finds nothing to bill; no record is made then.
    """
    try:
        capture = Capture(call, extract, source, status)
        if call.scope.run is not None:
            call.scope.run.add(capture)
        limits.observe(call.customer, capture)
        _runtime.submit(capture)
    except Exception as exc:
        internal_error("capture", exc)


def _plan(binding: Binding, options: Any) -> Optional[Call]:
    try:
        return binding.adapter.plan(binding, options)
    except Exception as exc:
        internal_error("plan", exc)
        return None


def _settle(call: Call, result: Any) -> Any:
    call.options = call.original_options = None  # sent: a capture waiting for delivery needs them no more
    try:
        return call.binding.adapter.on_result(call, result)
    except Exception as exc:
        internal_error("result", exc)
        return result


def _fallback(call: Call, exc: Exception) -> Any:
    """Options to retry with once, when the provider refused only what usagetap added; else None."""
    try:
        return call.binding.adapter.fallback(call, exc)
    except Exception as error:
        internal_error("fallback", error)
        return None


def intercept_sync(
    binding: Binding, send: Callable[..., Any], cast_to: Any, options: Any, args: Any, kwargs: Any
) -> Any:
    call = _plan(binding, options)
    if call is None:
        return send(cast_to, options, *args, **kwargs)
    admit(call)
    try:
        result = send(cast_to, call.options, *args, **kwargs)
    except Exception as exc:
        retry = _fallback(call, exc)
        if retry is None:
            raise
        result = send(cast_to, retry, *args, **kwargs)
    return _settle(call, result)


async def intercept_async(
    binding: Binding, send: Callable[..., Any], cast_to: Any, options: Any, args: Any, kwargs: Any
) -> Any:
    call = _plan(binding, options)
    if call is None:
        return await send(cast_to, options, *args, **kwargs)
    admit(call)
    try:
        result = await send(cast_to, call.options, *args, **kwargs)
    except Exception as exc:
        retry = _fallback(call, exc)
        if retry is None:
            raise
        result = await send(cast_to, retry, *args, **kwargs)
    return _settle(call, result)
