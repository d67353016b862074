"""Your own prices: overrides for private or fine-tuned models, and a markup for what customers pay.

::

    usagetap.prices.set("ft:gpt-4.1-mini:acme::x1", "openai", input_per_mtok=0.8, output_per_mtok=3.2)
    usagetap.prices.markup(1.3)                      # billed_cost = cost * 1.3
    usagetap.prices.markup(1.1, customer="org_9")    # a customer's own deal wins
    usagetap.prices.set_fee("code_execution", "anthropic", unit_price="0.004")  # USD per use

An override replaces the genai-prices table for that model (``cost`` and
``price_version`` say so); a fee price (:func:`set_fee`) replaces the table's
price of one use of a non-token fee; a markup never touches ``cost``: it is
recorded as ``billed_cost``. Token prices are USD per million tokens, fee prices
USD per use. Changes apply to records priced afterwards.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any, Optional, Union

from ._forksafe import module_lock
from ._state import CLEAR, STATE, on_reset

if TYPE_CHECKING:
    from ._record import UsageRecord

__all__ = ["Price", "clear", "get", "markup", "set", "set_fee", "unset", "unset_fee"]

Number = Union[Decimal, int, float, str]
Multiplier = Union[Number, Callable[["UsageRecord"], Optional[Number]], None]

_lock = module_lock(globals(), "_lock")


def as_decimal(value: Number, name: str) -> Decimal:
    if isinstance(value, bool):
        raise TypeError(f"{name} must be a number, got bool")
    try:
        number = Decimal(str(value)) if isinstance(value, float) else Decimal(value)
    except (InvalidOperation, TypeError, ValueError):
        raise TypeError(f"{name} must be a number, got {value!r}") from None
    if not number.is_finite() or number < 0:
        raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
    return number


@dataclass(frozen=True)
class Price:
    """USD per million tokens for one model. Cache prices left unset are charged at the input price."""

    input_per_mtok: Decimal
    output_per_mtok: Decimal
    cache_read_per_mtok: Optional[Decimal] = None
    cache_write_per_mtok: Optional[Decimal] = None

    @property
    def version(self) -> str:
        """What ``price_version`` records for costs computed from this price."""
        parts = [f"input={self.input_per_mtok}", f"output={self.output_per_mtok}"]
        if self.cache_read_per_mtok is not None:
            parts.append(f"cache_read={self.cache_read_per_mtok}")
        if self.cache_write_per_mtok is not None:
            parts.append(f"cache_write={self.cache_write_per_mtok}")
        return f"usagetap.prices override ({', '.join(parts)} per MTok)"

    def genai_prices_kwargs(self) -> dict[str, Decimal]:
        """The same price as genai-prices ``ModelPrice`` keyword arguments."""
        kwargs = {"input_mtok": self.input_per_mtok, "output_mtok": self.output_per_mtok}
        if self.cache_read_per_mtok is not None:
            kwargs["cache_read_mtok"] = self.cache_read_per_mtok
        if self.cache_write_per_mtok is not None:
            kwargs["cache_write_mtok"] = self.cache_write_per_mtok
        return kwargs


def set(
    model: str,
    provider: Optional[str] = None,
    *,
    input_per_mtok: Number,
    output_per_mtok: Number,
    cache_read_per_mtok: Optional[Number] = None,
    cache_write_per_mtok: Optional[Number] = None,
) -> Price:
    """Price ``model`` (at ``provider``, or at any provider when None) with your own rates; return the price.

    ``model`` is matched, case-insensitively, against the model a response
    reports and then against the model the request asked for (an Azure
    deployment name, say). ``provider`` is usagetap's provider name
    (``openai``, ``azure``, ``anthropic``, ... or the host of a compatible server)::

        usagetap.prices.set("ft:gpt-4.1-mini:acme::x1", "openai", input_per_mtok=0.8, output_per_mtok=3.2)
        usagetap.prices.set("llama-3.1-70b", input_per_mtok="0.59", output_per_mtok="0.79")  # any provider
    """
    if not isinstance(model, str) or not model:
        raise TypeError("prices.set(): model must be a non-empty string")
    if provider is not None and (not isinstance(provider, str) or not provider):
        raise TypeError("prices.set(): provider must be a non-empty string or None")
    price = Price(
        input_per_mtok=as_decimal(input_per_mtok, "input_per_mtok"),
        output_per_mtok=as_decimal(output_per_mtok, "output_per_mtok"),
        cache_read_per_mtok=None
        if cache_read_per_mtok is None
        else as_decimal(cache_read_per_mtok, "cache_read_per_mtok"),
        cache_write_per_mtok=None
        if cache_write_per_mtok is None
        else as_decimal(cache_write_per_mtok, "cache_write_per_mtok"),
    )
    with _lock:
        STATE.price_overrides = {**STATE.price_overrides, (provider, model.lower()): price}
    return price


def unset(model: str, provider: Optional[str] = None) -> None:
    """Remove an override made with :func:`set` (the same ``model`` and ``provider``)."""
    with _lock:
        STATE.price_overrides = {
            k: v for k, v in STATE.price_overrides.items() if k != (provider, model.lower())
        }


def get(model: str, provider: Optional[str] = None) -> Optional[Price]:
    """The override that prices ``model`` at ``provider``, or None."""
    table = STATE.price_overrides
    name = model.lower()
    if provider is not None and (provider, name) in table:
        return table[(provider, name)]
    return table.get((None, name))


def lookup(provider: str, model: str, request_model: Optional[str]) -> Optional[Price]:
    """The override for a record: by the reported model, then by the requested one."""
    if not STATE.price_overrides:
        return None
    found = get(model, provider)
    if found is None and request_model:
        found = get(request_model, provider)
    return found


def set_fee(fee: str, provider: Optional[str] = None, *, unit_price: Number) -> Decimal:
    """Price one use of ``fee`` (at ``provider``, or at any provider when None) at ``unit_price`` USD.

    ``fee`` is one of a record's fee names (``web_search``, ``web_fetch``, ``file_search``,
    ``code_execution``, ``image_generation``). The price wins over genai-prices and the overlay;
    a record it priced names ``prices.set_fee`` in ``price_source``. Anthropic bills code execution
    per container-hour, not per call: your own share of those hours per call prices it::

        usagetap.prices.set_fee("code_execution", "anthropic", unit_price="0.004")
    """
    from ._fees import FEES

    if not isinstance(fee, str):
        raise TypeError(f"prices.set_fee(): fee must be a string, got {type(fee).__name__}")
    if fee not in FEES:
        raise ValueError(f"prices.set_fee(): fee must be one of {', '.join(FEES)}, got {fee!r}")
    if provider is not None and (not isinstance(provider, str) or not provider):
        raise TypeError("prices.set_fee(): provider must be a non-empty string or None")
    price = as_decimal(unit_price, "unit_price")
    with _lock:
        STATE.fee_overrides = {**STATE.fee_overrides, (provider, fee): price}
    return price


def unset_fee(fee: str, provider: Optional[str] = None) -> None:
    """Remove a fee price made with :func:`set_fee` (the same ``fee`` and ``provider``)."""
    with _lock:
        STATE.fee_overrides = {k: v for k, v in STATE.fee_overrides.items() if k != (provider, fee)}


def fee_price(fee: str, provider: str) -> Optional[Decimal]:
    """The user's price of one use of ``fee`` at ``provider`` (else at any provider), or None."""
    table = STATE.fee_overrides
    if not table:
        return None
    found = table.get((provider, fee))
    return table.get((None, fee)) if found is None else found


def markup(multiplier: Multiplier, *, customer: Optional[str] = None) -> None:
    """Record ``billed_cost = cost * multiplier`` on every priced record (or on ``customer``'s).

    ``multiplier`` is a number (1.3 for 30 % on top; below 1 for a discount),
    a function of the :class:`~usagetap.UsageRecord` returning one (or None
    for no markup), or None to remove the markup. A customer's own markup
    wins over the general one. ``cost`` stays the provider's price::

        usagetap.prices.markup(1.3)                                  # 30 % on top for everyone
        usagetap.prices.markup(1.0, customer="org_partner")          # at cost for a partner
        usagetap.prices.markup(lambda r: 2 if r.model.startswith("o3") else None)
    """
    value: Union[Decimal, Callable[[UsageRecord], Optional[Number]], None]
    if multiplier is None or callable(multiplier):
        value = multiplier
    else:
        value = as_decimal(multiplier, "markup multiplier")
    with _lock:
        table = {k: v for k, v in STATE.markups.items() if k != customer}
        if value is not None:
            table[customer] = value
        STATE.markups = table


def billed(record: UsageRecord) -> Optional[Decimal]:
    """``record.cost`` with the markup that applies to it, or None (no markup, or no cost)."""
    table: Mapping[Optional[str], Any] = STATE.markups
    if record.cost is None or not table:
        return None
    rule = table.get(record.customer) if record.customer is not None else None
    if rule is None:
        rule = table.get(None)
    if rule is None:
        return None
    if callable(rule):
        result = rule(record)
        if result is None:
            return None
        rule = as_decimal(result, "markup multiplier")
    return record.cost * rule


def clear() -> None:
    """Remove every override (models and fees) and markup."""
    with _lock:
        STATE.price_overrides = {}
        STATE.fee_overrides = {}
        STATE.markups = {}


def overrides() -> dict[tuple[Optional[str], str], Price]:
    """A copy of the overrides, keyed by ``(provider, model)``."""
    return dict(STATE.price_overrides)


on_reset(clear, CLEAR)
