"""One metered call: what was asked, what came back, and its publication when it ends.

The interceptors here wrap a client's ``request()`` method. They never change
what reaches the caller: the SDK's result (the same object) or the SDK's own
exception. Anything usagetap fails at is logged and counted by the guard.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Optional, Union

from .._context import SCOPE, Scope
from .._customer_policy import admit
from .._log import internal_error
from .._state import STATE
from ..delivery.intake import Capture, Extract

if TYPE_CHECKING:
    from ..budgets.guard import Hold
    from ._binding import Binding

__all__ = ["Call", "emit", "failed", "intercept_async", "intercept_sync"]

# providers whose response ids are unique, so the event id can be derived from them
_TRUSTED_IDS = frozenset({"openai", "azure", "anthropic", "bedrock", "vertex", "google"})


class Call:
    """A request usagetap meters, planned before it is sent."""

    __slots__ = (
        "binding",
        "hide_usage",
        "hold",
        "operation",
        "options",
        "original_options",
        "provider",
        "request",
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
        self.scope: Scope = SCOPE.get()
        body = getattr(options, "json_data", None)
        self.request: Union[Mapping[str, Any], bytes, None] = (
            body if type(body) is dict or (body is not None and isinstance(body, Mapping)) else None
        )
        """The request body budgets estimate a call's worst case from (an adapter may set it)."""
        self.hold: Optional[Hold] = None

    @property
    def customer(self) -> Optional[str]:
        """Who the call is billed to: the scope in effect at call time, else the client's bound customer."""
        return self.scope.customer if self.scope.customer is not None else self.binding.customer


def emit(call: Call, extract: Extract, source: Any, status: str = "ok") -> None:
    """Publish a finished call (its usage is ``extract(source)``, read later); never raises.

    ``extract`` may return None when it finds nothing to bill; no record is made then.
    """
    try:
        binding, scope = call.binding, call.scope
        capture = Capture(
            call.provider,
            call.operation,
            call.request_model,
            scope.customer if scope.customer is not None else binding.customer,
            binding.dimensions,
            scope.dimensions,
            binding.meter,
            scope.run,
            call.provider in _TRUSTED_IDS,
            extract,
            source,
            status,
            binding.account,
        )
        for consumer in STATE.consumers:  # publish(capture), one Python call fewer per metered call
            try:
                consumer.on_end(capture)
            except Exception as exc:
                internal_error("capture", exc)
        if call.hold is not None:  # each capture of the call adds its usage (batch results: several)
            from ..budgets.guard import settle

            settle(call.hold, capture)
    except Exception as exc:
        internal_error("capture", exc)


def failed(call: Call) -> None:
    """The call raised before anything was billed: release its budget reservation (never raises)."""
    hold, call.hold = call.hold, None
    if hold is not None:
        from ..budgets.guard import release

        release(hold)


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
    try:
        call = binding.adapter.plan(binding, options)
    except Exception as exc:
        internal_error("plan", exc)
        call = None
    if call is None:
        return send(cast_to, options, *args, **kwargs)
    admit(call)
    try:
        try:
            result = send(cast_to, call.options, *args, **kwargs)
        except Exception as exc:
            retry = _fallback(call, exc)
            if retry is None:
                raise
            result = send(cast_to, retry, *args, **kwargs)
    except BaseException:
        failed(call)
        raise
    call.options = call.original_options = None  # sent: a capture waiting for delivery needs them no more
    try:
        return call.binding.adapter.on_result(call, result)
    except Exception as exc:
        internal_error("result", exc)
        return result


async def intercept_async(
    binding: Binding, send: Callable[..., Any], cast_to: Any, options: Any, args: Any, kwargs: Any
) -> Any:
    try:
        call = binding.adapter.plan(binding, options)
    except Exception as exc:
        internal_error("plan", exc)
        call = None
    if call is None:
        return await send(cast_to, options, *args, **kwargs)
    admit(call)
    try:
        try:
            result = await send(cast_to, call.options, *args, **kwargs)
        except Exception as exc:
            retry = _fallback(call, exc)
            if retry is None:
                raise
            result = await send(cast_to, retry, *args, **kwargs)
    except BaseException:
        failed(call)
        raise
    call.options = call.original_options = None  # sent: a capture waiting for delivery needs them no more
    try:
        return call.binding.adapter.on_result(call, result)
    except Exception as exc:
        internal_error("result", exc)
        return result
