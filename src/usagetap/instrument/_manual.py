"""``usagetap.record()``: meter a response obtained without a wrapped client."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Optional

from .._context import CustomerId, current_scope, customer_id
from .._record import validate_dimensions
from ..delivery.intake import Capture, build_record
from ..providers import Provider, family_for, registered
from ..publish import publish
from ._adapter import load, provider_of
from ._calls import _TRUSTED_IDS

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
    family = provider_of(response) or (None if provider is None else family_for(provider))
    if family is not None and provider is not None and load(family).describe(response) is None:
        family = _other_family(provider, response) or family  # JSON of a name two families share
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
    extra = validate_dimensions(dimensions or {}, where="usagetap.record(dimensions=...)")
    scope = current_scope()
    provider = provider or family.family
    capture = Capture(
        provider,
        operation,
        request_model,
        billed if billed is not None else scope.customer,
        {},
        {**scope.dimensions, **extra},
        None,
        scope.run,
        provider in _TRUSTED_IDS,
        extract,
        response,
    )
    usage_record = build_record(capture, extract(response), "ok").validate()
    publish(Capture.of(usage_record, scope.run))
    return usage_record.event_id


def _other_family(provider: str, response: Any) -> Optional[Provider]:
    """Another family reporting ``provider`` (``vertex``: Anthropic and Google) that meters ``response``."""
    for entry in registered():
        if provider in entry.names and load(entry).describe(response) is not None:
            return entry
    return None
