"""``wrap()``: meter one client in place, keeping its type and every attribute; a wrapped one by a copy."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Optional, TypeVar

from .. import _runtime, _switch
from .._context import CustomerId, customer_id
from .._record import validate_dimensions
from ._account import account_dimensions
from ._adapter import Adapter, adapter_for
from ._binding import Binding, binding_of

__all__ = ["binding_of", "wrap"]

T = TypeVar("T")


def wrap(
    client: T,
    *,
    customer: CustomerId = None,
    dimensions: Optional[Mapping[str, Any]] = None,
    meter: Optional[str] = None,
    provider: Optional[str] = None,
) -> T:
    """Meter every billable call made through ``client``; return it metered.

    Works on the clients of every registered provider (:mod:`usagetap.providers`):
    ``OpenAI``, ``AsyncOpenAI``, ``AzureOpenAI`` and OpenAI-compatible base URLs,
    ``Anthropic``, ``AsyncAnthropic`` and Anthropic's Bedrock and Vertex clients,
    google-genai's ``Client`` (Gemini API and Vertex AI), boto3's
    ``bedrock-runtime`` client and mistralai's ``Mistral``::

        client = usagetap.wrap(OpenAI())
        claude = usagetap.wrap(Anthropic(), customer="org_9", dimensions={"product": "assistant"})

    ``customer`` (a ``str``, or an ``int`` taken as its decimal string) and
    ``dimensions`` are defaults for this client; a ``usagetap.customer()``
    scope in effect at call time wins. ``meter`` sends this client's records
    to another meter (Open Spanner meter, Stripe or Spaire event name,
    OpenMeter event type) than the sink's default; the record carries it as
    the ``meter`` dimension. ``provider`` overrides the provider name derived
    from the base URL (for gateways and proxies). A client is metered in
    place: ``isinstance`` checks, its type and all its other attributes are
    unchanged, and ``with_options()`` / ``copy()`` return metered clients
    with the same defaults.

    Wrapping a client that is already wrapped never changes it: with other
    defaults, you get a metered copy (the SDK's ``copy()``, sharing its
    connection pool) bound to them, so one shared client serves many tenants::

        org_a = usagetap.wrap(shared, customer="org_a")   # shared itself, bound to org_a
        org_b = usagetap.wrap(shared, customer="org_b")   # a copy; org_a still bills org_a

    With the same defaults, you get the client itself back. Raises
    ``TypeError`` for an argument of the wrong type, naming it. With metering
    off (``USAGETAP_DISABLED=1`` or ``configure(enabled=False)``) the client is
    returned untouched.
    """
    if not _switch.enabled:
        return client
    adapter = adapter_for(client)
    adapter.check(client)
    billed = customer_id(customer, "usagetap.wrap(customer=...)")
    _check_optional_str(meter, "meter")
    _check_optional_str(provider, "provider")
    if dimensions is not None and not isinstance(dimensions, Mapping):
        raise TypeError(f"usagetap.wrap(dimensions=...) must be a mapping, got {type(dimensions).__name__}")
    defaults = validate_dimensions(dimensions or {}, where="usagetap.wrap(dimensions=...)")
    earlier = binding_of(client)
    if earlier is not None:
        bound = (earlier.customer, earlier.dimensions, earlier.meter, earlier.provider_override)
        if bound == (billed, defaults, meter, provider):
            return client
        client = _copy_of(adapter, client)
    binding = Binding(
        adapter=adapter,
        provider=provider or adapter.provider_for(client),
        customer=billed,
        dimensions=defaults,
        meter=meter,
        provider_override=provider,
        stream_options_rejected=earlier is not None and earlier.stream_options_rejected,
        account=account_dimensions(client),
    )
    adapter.install(client, binding)
    _runtime.start()
    adapter.note_unmetered(client)
    return client


def _copy_of(adapter: Adapter, client: T) -> T:
    """A fresh, unwrapped copy of ``client`` made by the SDK (sharing its HTTP client)."""
    try:
        return adapter.copy(client)  # type: ignore[no-any-return]
    except Exception as exc:
        raise TypeError(
            f"usagetap.wrap(): this {type(client).__qualname__} is already wrapped with other defaults and "
            "the SDK could not copy it; wrap a new client, or pass a customer() scope per call"
        ) from exc


def _check_optional_str(value: object, name: str) -> None:
    if value is not None and not isinstance(value, str):
        raise TypeError(f"usagetap.wrap({name}=...) must be a str or None, got {type(value).__name__}")
