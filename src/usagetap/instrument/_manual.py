"""``usagetap.record()``: meter a response obtained without a wrapped client."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Optional

from .. import _runtime, limits
from ..context import CustomerId, Scope, current_scope, customer_id
from ..providers import family_for, registered
from ..record import validate_dimensions
from ._adapter import load, provider_of
from ._binding import Binding
from ._calls import Call, make_record

__all__ = ["record"]


def record(
    response: Any,
    *,
    customer: CustomerId = None,
    dimensions: Optional[Mapping[str, Any]] = None,
    provider: Optional[str] = None,
    request_model: Optional[str] = None,
) -> str:
    """Meter one provider response (an SDK object, or its JSON with ``provider=``); return its event id.

    ::

        completion = some_library_call(...)          # an openai ChatCompletion
        usagetap.record(completion, customer="org_1")

    ``customer`` (a ``str``, or an ``int`` taken as its decimal string) and
    ``dimensions`` win over the scope in effect. The event id
    is derived from the response id, so recording the same response twice is
    deduplicated downstream. Raises ``TypeError`` for an object usagetap
    cannot meter and :class:`usagetap.InvalidRecord` for malformed usage.
    """
    billed = customer_id(customer, "usagetap.record(customer=...)")
    family = provider_of(response) if provider is None else family_for(provider)
    if family is None:
        sdks = ", ".join(entry.sdk for entry in registered())
        raise TypeError(
            f"usagetap.record() needs a response of a provider SDK ({sdks}), or its JSON with provider=..., "
            f"not {type(response).__qualname__}"
        )
    adapter = load(family)
    described = adapter.describe(response)
    if described is None:
        raise TypeError(
            f"usagetap.record() cannot meter this {family.family} object: {type(response).__qualname__}"
        )
    operation, extract = described
    binding = Binding(adapter=adapter, provider=provider or family.family)
    call = Call(binding, operation, request_model, False, None)
    extra = validate_dimensions(dimensions or {}, where="usagetap.record(dimensions=...)")
    scope = current_scope()
    call.scope = Scope(
        customer=billed if billed is not None else scope.customer,
        dimensions={**scope.dimensions, **extra},
        run=scope.run,
    )
    usage_record = make_record(call, extract(response), "ok").validate()
    if scope.run is not None:
        scope.run.add(usage_record)
    limits.observe(usage_record.customer, usage_record)
    _runtime.submit(usage_record)
    return usage_record.event_id
