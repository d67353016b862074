"""Records <-> spool payloads: each record a compact positional JSON array, versioned; a spool row
holds a JSON array of them (a chunk)."""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import datetime
from decimal import Decimal
from typing import Any

from .._record import DECIMAL_FIELDS, FIELDS, TIME_FIELDS, UsageRecord, field_values

__all__ = ["VERSION", "decode", "decode_array", "decode_chunk", "encode", "encode_chunk"]

VERSION = 1
"""Version 1: the version, then the record's fields (:data:`~usagetap._record.FIELDS`) in declaration order.

Fields are only ever appended, each with a default: a shorter array (written before a field was added)
reads with the missing fields at their defaults. Any other change to the fields needs a new version.
"""
_dumps = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode
_loads = json.loads
# positions in the array (after the version) of the fields stored as text
_TIMES = tuple(1 + FIELDS.index(name) for name in TIME_FIELDS)
_DECIMALS = tuple(1 + FIELDS.index(name) for name in DECIMAL_FIELDS)


def encode(r: UsageRecord) -> str:
    """One record as a JSON array; costs as strings so they stay exact."""
    return _dumps(_fields(r))


def encode_chunk(records: Iterable[UsageRecord]) -> str:
    """Records as one chunk: a JSON array of what :func:`encode` makes of each, in one encoder call."""
    return _dumps([_fields(r) for r in records])


def _fields(r: UsageRecord) -> list[Any]:
    """The version, then every field of the record in declaration order (:func:`decode_array` reads it)."""
    v = [VERSION, *field_values(r)]
    for i in _TIMES:
        v[i] = v[i].isoformat()
    for i in _DECIMALS:
        if v[i] is not None:
            v[i] = str(v[i])
    return v


def decode(payload: str) -> UsageRecord:
    """Inverse of :func:`encode`."""
    return decode_array(_loads(payload))


def decode_chunk(chunk: str) -> list[UsageRecord]:
    """Inverse of :func:`encode_chunk` (of :func:`encode` each)."""
    return [decode_array(v) for v in _loads(chunk)]


def decode_array(v: list[Any]) -> UsageRecord:
    """The record of a decoded array (changed in place); after the version come the record's fields."""
    if v[0] != VERSION:
        raise ValueError(f"unknown spool payload version {v[0]!r}")
    n = len(v)
    for i in _TIMES:
        if i < n:
            v[i] = datetime.fromisoformat(v[i])
    for i in _DECIMALS:
        if i < n and v[i] is not None:
            v[i] = Decimal(v[i])
    return UsageRecord(*v[1:])  # positional: half the cost of 20 keywords
