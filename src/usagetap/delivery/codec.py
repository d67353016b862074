"""Records <-> spool payloads: each record a compact positional JSON array, versioned; a spool row
holds a JSON array of them (a chunk)."""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import datetime
from decimal import Decimal
from typing import Any

from ..record import UsageRecord

__all__ = ["decode", "decode_chunk", "encode", "encode_chunk"]

_VERSION = 1
_dumps = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode
_loads = json.loads


def encode(r: UsageRecord) -> str:
    """One record as a JSON array; costs as strings so they stay exact."""
    return _dumps(_fields(r))


def encode_chunk(records: Iterable[UsageRecord]) -> str:
    """Records as one chunk: a JSON array of what :func:`encode` makes of each, in one encoder call."""
    return _dumps([_fields(r) for r in records])


def _fields(r: UsageRecord) -> list[Any]:
    """The version, then every field of the record in declaration order (``_record`` relies on it)."""
    return [
        _VERSION,
        r.event_id,
        r.timestamp.isoformat(),
        r.customer,
        r.provider,
        r.model,
        r.request_model,
        r.operation,
        r.input_tokens,
        r.output_tokens,
        r.cache_read_tokens,
        r.cache_write_tokens,
        r.reasoning_tokens,
        None if r.cost is None else str(r.cost),
        r.dimensions,
        r.status,
        r.response_id,
        r.run_id,
        r.parent_run_id,
        r.price_version,
        None if r.billed_cost is None else str(r.billed_cost),
    ]


def decode(payload: str) -> UsageRecord:
    """Inverse of :func:`encode`."""
    return _record(_loads(payload))


def decode_chunk(chunk: str) -> list[UsageRecord]:
    """Inverse of :func:`encode_chunk` (of :func:`encode` each)."""
    return [_record(v) for v in _loads(chunk)]


def _record(v: list[Any]) -> UsageRecord:
    """The record of a decoded array (changed in place); after the version come the record's fields."""
    if v[0] != _VERSION:
        raise ValueError(f"unknown spool payload version {v[0]!r}")
    v[2] = datetime.fromisoformat(v[2])
    if v[13] is not None:
        v[13] = Decimal(v[13])
    if v[20] is not None:
        v[20] = Decimal(v[20])
    return UsageRecord(*v[1:])  # positional: half the cost of 20 keywords
