"""The usage record: one per billable provider response, and its validation.

Token convention (OpenTelemetry GenAI): ``input_tokens`` counts *all* input
tokens, cache reads and cache writes included; ``output_tokens`` counts all
output tokens, reasoning included. ``cache_read_tokens``, ``cache_write_tokens``
and ``reasoning_tokens`` are the parts, so they never exceed their total.
Every count is an int from 0 to :data:`MAX_TOKENS`.
"""

from __future__ import annotations

import operator
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from datetime import datetime, timezone
from decimal import Decimal
from typing import Any, ClassVar, Optional, Union, get_args, get_origin, get_type_hints

from .errors import InvalidRecord

__all__ = [
    "DECIMAL_FIELDS",
    "FIELDS",
    "FIELD_KINDS",
    "MAPPING_FIELDS",
    "MAX_DIMENSIONS",
    "MAX_DIMENSION_KEY",
    "MAX_DIMENSION_VALUE",
    "MAX_TOKENS",
    "TIME_FIELDS",
    "TOKEN_FIELDS",
    "Scalar",
    "UsageRecord",
    "cap_dimensions",
    "check_dimensions",
    "derive_event_id",
    "field_values",
    "new_event_id",
    "validate_dimensions",
]

Scalar = Union[str, int, float, bool]

TOKEN_FIELDS = (
    "input_tokens",
    "output_tokens",
    "cache_read_tokens",
    "cache_write_tokens",
    "reasoning_tokens",
)

MAX_DIMENSIONS = 50  # per record, from the user (wrap, scopes, resolvers, record()); the first ones kept
MAX_DIMENSION_KEY = 64  # characters; a longer name is cut to this
MAX_DIMENSION_VALUE = 1000  # characters of a string value; a longer one is cut to this
MAX_TOKENS = 10**12
"""The largest count a record takes: a thousand times any context window, below the 2**53 that JSON
numbers hold exactly, and low enough that a ledger sums millions of such records within 64 bits."""

_STATUSES = frozenset({"ok", "partial"})
_NAMESPACE = bytes.fromhex("6f1c8f2e3b5a5d0c9a442e7d1b9c0a11")  # a UUID's bytes


def _uuid_text(raw: bytes, version: int) -> str:
    data = bytearray(raw[:16])
    data[6] = (data[6] & 0x0F) | (version << 4)
    data[8] = (data[8] & 0x3F) | 0x80
    h = data.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def new_event_id() -> str:
    """A fresh random UUID (version 4), for responses the provider gave no id."""
    return _uuid_text(os.urandom(16), 4)


def derive_event_id(provider: str, operation: str, response_id: str) -> str:
    """A stable UUID (version 5) from the provider's response id: one response always maps to one id.

    Same value as ``uuid.uuid5(namespace, ...)``, computed without building ``UUID`` objects (hot path).
    """
    import hashlib  # imported here: its OpenSSL set-up is a tenth of usagetap's import time

    name = f"{provider}\x1f{operation}\x1f{response_id}".encode()
    return _uuid_text(hashlib.sha1(_NAMESPACE + name).digest(), 5)


def validate_dimensions(dimensions: Mapping[str, Any], *, where: str = "dimensions") -> dict[str, Scalar]:
    """Return a copy of ``dimensions``, capped (:func:`cap_dimensions`), or raise ``TypeError``
    naming the first bad key."""
    out = check_dimensions(dimensions, where=where)
    over = len(out) > MAX_DIMENSIONS or any(
        len(key) > MAX_DIMENSION_KEY or (type(value) is str and len(value) > MAX_DIMENSION_VALUE)
        for key, value in out.items()
    )
    return cap_dimensions(out) if over else out


def check_dimensions(dimensions: Mapping[str, Any], *, where: str = "dimensions") -> dict[str, Scalar]:
    """Return a copy of ``dimensions`` (not capped) or raise ``TypeError`` naming the first bad key."""
    out: dict[str, Scalar] = {}
    for key, value in dimensions.items():
        if not isinstance(key, str) or not key:
            raise TypeError(f"{where}: dimension names must be non-empty strings, got {_short(key)}")
        if not isinstance(value, (str, int, float, bool)):
            kind = type(value).__name__
            raise TypeError(f"{where}: dimension {_short(key)} must be str, int, float or bool, got {kind}")
        out[key] = value
    return out


def cap_dimensions(dimensions: Mapping[str, Scalar]) -> dict[str, Scalar]:
    """``dimensions`` within the caps: the first :data:`MAX_DIMENSIONS` names, each cut to
    :data:`MAX_DIMENSION_KEY` characters (a name that then repeats one kept is dropped), string
    values cut to :data:`MAX_DIMENSION_VALUE` characters. Each cut counts in ``stats()["dimensions_capped"]``.
    """
    from . import _stats

    out: dict[str, Scalar] = {}
    cut = 0
    for name, value in dimensions.items():
        key = name[:MAX_DIMENSION_KEY]
        if len(out) >= MAX_DIMENSIONS or (key != name and key in out):
            cut += 1
            continue
        cut += key != name
        if isinstance(value, str) and len(value) > MAX_DIMENSION_VALUE:
            out[key] = value[:MAX_DIMENSION_VALUE]
            cut += 1
        else:
            out[key] = value
    if cut:
        _stats.incr("dimensions_capped", cut)
    return out


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


@dataclass(frozen=True)
class UsageRecord:
    """One billable provider response (or one stream, when it ends). Frozen: a priced or changed
    record is a copy (``dataclasses.replace``).

    ``cost`` is Decimal USD from the pricing table, or ``None`` when the model
    is unknown (never 0 for an unknown model) or a part of the call has no price
    (``price_issue`` says which). ``fees`` counts the call's non-token fees (``web_search``,
    ``web_fetch``, ``file_search``, ``code_execution``, ``image_generation``);
    ``cost_items`` holds the line items of ``cost`` (``tokens`` and one per fee, decimal
    strings); ``price_source`` names the tables that priced it (genai-prices, overlay
    entries, ``prices.set``). ``status`` is ``"ok"``, or
    ``"partial"`` when a stream ended before the provider reported usage or
    the usage it reported had to be fitted (the ``usage_issue`` dimension says how).
    """

    MAX_TOKENS: ClassVar[int] = MAX_TOKENS  # a count above it is no real call's

    event_id: str
    timestamp: datetime
    customer: Optional[str]
    provider: str
    model: str
    request_model: Optional[str]
    operation: str
    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    reasoning_tokens: int = 0
    cost: Optional[Decimal] = None
    dimensions: dict[str, Scalar] = field(default_factory=dict)
    status: str = "ok"
    response_id: Optional[str] = None
    run_id: Optional[str] = None
    parent_run_id: Optional[str] = None
    price_version: Optional[str] = None
    billed_cost: Optional[Decimal] = None
    # pricing (issue 21): fee quantities, the line items of ``cost``, where its prices came from
    fees: dict[str, Scalar] = field(default_factory=dict)
    cost_items: dict[str, Scalar] = field(default_factory=dict)
    price_source: Optional[str] = None
    price_issue: Optional[str] = None

    @property
    def total_tokens(self) -> int:
        """``input_tokens + output_tokens`` (cache and reasoning tokens are parts of these)."""
        return self.input_tokens + self.output_tokens

    @property
    def uncached_input_tokens(self) -> int:
        """Input tokens that were neither read from nor written to a cache."""
        return self.input_tokens - self.cache_read_tokens - self.cache_write_tokens

    def validate(self) -> UsageRecord:
        """Raise :class:`usagetap.InvalidRecord` unless every field is well-formed; return self."""
        for name in TOKEN_FIELDS:
            value = getattr(self, name)
            if type(value) is not int:
                raise InvalidRecord(f"{name} must be an int, got {type(value).__name__} {value!r}")
            if value < 0:
                raise InvalidRecord(f"{name} must be >= 0, got {value}")
            if value > MAX_TOKENS:
                raise InvalidRecord(f"{name} must be <= {MAX_TOKENS}, got {value}")
        if self.cache_read_tokens + self.cache_write_tokens > self.input_tokens:
            raise InvalidRecord(
                "cache_read_tokens + cache_write_tokens exceed input_tokens "
                f"({self.cache_read_tokens} + {self.cache_write_tokens} > {self.input_tokens}); "
                "input_tokens must include cached tokens"
            )
        if self.reasoning_tokens > self.output_tokens:
            raise InvalidRecord(
                f"reasoning_tokens ({self.reasoning_tokens}) exceed output_tokens ({self.output_tokens}); "
                "output_tokens must include reasoning tokens"
            )
        if not isinstance(self.event_id, str) or not self.event_id:
            raise InvalidRecord("event_id must be a non-empty string")
        if not isinstance(self.timestamp, datetime) or self.timestamp.tzinfo is None:
            raise InvalidRecord("timestamp must be a timezone-aware datetime")
        if self.status not in _STATUSES:
            raise InvalidRecord(f"status must be one of {sorted(_STATUSES)}, got {self.status!r}")
        if self.customer is not None and not isinstance(self.customer, str):
            raise InvalidRecord(f"customer must be a string or None, got {type(self.customer).__name__}")
        if self.dimensions or not isinstance(self.dimensions, dict):
            if not isinstance(self.dimensions, Mapping):
                raise InvalidRecord(f"dimensions must be a dict, got {type(self.dimensions).__name__}")
            try:
                check_dimensions(self.dimensions)
            except TypeError as exc:
                raise InvalidRecord(str(exc)) from None
        return self

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict: timestamp as ISO 8601 UTC, decimals as strings."""
        out = dict(zip(FIELDS, field_values(self), strict=True))
        for name in TIME_FIELDS:
            out[name] = out[name].astimezone(timezone.utc).isoformat()
        for name in DECIMAL_FIELDS:
            if out[name] is not None:
                out[name] = str(out[name])
        for name in MAPPING_FIELDS:
            out[name] = dict(out[name])
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> UsageRecord:
        """Inverse of :meth:`to_dict`."""
        values = dict(data)
        for name in TIME_FIELDS:
            values[name] = datetime.fromisoformat(values[name])
        for name in DECIMAL_FIELDS:
            if values.get(name) is not None:
                values[name] = Decimal(values[name])
        for name in MAPPING_FIELDS:
            values[name] = dict(values.get(name) or {})
        return cls(**values)


def _kinds() -> dict[str, tuple[str, bool]]:
    """Each field's kind (``time``, ``decimal``, ``mapping``, ``count``, ``text``) and whether it
    may be None: what every format (codec, ledger, wire) converts it by."""
    kinds: dict[str, tuple[str, bool]] = {}
    hints = get_type_hints(UsageRecord)
    for name in (f.name for f in fields(UsageRecord)):
        hint = hints[name]
        args = get_args(hint)
        optional = type(None) in args
        base = next((a for a in args if a is not type(None)), hint) if optional else hint
        base = get_origin(base) or base
        kind = {datetime: "time", Decimal: "decimal", dict: "mapping", int: "count", str: "text"}.get(base)
        if kind is None:
            raise TypeError(f"UsageRecord.{name}: no format knows its type {hint!r}; give it a kind here")
        kinds[name] = (kind, optional)
    return kinds


FIELDS: tuple[str, ...] = tuple(f.name for f in fields(UsageRecord))
"""The record's fields in declaration order: the keys of :meth:`UsageRecord.to_dict`, the ledger's
columns, the spool codec's positions and the HTTP wire's keys all derive from it."""
FIELD_KINDS: dict[str, tuple[str, bool]] = _kinds()
"""Field -> (kind, may be None); kinds: ``time``, ``decimal``, ``mapping``, ``count``, ``text``."""
TIME_FIELDS = tuple(n for n in FIELDS if FIELD_KINDS[n][0] == "time")
DECIMAL_FIELDS = tuple(n for n in FIELDS if FIELD_KINDS[n][0] == "decimal")
MAPPING_FIELDS = tuple(n for n in FIELDS if FIELD_KINDS[n][0] == "mapping")
field_values: Callable[[UsageRecord], tuple[Any, ...]] = operator.attrgetter(*FIELDS)
"""A record's values in :data:`FIELDS` order, as one tuple."""
