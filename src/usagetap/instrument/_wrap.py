"""``wrap()``: meter one client in place, keeping its type and every attribute."""

from __future__ import annotations

import types
from collections.abc import Mapping
from typing import Any, Optional, TypeVar

from .. import _switch
from ..record import validate_dimensions
from ._adapter import adapter_for, is_async_client
from ._binding import Binding
from ._calls import intercept_async, intercept_sync

__all__ = ["binding_of", "wrap"]

T = TypeVar("T")

_ATTR = "_usagetap_binding"


def binding_of(client: Any) -> Optional[Binding]:
    """The binding of a wrapped client, or None."""
    try:
        binding = vars(client).get(_ATTR)
    except TypeError:
        return None
    return binding if isinstance(binding, Binding) else None


def wrap(
    client: T,
    *,
    customer: Optional[str] = None,
    dimensions: Optional[Mapping[str, Any]] = None,
    meter: Optional[str] = None,
    provider: Optional[str] = None,
) -> T:
    """Meter every billable call made through ``client``; return the same client.

    Works on ``OpenAI``, ``AsyncOpenAI``, ``AzureOpenAI``, OpenAI-compatible
    base URLs, ``Anthropic``, ``AsyncAnthropic`` and Anthropic's Bedrock and
    Vertex clients::

        client = usagetap.wrap(OpenAI())
        claude = usagetap.wrap(Anthropic(), customer="org_9", dimensions={"product": "assistant"})

    ``customer`` and ``dimensions`` are defaults for this client; a
    ``usagetap.customer()`` scope in effect at call time wins. ``meter`` sends
    this client's records to another meter (Open Spanner meter, Stripe or
    Spaire event name, OpenMeter event type) than the sink's default; the
    record carries it as the ``meter`` dimension. ``provider``
    overrides the provider name derived from the base URL (for gateways and
    proxies). The client is metered in place: ``isinstance`` checks, its type
    and all its other attributes are unchanged, and ``with_options()`` /
    ``copy()`` return metered clients with the same defaults. Wrapping again
    replaces the defaults. With metering off (``USAGETAP_DISABLED=1`` or
    ``configure(enabled=False)``) the client is returned untouched.
    """
    if not _switch.enabled:
        return client
    adapter = adapter_for(client)
    if not hasattr(type(client), "request") or not hasattr(client, "base_url"):
        raise TypeError(f"usagetap.wrap() needs an SDK client, got {type(client).__qualname__}")
    if customer is not None and (not isinstance(customer, str) or not customer):
        raise TypeError("wrap(customer=...) must be a non-empty string")
    binding = Binding(
        adapter=adapter,
        provider=provider or adapter.provider_for(client),
        customer=customer,
        dimensions=validate_dimensions(dimensions or {}, where="usagetap.wrap(dimensions=...)"),
        meter=meter,
        provider_override=provider,
    )
    _install(client, binding)
    note = getattr(adapter, "note_unmetered", None)
    if note is not None:
        note(client)
    return client


def _install(client: Any, binding: Binding) -> None:
    state = vars(client)
    state[_ATTR] = binding
    hook = _async_request if is_async_client(client) else _sync_request
    state["request"] = types.MethodType(hook, client)
    state["copy"] = state["with_options"] = types.MethodType(_copy, client)


# The SDK's own request(), bound to the client; if instrument() patched the class too,
# its wrapper sees the instance is wrapped and passes the call straight through.


def _sync_request(self: Any, cast_to: Any, options: Any, *args: Any, **kwargs: Any) -> Any:
    send = type(self).request.__get__(self, type(self))
    if not _switch.enabled:
        return send(cast_to, options, *args, **kwargs)
    return intercept_sync(vars(self)[_ATTR], send, cast_to, options, args, kwargs)


async def _async_request(self: Any, cast_to: Any, options: Any, *args: Any, **kwargs: Any) -> Any:
    send = type(self).request.__get__(self, type(self))
    if not _switch.enabled:
        return await send(cast_to, options, *args, **kwargs)
    return await intercept_async(vars(self)[_ATTR], send, cast_to, options, args, kwargs)


def _copy(self: Any, *args: Any, **kwargs: Any) -> Any:
    new = type(self).copy(self, *args, **kwargs)
    old: Binding = vars(self)[_ATTR]
    binding = Binding(
        adapter=old.adapter,
        provider=old.provider_override or old.adapter.provider_for(new),
        customer=old.customer,
        dimensions=dict(old.dimensions),
        meter=old.meter,
        provider_override=old.provider_override,
        stream_options_rejected=old.stream_options_rejected,
    )
    _install(new, binding)
    return new
