"""``usagetap.record()``: meter a response obtained without a wrapped client, or usage given by hand."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Any, Optional

from .. import limits
from .._context import CustomerId, Scope, current_scope, customer_id
from .._log import internal_error
from .._record import (
    MAX_DIMENSIONS,
    Scalar,
    UsageRecord,
    cap_dimensions,
    derive_event_id,
    new_event_id,
    validate_dimensions,
)
from ..delivery.intake import Capture, build_record
from ..errors import InvalidRecord
from ..providers import Provider, family_for, registered
from ..publish import publish
from ._adapter import load, provider_of
from ._calls import _TRUSTED_IDS

__all__ = ["record"]


def record(
    response: Any = None,
    *,
    customer: CustomerId = None,
    dimensions: Optional[Mapping[str, Any]] = None,
    provider: Optional[str] = None,
    request_model: Optional[str] = None,
    model: Optional[str] = None,
    input_tokens: Optional[int] = None,
    output_tokens: Optional[int] = None,
    cache_read_tokens: int = 0,
    cache_write_tokens: int = 0,
    reasoning_tokens: int = 0,
    operation: str = "chat",
    response_id: Optional[str] = None,
    **extra: Any,
) -> str:
    """Meter one provider response, or usage given by hand; return its event id.

    ::

        completion = some_library_call(...)          # an openai ChatCompletion
        usagetap.record(completion, customer="org_1")

        usagetap.record(provider="cohere", model="command-r-plus", input_tokens=1200,
                        output_tokens=250, customer="org_1", feature="search")

    A response is an SDK object, or its JSON with ``provider=``. By hand, ``provider``,
    ``model``, ``input_tokens`` (all input, cache reads and writes included) and
    ``output_tokens`` (reasoning included) are required; the parts default to 0,
    ``operation`` to ``chat``. Either way the record is attributed, priced and delivered
    like a wrapped call's: ``customer`` (a ``str``, or an ``int`` taken as its decimal
    string), ``dimensions`` and keyword ``**extra`` dimensions win over the scope in
    effect, and it counts in the scope's run and the customer's limits. The event id is
    derived from the response id (by hand: ``response_id=``, when given), so recording
    the same response twice is deduplicated downstream. Raises ``TypeError`` for an
    object usagetap cannot meter or missing arguments, and
    :class:`usagetap.InvalidRecord` for malformed usage.
    """
    billed = customer_id(customer, "usagetap.record(customer=...)")
    given = validate_dimensions({**(dimensions or {}), **extra}, where="usagetap.record(dimensions=...)")
    scope = current_scope()
    limits._watch(billed if billed is not None else scope.customer)
    counts = {
        "input_tokens": input_tokens,
        "output_tokens": output_tokens,
        "cache_read_tokens": cache_read_tokens,
        "cache_write_tokens": cache_write_tokens,
        "reasoning_tokens": reasoning_tokens,
    }
    if response is not None:
        by_hand = (model, response_id, input_tokens, output_tokens)
        if any(v is not None for v in by_hand) or any(
            (cache_read_tokens, cache_write_tokens, reasoning_tokens)
        ):
            raise TypeError(
                "usagetap.record() takes a response or usage by hand (model=, ..._tokens=), not both"
            )
        usage_record = _of_response(scope, billed, given, provider, request_model, response)
    else:
        required = {
            "provider": provider,
            "model": model,
            "input_tokens": input_tokens,
            "output_tokens": output_tokens,
        }
        missing = [f"{name}=" for name, value in required.items() if value is None]
        if missing:
            raise TypeError(f"usagetap.record() needs a response, or by hand {', '.join(missing)}")
        usage_record = _by_hand(
            scope, billed, given, provider, model, request_model, operation, response_id, counts
        )
    capture = Capture.of(usage_record, scope.run)
    publish(capture)
    try:
        limits.recorded(capture)
    except Exception as exc:
        internal_error("limits", exc)
    return usage_record.event_id


def _of_response(
    scope: Scope,
    billed: Optional[str],
    given: dict[str, Scalar],
    provider: Optional[str],
    request_model: Optional[str],
    response: Any,
) -> UsageRecord:
    """The record of an SDK response (or its JSON with ``provider``)."""
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
    provider = provider or family.family
    capture = Capture(
        provider,
        operation,
        request_model,
        billed if billed is not None else scope.customer,
        {},
        {**scope.dimensions, **given},
        None,
        scope.run,
        provider in _TRUSTED_IDS,
        extract,
        response,
    )
    return build_record(capture, extract(response), "ok").validate()


def _by_hand(
    scope: Scope,
    billed: Optional[str],
    given: dict[str, Scalar],
    provider: Any,
    model: Any,
    request_model: Optional[str],
    operation: Any,
    response_id: Any,
    counts: dict[str, Any],
) -> UsageRecord:
    """The record of usage given by hand, refused (``InvalidRecord``) unless valid as given: never fitted."""
    for name, value in (("provider", provider), ("model", model), ("operation", operation)):
        if not isinstance(value, str) or not value:
            raise InvalidRecord(f"{name} must be a non-empty string, got {value!r}")
    if response_id is not None and (not isinstance(response_id, str) or not response_id):
        raise InvalidRecord(f"response_id must be a non-empty string or None, got {response_id!r}")
    run = scope.run
    merged = {**scope.dimensions, **given}
    return UsageRecord(
        event_id=derive_event_id(provider, operation, response_id) if response_id else new_event_id(),
        timestamp=datetime.now(timezone.utc),
        customer=billed if billed is not None else scope.customer,
        provider=provider,
        model=model,
        request_model=request_model,
        operation=operation,
        dimensions=cap_dimensions(merged) if len(merged) > MAX_DIMENSIONS else merged,
        response_id=response_id,
        run_id=None if run is None else run.id,
        parent_run_id=None if run is None else run.parent_id,
        **counts,
    ).validate()


def _other_family(provider: str, response: Any) -> Optional[Provider]:
    """Another family reporting ``provider`` (``vertex``: Anthropic and Google) that meters ``response``."""
    for entry in registered():
        if provider in entry.names and load(entry).describe(response) is not None:
            return entry
    return None
