"""Usage -> cost, from the genai-prices table bundled with the installed package (no network I/O).

Pricing runs on the delivery worker, not on the caller's thread: genai-prices
is imported on first use and a price costs about 100 µs, so results are memoised.
Token counts vary from call to call, so for a model whose prices have no
tiers (most) the cost is linear in the counts: genai-prices prices one
million tokens of each kind once, and a record's cost is worked out from
those rates in the same Decimal arithmetic (``price * count / per``), checked
against genai-prices' own result for the first records of each kind.
An unknown model prices as ``None`` (never 0) with one warning per model.

What is priced, where the installed genai-prices has it: input (long-context
tiers follow from the total input), cache reads, cache writes with the 5-minute
/ 1-hour split (dimensions ``cache_write_5m_tokens`` / ``cache_write_1h_tokens``; 1-hour writes
of a model with no 1-hour price in genai-prices or the overlay are not priced), reasoning, audio,
image and video tokens. A call is priced as it was served (batch,
``service_tier``, ``speed``, ``inference_geo``: :func:`served_conditions`): by
genai-prices' price variant for it, else by an entry of
:mod:`usagetap.pricing_overlay`, else not at all (``cost=None``, ``price_issue``
says why). Non-token fees (``record.fees``) are line items of ``cost``
(``cost_items``), each priced by :func:`usagetap.prices.set_fee`, else genai-prices or the
overlay, else ``cost=None``.
Older genai-prices without some usage keys price them at the base rates, saying
so once; a split genai-prices refuses (audio input with cache reads but no cached-audio
count) is not priced. User overrides (:mod:`usagetap.prices`) win over the table; a markup is
recorded as ``billed_cost``. ``price_source`` names what priced a record.

A provider that is a host genai-prices does not know (a gateway, a proxy) is
priced at the rates of the model's vendor when that vendor is one whose SDK
usagetap meters (OpenAI, Anthropic): gateways serve those models under their
own host. Other models there have no price (``cost=None``).
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import inspect
import warnings
from collections.abc import Mapping
from datetime import date, datetime, timezone
from decimal import Decimal
from operator import itemgetter
from typing import TYPE_CHECKING, Any, Optional

from . import prices, pricing_overlay
from ._fees import fees_of
from ._forksafe import module_lock
from ._log import INFO, WARNING, log_once
from ._record import Scalar, UsageRecord

if TYPE_CHECKING:
    from .prices import Price

__all__ = [
    "SELF_HOSTED",
    "context_of",
    "price_record",
    "price_version",
    "pricing_provider",
    "served_conditions",
    "usage_of",
]

# usagetap provider name -> genai-prices provider id
_PROVIDER_IDS: dict[str, str] = {
    "openai": "openai",
    "azure": "azure",
    "anthropic": "anthropic",
    "bedrock": "aws",
    "vertex": "google",
    "mistral": "mistral",
    "google": "google",
}

# self-hosted servers (Ollama, LM Studio, vLLM, ...): their tokens cost what the user says
# (usagetap.prices.set), never a vendor's list price
SELF_HOSTED = frozenset({"ollama", "lmstudio", "vllm", "llamacpp", "sglang"})

# vendors whose rates price their models at a host genai-prices does not know (the SDK families')
_GATEWAY_VENDORS = frozenset({"openai", "anthropic"})

# record dimension -> genai-prices usage key
_DIMENSION_USAGE: dict[str, str] = {
    "cache_write_5m_tokens": "cache_write_5m_tokens",
    "cache_write_1h_tokens": "cache_write_1h_tokens",
    "input_audio_tokens": "input_audio_tokens",
    "output_audio_tokens": "output_audio_tokens",
    "cache_audio_read_tokens": "cache_audio_read_tokens",
    "input_image_tokens": "input_image_tokens",
    "cache_image_read_tokens": "cache_image_read_tokens",
    "output_image_tokens": "output_image_tokens",
    "input_video_tokens": "input_video_tokens",
    "cache_video_read_tokens": "cache_video_read_tokens",
    "output_video_tokens": "output_video_tokens",
}
# usage keys a genai-prices without them prices at the base rate anyway (no warning)
_QUIET_KEYS = frozenset({"output_reasoning_tokens"})

UsageItems = tuple[tuple[str, int], ...]
ContextItems = tuple[tuple[str, str], ...]

_lock = module_lock(globals(), "_lock")


def pricing_provider(provider: str) -> tuple[Optional[str], Optional[str]]:
    """Return ``(provider_id, provider_api_url)`` for genai-prices; exactly one is set."""
    known = _PROVIDER_IDS.get(provider)
    if known is not None:
        return known, None
    if provider in _genai_provider_ids():
        return provider, None
    return None, f"https://{provider}"


@functools.lru_cache(maxsize=1)
def _genai_provider_ids() -> frozenset[str]:
    """The provider ids of the installed genai-prices table (``groq``, ``x-ai``, ``openrouter``, ...)."""
    try:
        from genai_prices.data import providers
    except ImportError:  # pragma: no cover - a genai-prices without its data module
        return frozenset()
    return frozenset(provider.id for provider in providers)


@functools.lru_cache(maxsize=1)
def price_version() -> str:
    """The version of the price table in use, stored on every priced record."""
    import genai_prices

    version = str(getattr(genai_prices, "__version__", "unknown"))
    try:
        from genai_prices import data_snapshot

        snapshot = data_snapshot.get_snapshot()
        if getattr(snapshot, "from_auto_update", False):
            return f"genai-prices {version} (updated {snapshot.timestamp.isoformat()})"
    except Exception:  # pragma: no cover - older genai-prices without snapshots
        pass
    return f"genai-prices {version}"


@functools.cache
def supports_usage_key(key: str) -> bool:
    """Whether the installed genai-prices ``Usage`` takes ``key``."""
    from genai_prices import Usage

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            Usage(**{key: 0})
    except (TypeError, ValueError, Warning):
        return False
    return True


@functools.lru_cache(maxsize=1)
def supports_price_context() -> bool:
    """Whether the installed genai-prices selects batch / service-tier prices (``price_context``)."""
    from genai_prices import calc_price

    try:
        return "price_context" in inspect.signature(calc_price).parameters
    except (TypeError, ValueError):  # pragma: no cover
        return False


def usage_of(record: UsageRecord) -> UsageItems:
    """The record's usage as genai-prices usage keys, limited to those the installed version knows."""
    items = [("input_tokens", record.input_tokens), ("output_tokens", record.output_tokens)]
    if record.cache_read_tokens:
        items.append(("cache_read_tokens", record.cache_read_tokens))
    if record.cache_write_tokens:
        items.append(("cache_write_tokens", record.cache_write_tokens))
    if record.reasoning_tokens:
        items.append(("output_reasoning_tokens", record.reasoning_tokens))
    dimensions = record.dimensions
    if dimensions:
        for dimension, key in _DIMENSION_USAGE.items():
            value = dimensions.get(dimension)
            if type(value) is int and value > 0:
                items.append((key, value))
    supported = []
    for key, value in items:
        if supports_usage_key(key):
            supported.append((key, value))
        elif key not in _QUIET_KEYS:
            log_once(
                WARNING,
                f"unsupported-usage:{key}",
                "usagetap: the installed genai-prices has no %s prices; those are priced at the base "
                "rate (upgrade genai-prices for exact costs)",
                key,
            )
    return tuple(supported)


def context_of(record: UsageRecord) -> ContextItems:
    """How the call was served, as genai-prices ``price_context`` items: batch processing, service
    tier, speed and inference geography, the standard ones left out (see :func:`served_conditions`)."""
    items = served_conditions(record.dimensions)
    if items and not supports_price_context():
        log_once(
            WARNING,
            "unsupported-price-context",
            "usagetap: the installed genai-prices has no batch or service-tier prices; such calls are "
            "priced at standard rates (upgrade genai-prices for exact costs)",
        )
        return ()
    return items


# values that mean "served at the standard price"
_STANDARD: dict[str, frozenset[str]] = {
    "service_tier": frozenset({"default", "auto", "standard", "on_demand"}),
    "speed": frozenset({"standard"}),
    "inference_geo": frozenset({"global", "not_available"}),
}


def served_conditions(dimensions: Mapping[str, Scalar]) -> ContextItems:
    """The non-standard conditions a call was served under, from its response's dimensions:
    ``processing=batch``, ``service_tier``, ``speed``, ``inference_geo`` (lower case)."""
    tier = dimensions.get("service_tier")
    items: list[tuple[str, str]] = []
    if dimensions.get("batch") is True or tier == "batch":
        items.append(("processing", "batch"))
    for key, standard in _STANDARD.items():
        value = dimensions.get(key)
        if isinstance(value, str) and value and value != "batch" and value.lower() not in standard:
            items.append((key, value.lower()))
    return tuple(items)


def price_record(record: UsageRecord) -> UsageRecord:
    """``record`` priced (``cost``, ``cost_items``, ``fees``, ``price_version``, ``price_source``,
    ``price_issue``, ``billed_cost``): a new frozen record, or ``record`` itself when it was priced
    already. ``cost`` is None when the model, or a part of the call, has no price."""
    if record.price_version is not None:
        return record
    fees = dict(record.fees) or fees_of(record.dimensions)
    priced = dataclasses.replace(record, fees=fees, billed_cost=None, **_priced_fields(record, fees))
    billed = prices.billed(priced)
    return priced if billed is None else dataclasses.replace(priced, billed_cost=billed)


def _priced_fields(record: UsageRecord, fees: Mapping[str, Scalar]) -> dict[str, Any]:
    """``cost``, ``cost_items``, ``price_version``, ``price_source`` and ``price_issue`` of a record."""
    usage = usage_of(record)
    provider, model = record.provider, record.model
    override = prices.lookup(provider, model, record.request_model)
    if override is not None:
        tokens: Optional[Decimal] = _price_override(override, usage)
        return _with_fees(record, fees, tokens, override.version, ("prices.set",), None, None)
    version = price_version()
    if record.dimensions.get("prepaid") is True:  # provisioned throughput: paid up front, not per token
        return _unpriced(version, "provisioned throughput is prepaid, not priced per token")
    if provider in SELF_HOSTED:
        log_once(
            INFO,
            f"self-hosted:{provider}",
            "usagetap: %s is self-hosted: its records carry exact tokens and cost=None "
            "(set a price with usagetap.prices.set)",
            provider,
        )
        return _unpriced(version, f"{provider} is self-hosted: set a price with usagetap.prices.set")
    day: date = record.timestamp.date()
    if _priced_by_time_of_day(provider, model):  # DeepSeek's off-peak hours
        day = record.timestamp.astimezone(timezone.utc).replace(second=0, microsecond=0)
    served = context_of(record)
    try:
        plan = _plan(provider, model, served, tuple(k for k, _ in usage), day)
    except LookupError:
        plan = None
    if plan is None:  # an unknown model: _price logs it
        tokens = _price(provider, model, usage, (), day)
        issue = None if tokens is not None else f"no price for model {model!r} at {provider!r}"
        return _with_fees(record, fees, tokens, version, (version,), None, issue)
    if plan.issue is not None:
        log_once(WARNING, f"unpriced:{provider}:{model}:{plan.issue}", "usagetap: %s; cost=None", plan.issue)
        return _unpriced(version, plan.issue)
    if plan.overlay:
        tokens = _overlay_price(provider, model, usage, plan, day)
    elif isinstance(day, datetime):
        tokens = _price(provider, model, usage, plan.context, day)
    else:
        tokens = _cost(provider, model, usage, plan.context, day)
    source = (version, *(f"overlay:{entry.id}" for entry in plan.overlay))
    parts = ", ".join(k for k, _ in usage if k not in _BASE_KEYS)
    issue = None if tokens is not None else f"no price for the usage ({parts}) of {model!r} at {provider!r}"
    return _with_fees(record, fees, tokens, version, source, plan, issue)


def _unpriced(version: str, issue: str) -> dict[str, Any]:
    return {
        "cost": None,
        "cost_items": {},
        "price_version": version,
        "price_source": None,
        "price_issue": issue,
    }


def _with_fees(
    record: UsageRecord,
    fees: Mapping[str, Scalar],
    tokens: Optional[Decimal],
    version: str,
    source: tuple[str, ...],
    plan: Optional[_Plan],
    issue: Optional[str],
) -> dict[str, Any]:
    """The priced fields of ``tokens`` plus each fee as a line item; cost None when a fee has no price."""
    if tokens is None:
        return _unpriced(version, issue or f"no price for {record.model!r} at {record.provider!r}")
    items: dict[str, Scalar] = {}
    total = tokens
    sources = list(source)
    for fee, quantity in fees.items():
        unit, where = _fee_unit(record, fee, plan)
        if unit is None or type(quantity) is not int:
            issue = _fee_issue(record, fee, plan)
            log_once(
                WARNING,
                f"unpriced-fee:{record.provider}:{record.model}:{fee}",
                "usagetap: %s; cost=None",
                issue,
            )
            return {**_unpriced(version, issue), "cost_items": {"tokens": str(tokens)}}
        items[fee] = str(unit * quantity)
        total += unit * quantity
        if where not in sources:
            sources.append(where)
    if items:
        items = {"tokens": str(tokens), **items}
    return {
        "cost": total,
        "cost_items": items,
        "price_version": version,
        "price_source": " + ".join(sources),
        "price_issue": None,
    }


@dataclasses.dataclass(frozen=True)
class _Plan:
    """How to price a served call: the ``price_context`` genai-prices prices, the overlay entries
    that price the rest (conditions and token kinds it lacks), or why it cannot be priced."""

    provider_id: str
    context: ContextItems
    overlay: tuple[pricing_overlay.Entry, ...] = ()
    issue: Optional[str] = None


_ZERO: UsageItems = (("input_tokens", 0),)


@functools.lru_cache(maxsize=1024)
def _plan(provider: str, model: str, served: ContextItems, keys: tuple[str, ...], day: date) -> _Plan:
    """The plan for ``model`` served under ``served``; LookupError when genai-prices has no such model."""
    calculation = _calculate(provider, model, _ZERO, (), day)
    provider_id = str(calculation.provider.id)
    moment = _moment(day)
    variants = getattr(calculation.model, "price_variants", None) or ()
    context: list[tuple[str, str]] = []
    overlay: list[pricing_overlay.Entry] = []
    for key, value in served:
        if any(
            variant.when == {key: value} and (variant.constraint is None or variant.constraint.active(moment))
            for variant in variants
        ):
            context.append((key, value))
            continue
        entry = pricing_overlay.find(provider_id, model, f"{key}={value}", _day(day))
        if entry is None or entry.multiplier is None:
            return _Plan(provider_id, (), issue=f"no price for {key}={value} of {model!r} at {provider!r}")
        overlay.append(entry)
    if (
        "cache_write_1h_tokens" in keys
        and getattr(calculation.model_price, "cache_write_1h_mtok", None) is None
    ):
        entry = pricing_overlay.find(provider_id, model, "cache_write_1h", _day(day))
        if entry is None or entry.multiplier is None:  # genai-prices would price them as 5-minute writes
            return _Plan(
                provider_id, (), issue=f"no price for 1-hour cache writes of {model!r} at {provider!r}"
            )
        overlay.insert(0, entry)
    return _Plan(provider_id, tuple(context), tuple(overlay))


def _day(day: date) -> date:
    return day.date() if isinstance(day, datetime) else day


def _moment(day: date) -> datetime:
    """``day``'s noon UTC, or ``day`` itself when it is a datetime (what genai-prices is asked at)."""
    if isinstance(day, datetime):
        return day
    return datetime(day.year, day.month, day.day, 12, tzinfo=timezone.utc)


def _scaled(price: Any, factor: Decimal) -> Any:
    """A genai-prices price (a Decimal or tiered prices) times ``factor``."""
    from genai_prices.types import Tier, TieredPrices

    if isinstance(price, TieredPrices):
        tiers = [Tier(start=t.start, price=t.price * factor) for t in price.tiers]
        return TieredPrices(base=price.base * factor, tiers=tiers)
    return price * factor


@functools.lru_cache(maxsize=4096)
def _overlay_price(provider: str, model: str, usage: UsageItems, plan: _Plan, day: date) -> Optional[Decimal]:
    """The token cost of ``usage`` at genai-prices' rates for ``plan.context``, with the overlay applied."""
    from genai_prices import Usage

    model_price = copy.copy(_calculate(provider, model, _ZERO, plan.context, day).model_price)
    prices_of = vars(model_price)
    for entry in plan.overlay:
        factor = entry.multiplier
        assert factor is not None
        if entry.prices == "cache_write_1h":
            prices_of["cache_write_1h_mtok"] = _scaled(prices_of["input_mtok"], factor)
            continue
        for name, price in list(prices_of.items()):
            if name.endswith("_mtok") and price is not None:
                prices_of[name] = _scaled(price, factor)
    try:
        return Decimal(model_price.calc_price(Usage(**dict(usage)))["total_price"])
    except ValueError:
        return None


# fee -> the genai-prices price of it (per thousand uses)
_GENAI_FEES = {"web_search": "web_searches_kcount", "file_search": "storage_searches_kcount"}
# boolean dimensions an overlay fee price may be conditional on (``fee:<name>?<dimension>``)
_FEE_CONDITIONS = ("code_execution_free",)


def _fee_unit(record: UsageRecord, fee: str, plan: Optional[_Plan]) -> tuple[Optional[Decimal], str]:
    """The price of one use of ``fee`` on ``record`` and what it came from: the user's
    (``prices.set_fee``), else genai-prices' or the overlay's."""
    own = prices.fee_price(fee, record.provider)
    if own is not None:
        return own, "prices.set_fee"
    dimensions = record.dimensions
    conditions = tuple(name for name in _FEE_CONDITIONS if dimensions.get(name) is True)
    return _fee_price(record.provider, record.model, fee, plan, record.timestamp.date(), conditions)


def _fee_issue(record: UsageRecord, fee: str, plan: Optional[_Plan]) -> str:
    """Why ``fee`` has no price on ``record``; for a fee billed otherwise than per use, how to price it."""
    issue = f"no price for the {fee} fee of {record.model!r} at {record.provider!r}"
    provider_id = plan.provider_id if plan is not None else pricing_provider(record.provider)[0]
    billed = pricing_overlay.NOT_PER_USE.get((provider_id or "", fee))
    if billed is None:
        return issue
    return (
        f"{issue}: {billed}; price a use with "
        f"usagetap.prices.set_fee({fee!r}, {record.provider!r}, unit_price=...)"
    )


@functools.lru_cache(maxsize=1024)
def _fee_price(
    provider: str, model: str, fee: str, plan: Optional[_Plan], day: date, conditions: tuple[str, ...] = ()
) -> tuple[Optional[Decimal], str]:
    """The price of one use of ``fee`` and the table it came from: an overlay entry for one of
    ``conditions`` (true on the record), else genai-prices, else the overlay."""
    provider_id = provider if plan is None else plan.provider_id
    try:
        calculation = _calculate(provider, model, _ZERO, () if plan is None else plan.context, day)
        provider_id = str(calculation.provider.id)
        per_thousand = getattr(calculation.model_price, _GENAI_FEES.get(fee, ""), None)
    except (LookupError, ValueError):
        per_thousand = None
    for condition in conditions:  # a condition genai-prices cannot express
        entry = pricing_overlay.find(provider_id, model, f"fee:{fee}?{condition}", day)
        if entry is not None and entry.unit_price is not None:
            return entry.unit_price, f"overlay:{entry.id}"
    if isinstance(per_thousand, Decimal):
        return per_thousand / 1000, price_version()
    entry = pricing_overlay.find(provider_id, model, f"fee:{fee}", day)
    if entry is not None and entry.unit_price is not None:
        return entry.unit_price, f"overlay:{entry.id}"
    return None, ""


@functools.lru_cache(maxsize=1024)
def _price_override(price: Price, usage: UsageItems) -> Decimal:
    from genai_prices import Usage
    from genai_prices.types import ModelPrice

    result = ModelPrice(**price.genai_prices_kwargs()).calc_price(Usage(**dict(usage)))
    return Decimal(result["total_price"])


_BASE_KEYS = frozenset({"input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens"})

# usage keys the linear path takes, with the key each is a part of (usagetap's convention)
_PART_OF: dict[str, Optional[str]] = {
    "input_tokens": None,
    "output_tokens": None,
    "cache_read_tokens": "input_tokens",
    "cache_write_tokens": "input_tokens",
    "output_reasoning_tokens": "output_tokens",
}
_PER = 1_000_000  # tokens per probe: genai-prices' per-million rates come back as they are
_CHECKS = 4  # records of each kind priced both ways before the linear path is trusted alone

LinearKey = tuple[str, str, tuple[str, ...], ContextItems, date]


class _Linear:
    """A cost linear in token counts: ``base`` (per call) plus ``rate * count / _PER`` per kind."""

    __slots__ = ("_parts", "_terms", "base", "checks")

    def __init__(self, base: Decimal, rates: tuple[tuple[str, Optional[str], Decimal], ...]) -> None:
        self.base = base
        self.checks = 0
        self._parts = tuple((key, parent) for key, parent, _ in rates if parent is not None)
        self._terms = tuple(
            (key, rate) for key, parent, rate in rates if parent is not None or _PART_OF[key] is None
        )

    def cost(self, usage: UsageItems) -> Optional[Decimal]:
        """The cost of ``usage``, or None when a part exceeds its whole (genai-prices decides then).

        A part whose ``parent`` is None is priced with its whole (not priced on its own).
        """
        own = dict(usage)
        for key, parent in self._parts:  # a part is never a whole: own[key] is still its count
            own[parent] -= own[key]
        total = self.base
        for key, rate in self._terms:
            count = own[key]
            if count < 0:
                return None
            total += rate * count / _PER
        return total


_linear: dict[LinearKey, Optional[_Linear]] = {}


def _cost(
    provider: str, model: str, usage: UsageItems, context: ContextItems, day: date
) -> Optional[Decimal]:
    """``_price``, through the linear rates of the model when its prices have no tiers."""
    key = (provider, model, tuple(map(itemgetter(0), usage)), context, day)
    try:
        linear = _linear[key]
    except KeyError:
        linear = _linear[key] = _fit(provider, model, key[2], context, day)
    cost = None if linear is None else linear.cost(usage)
    if linear is None or cost is None:
        return _price(provider, model, usage, context, day)
    if linear.checks < _CHECKS:
        linear.checks += 1
        exact = _price(provider, model, usage, context, day)
        if exact is None or exact != cost or str(exact) != str(cost):
            _linear[key] = None
            return exact
    return cost


def _fit(
    provider: str, model: str, keys: tuple[str, ...], context: ContextItems, day: date
) -> Optional[_Linear]:
    """The linear rates of a model for these usage keys, or None (tiers, unknown model, other keys)."""
    if any(k not in _PART_OF for k in keys) or any(_PART_OF[k] not in (None, *keys) for k in keys):
        return None
    try:
        zero = dict.fromkeys(keys, 0)
        calculation = _calculate(provider, model, tuple(zero.items()), context, day)
        prices = vars(calculation.model_price).values()
        if not all(p is None or isinstance(p, Decimal) for p in prices):  # tiered or conditional prices
            return None
        base = Decimal(calculation.total_price)
        rates = []
        for k in keys:
            probe = dict(zero)
            probe[k] = _PER
            parent = _PART_OF[k]
            if parent is not None:
                probe[parent] = _PER
            probed = _calculate(provider, model, tuple(probe.items()), context, day)
            rates.append((k, parent, Decimal(probed.total_price) - base))
        return _place_parts(provider, model, keys, context, day, base, rates)
    except Exception:  # an unknown model, a refused usage, an older genai-prices: the exact path decides
        return None


def _place_parts(
    provider: str,
    model: str,
    keys: tuple[str, ...],
    context: ContextItems,
    day: date,
    base: Decimal,
    rates: list[tuple[str, Optional[str], Decimal]],
) -> Optional[_Linear]:
    """Whether each part is priced on its own or with its whole, as genai-prices' own results show.

    Both give the same amount when a part costs what its whole does, but not the same
    Decimal (``2.000000`` against ``2``): one token of each part, priced by genai-prices,
    tells them apart. None when neither form reproduces genai-prices exactly.
    """
    rate_of = {k: rate for k, _, rate in rates}
    for i, (k, parent, rate) in enumerate(rates):
        if parent is None:
            continue
        probe = dict.fromkeys(keys, 0)
        probe[parent], probe[k] = _PER, 1
        usage = tuple(probe.items())
        expected = str(_calculate(provider, model, usage, context, day).total_price)
        forms = [parent, None] if rate == rate_of[parent] else [parent]
        for form in forms:
            rates[i] = (k, form, rate)
            if str(_Linear(base, tuple(rates)).cost(usage)) == expected:
                break
        else:
            return None
    return _Linear(base, tuple(rates))


@functools.lru_cache(maxsize=1024)
def _priced_by_time_of_day(provider: str, model: str) -> bool:
    """Whether genai-prices prices ``model`` at ``provider`` by the time of day (DeepSeek's off-peak
    discount): its records are priced at their own minute, not at their day's noon."""
    if provider in SELF_HOSTED:
        return False
    try:
        from genai_prices.types import TimeOfDateConstraint

        calculation = _calculate(
            provider, model, (("input_tokens", 0),), (), datetime.now(timezone.utc).date()
        )
    except Exception:  # an unknown model, an older genai-prices: priced by day
        return False
    prices = getattr(calculation.model, "prices", None)
    return isinstance(prices, list) and any(
        isinstance(getattr(price, "constraint", None), TimeOfDateConstraint) for price in prices
    )


def _calculate(provider: str, model: str, usage: UsageItems, context: ContextItems, day: date) -> Any:
    """genai-prices' ``calc_price`` for a usage (its PriceCalculation), at ``day``'s noon UTC, or at
    ``day`` itself when it is a datetime."""
    from genai_prices import Usage, calc_price

    provider_id, provider_api_url = pricing_provider(provider)
    moment = _moment(day)
    kwargs: dict[str, Any] = {"genai_request_timestamp": moment}
    if provider_id is not None:
        kwargs["provider_id"] = provider_id
    else:
        kwargs["provider_api_url"] = provider_api_url
    if context:
        kwargs["price_context"] = dict(context)
    with _lock:
        try:
            return calc_price(Usage(**dict(usage)), model, **kwargs)
        except LookupError:
            if provider_id is not None:
                raise
        del kwargs["provider_api_url"]
        found = calc_price(Usage(**dict(usage)), model, **kwargs)  # the model's vendor, found by its name
        if found.provider.id not in _GATEWAY_VENDORS:
            raise LookupError(f"no price for {model!r} at {provider!r}")
        return found


@functools.lru_cache(maxsize=8192)
def _price(
    provider: str, model: str, usage: UsageItems, context: ContextItems, day: date
) -> Optional[Decimal]:
    try:
        try:
            result = _calculate(provider, model, usage, context, day)
        except ValueError:
            base = tuple((k, v) for k, v in usage if k in _BASE_KEYS)
            if any(k not in _BASE_KEYS | _QUIET_KEYS for k, _ in usage):  # without them: a list price
                raise
            log_once(
                WARNING,
                f"inconsistent-usage:{provider}:{model}",
                "usagetap: genai-prices refused the detailed usage of a %s call (%s); priced without it",
                model,
                ", ".join(k for k, _ in usage if k not in _BASE_KEYS),
            )
            result = _calculate(provider, model, base, context, day)
    except LookupError:
        log_once(
            WARNING,
            f"unknown-model:{provider}:{model}",
            "usagetap: no price for model %r at provider %r; its records carry cost=None "
            "(set one with usagetap.prices.set)",
            model,
            provider,
        )
        return None
    except ValueError as exc:
        log_once(
            WARNING,
            f"unpriceable:{provider}:{model}",
            "usagetap: genai-prices could not price a %s call (%s); its record carries cost=None",
            model,
            exc,
        )
        return None
    return Decimal(result.total_price)
