"""Spool payloads: a chunk is encoded in one call and reads back as the records it was made of."""

from __future__ import annotations

import dataclasses
import json
import sqlite3
import time
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import pytest

from tests.helpers import make_record
from usagetap._record import FIELDS, UsageRecord
from usagetap.delivery.codec import decode, decode_chunk, encode, encode_chunk
from usagetap.delivery.spool import open_spool


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


def _first_format(r: UsageRecord) -> list:
    """A record as the spool's first format (version 1, usagetap 0.1) wrote it, spelled out."""
    return [
        1,
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
        r.fees,  # appended by issue 21
        r.cost_items,
        r.price_source,
        r.price_issue,
    ]


def test_records_are_encoded_as_the_first_format_wrote_them() -> None:
    records = _records()
    assert json.loads(encode_chunk(records)) == [_first_format(r) for r in records]


def test_a_spool_written_in_the_first_format_is_delivered_from(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    spool = open_spool(str(path), max_bytes=0, lease_seconds=60.0, hot_limit=0)
    spool.close()
    records = _records()
    conn = sqlite3.connect(str(path))
    conn.execute(
        "INSERT INTO spool (sink, n, payload, created, attempts, not_before) VALUES ('a', ?, ?, 0, 0, 0)",
        (len(records), json.dumps([_first_format(r) for r in records])),
    )
    conn.commit()
    conn.close()
    spool = open_spool(str(path), max_bytes=0, lease_seconds=60.0, hot_limit=0)
    assert [e.record for e in spool.lease("a", 10, time.time())] == records
    spool.close()


def test_an_array_written_before_a_field_was_added_reads_it_at_its_default() -> None:
    record = make_record(price_version="p1", billed_cost=Decimal("0.5"))
    short = json.loads(encode(record))[
        : 1 + FIELDS.index("price_version")
    ]  # no price_version, no billed_cost yet
    back = decode(json.dumps(short))
    assert (back.price_version, back.billed_cost) == (None, None)
    assert back == dataclasses.replace(record, price_version=None, billed_cost=None)
