"""Salvage of a damaged spool: every record still readable is delivered once, the rest is counted."""

from __future__ import annotations

import logging
import os
import random
import sqlite3
import time
from pathlib import Path

import pytest

import usagetap
from tests.helpers import make_record
from usagetap._record import UsageRecord
from usagetap.delivery.codec import encode, encode_chunk
from usagetap.delivery.salvage import readable_records, salvage_spool
from usagetap.delivery.spool import Spool, open_spool

PAGE = 4096


def spool_of(path: Path, records: list[UsageRecord], chunk: int, *, sinks: tuple[str, ...] = ("a",)) -> None:
    """A spool file holding ``records`` for ``sinks``, ``chunk`` to a row, checkpointed and closed."""
    spool = open_spool(
        str(path), max_bytes=0, lease_seconds=60, hot_limit=0, chunks=dict.fromkeys(sinks, chunk)
    )
    for start in range(0, len(records), chunk):
        spool.add(list(sinks), records[start : start + chunk])
    spool.close()


def damage(path: Path, pages: list[int], rng: random.Random) -> None:
    """Overwrite whole pages (numbered from 1) with random bytes."""
    with open(path, "r+b") as f:
        for page in pages:
            f.seek((page - 1) * PAGE)
            f.write(rng.randbytes(PAGE))


def drain(spool: Spool, sink: str = "a") -> list[str]:
    """Lease and acknowledge everything due; the event ids delivered, in order."""
    out: list[str] = []
    while entries := spool.lease(sink, 100, time.time() + 1):
        out.extend(e.record.event_id for e in entries)
        spool.ack(sink, entries)
    return out


def pages_of(pristine: bytes, record: UsageRecord) -> set[int]:
    """The pages a record's bytes lie on in the undamaged file."""
    start = pristine.index(record.event_id.encode()) - len('[1,"')
    end = start + len(encode(record).encode())
    return set(range(start // PAGE + 1, end // PAGE + 2 if end % PAGE else end // PAGE + 1))


@pytest.mark.parametrize("seed", range(8))
def test_every_record_on_an_intact_page_is_salvaged_once_and_the_rest_counted(
    tmp_path: Path, seed: int
) -> None:
    rng = random.Random(seed)
    path = tmp_path / "s.db"
    made = [make_record(event_id=f"ev-{seed}-{i:05d}") for i in range(1500)]
    spool_of(path, made, chunk=1)
    pristine = path.read_bytes()
    count = len(pristine) // PAGE
    hit = rng.sample(range(2, count + 1), 4)  # page 1 (the schema) aside
    damage(path, hit, rng)

    conn = sqlite3.connect(str(path))
    found = salvage_spool(conn)
    conn.close()

    salvaged = [r.event_id for row in found.rows for r in row.records]
    assert len(salvaged) == len(set(salvaged)), "no record is salvaged twice"
    assert set(salvaged) <= {r.event_id for r in made}
    intact = {r.event_id for r in made if not pages_of(pristine, r) & set(hit)}
    assert intact <= set(salvaged), "every record on a page left intact is salvaged"
    assert len(salvaged) + found.unreadable + found.lost_rows == len(made), "the rest is counted"


@pytest.mark.parametrize("seed", range(6))
def test_a_spool_damaged_in_its_chunks_is_replaced_by_one_holding_every_readable_record(
    tmp_path: Path, seed: int
) -> None:
    usagetap._stats.reset()
    rng = random.Random(seed)
    path = tmp_path / "s.db"
    made = [make_record(event_id=f"ev-{seed}-{i:05d}", dimensions={"pad": "x" * 40}) for i in range(3000)]
    spool_of(path, made, chunk=100)
    size = path.stat().st_size
    with open(path, "r+b") as f:  # three 2 KB overwrites anywhere past the schema page
        for _ in range(3):
            f.seek(rng.randrange(PAGE, size - 2048))
            f.write(rng.randbytes(2048))

    spool = open_spool(str(path), max_bytes=0, lease_seconds=60, hot_limit=0)
    delivered = drain(spool)
    spool.close()

    stats = usagetap._stats.snapshot()
    assert len(delivered) == len(set(delivered)), "nothing is delivered twice"
    assert set(delivered) <= {r.event_id for r in made}
    unreadable = stats.get("spool_unreadable", 0)
    rows_lost = stats.get("spool_unreadable_rows", 0)
    assert len(delivered) + unreadable + 100 * rows_lost == len(made), "what is not delivered is counted"


def test_a_payload_damaged_in_the_middle_gives_up_the_records_on_either_side() -> None:
    records = [make_record() for _ in range(20)]
    text = encode_chunk(records)
    start = text.index(records[10].event_id) + 5
    end = text.index(records[12].event_id) - 10
    found = readable_records(text[:start] + "\ufffd" * (end - start) + text[end:])
    assert [r.event_id for r in found] == [r.event_id for i, r in enumerate(records) if i not in (10, 11)]


def test_a_row_whose_payload_cannot_be_decoded_is_leased_for_its_readable_records_and_counted(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="usagetap")
    usagetap._stats.reset()
    path = tmp_path / "s.db"
    made = [make_record() for _ in range(10)]
    spool_of(path, made, chunk=10)
    conn = sqlite3.connect(str(path))
    (payload,) = conn.execute("SELECT payload FROM spool").fetchone()
    cut = payload.index(made[4].event_id)
    broken = payload[: cut - 4].encode() + b"\xff\xfe garbage \xff" + payload[cut + 60 :].encode()
    conn.execute("UPDATE spool SET payload=CAST(? AS TEXT)", (broken,))
    conn.commit()
    conn.close()

    spool = open_spool(str(path), max_bytes=0, lease_seconds=60, hot_limit=0)
    delivered = drain(spool)
    assert delivered == [r.event_id for i, r in enumerate(made) if i != 4]
    assert spool.pending() == 0
    assert usagetap._stats.snapshot()["spool_unreadable"] == 1
    assert "1 records could not be read, 9 still could" in caplog.text


def test_a_corrupt_spool_reports_what_was_salvaged_and_what_was_not_in_stats_log_and_status(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from usagetap._status import open_readonly, read_status

    caplog.set_level(logging.WARNING, logger="usagetap")
    usagetap._stats.reset()
    path = tmp_path / "s.db"
    made = [make_record() for _ in range(400)]
    spool_of(path, made, chunk=1)
    leaf = path.read_bytes().index(made[0].event_id.encode()) // PAGE + 1  # a row is small: on its leaf
    damage(path, [leaf], random.Random(1))

    spool = open_spool(str(path), max_bytes=0, lease_seconds=60, hot_limit=0)
    delivered = drain(spool)
    spool.close()

    stats = usagetap._stats.snapshot()
    assert 0 < stats["spool_unreadable_rows"] < len(made)
    assert stats["spool_salvaged"] == len(delivered) == len(made) - stats["spool_unreadable_rows"]
    assert f"{len(delivered)} records" in caplog.text and "could not be read" in caplog.text
    status = read_status(open_readonly(str(path)), str(path))
    assert status.salvage["salvaged"] == len(delivered)
    assert status.salvage["unreadable_rows"] == stats["spool_unreadable_rows"]
    assert ".corrupt-" in status.salvage["from"]


def test_an_unreadable_file_is_moved_aside_and_nothing_invented(tmp_path: Path) -> None:
    usagetap._stats.reset()
    path = tmp_path / "s.db"
    path.write_bytes(os.urandom(8192))
    spool = open_spool(str(path), max_bytes=0, lease_seconds=60, hot_limit=0)
    assert spool.pending() == 0
    assert drain(spool) == []
    assert usagetap._stats.snapshot()["spool_salvaged"] == 0


def test_records_past_an_overflow_page_whose_link_is_damaged_are_salvaged(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    made = [make_record(dimensions={"pad": "y" * 40}) for _ in range(100)]
    spool_of(path, made, chunk=100)  # one row; its payload runs over several overflow pages
    pristine = path.read_bytes()
    page = pristine.index(made[50].event_id.encode()) // PAGE  # (from 0)
    with open(path, "r+b") as f:  # the first half of that page, its link to the next included
        f.seek(page * PAGE)
        f.write(bytes([0xEE]) * 2048)

    conn = sqlite3.connect(str(path))
    found = salvage_spool(conn)
    conn.close()

    damaged = range(page * PAGE, page * PAGE + 2048)

    def intact(r: UsageRecord) -> bool:
        """Its bytes lie outside the damage (one cut by a page link is not counted on)."""
        start = pristine.find(r.event_id.encode()) - len('[1,"')
        if start < 0:
            return False
        end = start + len(encode(r).encode()) + 4  # a page link may sit inside
        return end <= damaged.start or start >= damaged.stop

    salvaged = [r.event_id for row in found.rows for r in row.records]
    assert salvaged == [r.event_id for r in made if r.event_id in salvaged]
    assert {r.event_id for r in made if intact(r)} <= set(salvaged)
    assert any(intact(r) for r in made[made.index(next(r for r in made if not intact(r))) :]), (
        "records lie past the damage"
    )
    assert len(salvaged) + found.unreadable == len(made)
