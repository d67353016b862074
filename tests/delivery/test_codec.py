"""Spool payloads: a chunk is encoded in one call and reads back as the records it was made of."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest

from tests.helpers import make_record
from usagetap.delivery.codec import decode, decode_chunk, encode, encode_chunk


def _records() -> list:
    return [
        make_record(),
        make_record(
            customer=None,
            request_model=None,
            cache_read_tokens=64,
            reasoning_tokens=5,
            cost=Decimal("0.000123400"),
            billed_cost=Decimal("0.00016042"),
            price_version="genai-prices 0.0.40",
            dimensions={"feature": "search", "ratio": 0.5, "batch": True, "note": "é\u2028\x00"},
            response_id="chatcmpl-1",
            run_id="run_1",
            parent_run_id="run_0",
            status="partial",
        ),
        make_record(timestamp=datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=timezone(timedelta(hours=2)))),
    ]


def test_a_chunk_is_the_records_encoded_one_by_one_in_one_array() -> None:
    records = _records()
    assert encode_chunk(records) == "[" + ",".join(encode(r) for r in records) + "]"
    assert encode_chunk(iter(records)) == encode_chunk(records)
    assert json.loads(encode_chunk([])) == []


def test_a_chunk_reads_back_field_for_field() -> None:
    records = _records()
    back = decode_chunk(encode_chunk(records))
    assert back == records
    assert [str(r.cost) for r in back] == [str(r.cost) for r in records]
    assert back[2].timestamp.utcoffset() == timedelta(hours=2)
    assert [decode(encode(r)) for r in records] == records


def test_an_unknown_payload_version_is_refused() -> None:
    row = json.loads(encode(make_record()))
    row[0] = 99
    with pytest.raises(ValueError, match="version 99"):
        decode(json.dumps(row))
