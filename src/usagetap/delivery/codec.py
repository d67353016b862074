"""Records <-> spool payloads: each record a compact positional JSON array, versioned; a spool row
holds a JSON array of them (a chunk)."""

from __future__ import annotations

import json
from collections.abc import Sequence
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
    return _dumps(
        [
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
    )


def encode_chunk(payloads: Sequence[str]) -> str:
    """Records already encoded (by :func:`encode`) as one chunk."""
    return "[" + ",".join(payloads) + "]"


def decode(payload: str) -> UsageRecord:
    """Inverse of :func:`encode`."""
    return _record(_loads(payload))


def decode_chunk(chunk: str) -> list[UsageRecord]:
    """Inverse of :func:`encode_chunk` (of :func:`encode` each)."""
    return [_record(v) for v in _loads(chunk)]


def _record(v: list[Any]) -> UsageRecord:
    if v[0] != _VERSION:
        raise ValueError(f"unknown spool payload version {v[0]!r}")
    return UsageRecord(
        event_id=v[1],
        timestamp=datetime.fromisoformat(v[2]),
        customer=v[3],
        provider=v[4],
        model=v[5],
        request_model=v[6],
        operation=v[7],
        input_tokens=v[8],
        output_tokens=v[9],
        cache_read_tokens=v[10],
        cache_write_tokens=v[11],
        reasoning_tokens=v[12],
        cost=None if v[13] is None else Decimal(v[13]),
        dimensions=v[14],
        status=v[15],
        response_id=v[16],
        run_id=v[17],
        parent_run_id=v[18],
        price_version=v[19],
        billed_cost=None if v[20] is None else Decimal(v[20]),
    )
