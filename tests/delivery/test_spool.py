"""The SQLite spool: leases, acknowledgements, dead letters, caps and damaged files."""

from __future__ import annotations

import logging
import os
import sqlite3
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.helpers import make_record
from usagetap.delivery.spool import Spool, SpoolUnavailable, open_spool
from usagetap.delivery.store import MemoryStore, SpillingStore, StoreFull


def spool_at(path: Path, **kw: float) -> Spool:
    """A spool whose rows all wait on disk (``hot`` > 0: fresh rows written through, kept in memory);
    ``chunk``: records per row for sink ``a``."""
    return open_spool(
        str(path),
        max_bytes=int(kw.get("max_bytes", 0)),
        lease_seconds=kw.get("lease", 60.0),
        hot_limit=int(kw.get("hot", 0)),
        chunks={"a": int(kw["chunk"])} if "chunk" in kw else None,
    )


def rows(path: Path) -> list[tuple[int, int, bool]]:
    """The spool's rows: (records, attempts, leased) each, in seq order."""
    conn = sqlite3.connect(str(path))
    try:
        return [
            (n, attempts, owner is not None)
            for n, attempts, owner in conn.execute("SELECT n, attempts, lease_owner FROM spool ORDER BY seq")
        ]
    finally:
        conn.close()


def test_records_round_trip_and_are_deleted_only_when_acknowledged(tmp_path: Path) -> None:
    spool = spool_at(tmp_path / "s.db")
    records = [make_record(dimensions={"feature": "x"}) for _ in range(5)]
    spool.add(["a"], records)
    leased = spool.lease("a", 3, time.time())
    assert [e.record for e in leased] == records[:3]
    assert spool.pending("a") == 5
    spool.ack("a", leased)
    assert spool.pending("a") == 2
    rest = spool.lease("a", 10, time.time())
    assert [e.record for e in rest] == records[3:]


def test_fan_out_keeps_one_row_per_sink(tmp_path: Path) -> None:
    spool = spool_at(tmp_path / "s.db")
    spool.add(["a", "b"], [make_record()])
    spool.ack("a", spool.lease("a", 10, time.time()))
    assert (spool.pending("a"), spool.pending("b")) == (0, 1)


def test_the_same_event_is_kept_once_per_sink(tmp_path: Path) -> None:
    spool = spool_at(tmp_path / "s.db")
    record = make_record()
    spool.add(["a"], [record])
    spool.add(["a"], [record])
    assert spool.pending("a") == 1


def test_a_leased_row_is_not_leased_again_by_another_process(tmp_path: Path) -> None:
    first = spool_at(tmp_path / "s.db")
    first.add(["a"], [make_record() for _ in range(4)])
    taken = first.lease("a", 3, time.time())
    other = Spool(tmp_path / "s.db", max_bytes=0, lease_seconds=60)  # another owner, as a second process
    other.owner = "someone-else"
    assert [e.key for e in other.lease("a", 10, time.time())] == [taken[-1].key + 1]


def test_an_expired_lease_is_reclaimed(tmp_path: Path) -> None:
    first = spool_at(tmp_path / "s.db", lease=0.05)
    first.add(["a"], [make_record()])
    assert len(first.lease("a", 10, time.time())) == 1
    other = Spool(tmp_path / "s.db", max_bytes=0, lease_seconds=60)
    assert other.lease("a", 10, time.time()) == []
    assert len(other.lease("a", 10, time.time() + 0.1)) == 1


def test_leases_of_a_dead_process_are_void_at_open(tmp_path: Path) -> None:
    spool = spool_at(tmp_path / "s.db")
    spool.add(["a"], [make_record()])
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True, check=True
    )
    dead_pid = int(dead.stdout)
    conn = sqlite3.connect(str(tmp_path / "s.db"))
    conn.execute(
        "UPDATE spool SET lease_owner='gone', lease_pid=?, lease_until=?", (dead_pid, time.time() + 3600)
    )
    conn.commit()
    assert spool.lease("a", 10, time.time()) == []
    assert len(spool_at(tmp_path / "s.db").lease("a", 10, time.time())) == 1


def test_retry_makes_a_row_due_later(tmp_path: Path) -> None:
    spool = spool_at(tmp_path / "s.db")
    spool.add(["a"], [make_record()])
    [entry] = spool.lease("a", 1, time.time())
    entry.attempts, entry.not_before = 1, time.time() + 100
    spool.retry("a", [entry])
    assert spool.lease("a", 1, time.time()) == []
    assert spool.next_due("a") == pytest.approx(entry.not_before)
    [again] = spool.lease("a", 1, time.time() + 101)
    assert again.attempts == 1


def test_leases_take_the_earliest_due_first_then_the_oldest(tmp_path: Path) -> None:
    spool = spool_at(tmp_path / "s.db")
    records = [make_record() for _ in range(4)]
    spool.add(["a"], records[:3])
    first = spool.lease("a", 1, time.time())
    first[0].attempts, first[0].not_before = 1, time.time() + 1000
    spool.retry("a", first)  # due long after the others
    spool.add(["a"], records[3:])
    due_now = spool.lease("a", 10, time.time())
    assert [e.record for e in due_now] == records[1:]
    spool.retry("a", due_now[:1])  # retried at once (due when it was created): before the rest
    for entry in due_now[1:]:
        entry.not_before = time.time() + 10
    spool.retry("a", due_now[1:])
    later = spool.lease("a", 10, time.time() + 2000)
    assert [e.record for e in later] == [records[1], records[2], records[3], records[0]]


def test_has_pending_says_whether_rows_of_this_process_wait(tmp_path: Path) -> None:
    spool = spool_at(tmp_path / "s.db")
    other = Spool(tmp_path / "s.db", max_bytes=0, lease_seconds=60)
    other.owner = "someone-else"
    other.add(["a"], [make_record()])
    assert not spool.has_pending()
    spool.add(["a", "b"], [make_record()])
    assert spool.has_pending()
    spool.ack("a", spool.lease("a", 10, time.time()))
    assert spool.has_pending()
    spool.ack("b", spool.lease("b", 10, time.time()))
    assert not spool.has_pending()


def test_dead_letters_keep_the_record_and_the_reason(tmp_path: Path) -> None:
    spool = spool_at(tmp_path / "s.db")
    record = make_record()
    spool.add(["a"], [record])
    spool.dead("a", spool.lease("a", 1, time.time()), ["422: customer unknown"], time.time())
    assert spool.pending() == 0
    [letter] = spool.dead_letters()
    assert (letter.sink, letter.record, letter.reason) == ("a", record, "422: customer unknown")


def test_the_spool_file_is_private(tmp_path: Path) -> None:
    spool = spool_at(tmp_path / "s.db")
    spool.add(["a"], [make_record()])
    for name in ("s.db", "s.db-wal"):
        mode = stat.S_IMODE(os.stat(tmp_path / name).st_mode)
        assert mode & 0o077 == 0, f"{name} is readable by others: {oct(mode)}"


def test_size_cap_refuses_more_records(tmp_path: Path) -> None:
    spool = spool_at(tmp_path / "s.db", max_bytes=64 * 1024)
    with pytest.raises(StoreFull):
        for _ in range(200):
            spool.add(["a"], [make_record(dimensions={"pad": "x" * 400}) for _ in range(20)])
    assert spool.pending() > 0


def test_a_full_disk_is_reported_as_unavailable(tmp_path: Path) -> None:
    spool = spool_at(tmp_path / "s.db")
    spool._conn.execute("PRAGMA max_page_count=8")
    with pytest.raises(SpoolUnavailable, match="full"):
        for _ in range(100):
            spool.add(["a"], [make_record(dimensions={"pad": "x" * 400}) for _ in range(20)])


def test_an_unwritable_path_is_unavailable(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where a directory should be")
    with pytest.raises(SpoolUnavailable):
        spool_at(blocker / "spool.db")


def test_a_corrupt_spool_is_moved_aside_and_replaced(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="usagetap")
    path = tmp_path / "s.db"
    path.write_bytes(b"this is not a sqlite database" * 100)
    spool = spool_at(path)
    spool.add(["a"], [make_record()])
    aside = [p for p in tmp_path.iterdir() if ".corrupt-" in p.name]
    assert len(aside) == 1 and aside[0].read_bytes().startswith(b"this is not")
    assert "was corrupt" in caplog.text


# -- fresh rows written through ------------------------------------------------------------


def test_fresh_rows_are_written_leased_and_delivered_from_memory(tmp_path: Path) -> None:
    spool = spool_at(tmp_path / "s.db", hot=100)
    records = [make_record() for _ in range(5)]
    spool.add(["a"], records)
    other = Spool(tmp_path / "s.db", max_bytes=0, lease_seconds=60, hot_limit=0)
    other.owner = "another-process"
    assert other.lease("a", 10, time.time()) == [], "on disk they are leased to the writer already"
    taken = spool.lease("a", 10, time.time())
    assert [e.record for e in taken] == records, "the very record objects, no read back"
    spool.ack("a", taken)
    assert spool.pending() == 0
    conn = sqlite3.connect(str(tmp_path / "s.db"))
    assert conn.execute("SELECT COUNT(*) FROM spool").fetchone()[0] == 0


def test_what_does_not_fit_in_memory_waits_on_disk_unleased(tmp_path: Path) -> None:
    spool = spool_at(tmp_path / "s.db", hot=3)
    spool.add(["a"], [make_record() for _ in range(3)])
    spool.add(["a"], [make_record() for _ in range(2)])
    other = Spool(tmp_path / "s.db", max_bytes=0, lease_seconds=60, hot_limit=0)
    other.owner = "another-process"
    assert len(other.lease("a", 10, time.time())) == 2
    assert len(spool.lease("a", 10, time.time())) == 3


def test_a_row_kept_in_memory_past_half_its_lease_is_renewed_and_leased(tmp_path: Path) -> None:
    spool = spool_at(tmp_path / "s.db", hot=100, lease=10)
    record = make_record()
    spool.add(["a"], [record])
    later = time.time() + 6
    [entry] = spool.lease("a", 10, later)
    assert entry.record.event_id == record.event_id
    other = Spool(tmp_path / "s.db", max_bytes=0, lease_seconds=10, hot_limit=0)
    other.owner = "another-process"
    assert other.lease("a", 10, later + 5) == [], "the renewed lease still holds where the first would not"


def test_a_row_kept_in_memory_whose_lease_another_process_took_is_left_to_it(tmp_path: Path) -> None:
    spool = spool_at(tmp_path / "s.db", hot=100, lease=10)
    spool.add(["a"], [make_record()])
    other = Spool(tmp_path / "s.db", max_bytes=0, lease_seconds=10, hot_limit=0)
    other.owner = "another-process"
    assert len(other.lease("a", 10, time.time() + 11)) == 1
    assert spool.lease("a", 10, time.time() + 12) == []


def test_a_duplicate_event_is_kept_once(tmp_path: Path) -> None:
    spool = spool_at(tmp_path / "s.db", hot=100)
    record = make_record()
    spool.add(["a"], [record])
    spool.add(["a"], [record, make_record()])
    assert spool.pending("a") == 2
    taken = spool.lease("a", 10, time.time())
    assert len(taken) == 2 and len({e.key for e in taken}) == 2


def test_a_partly_acknowledged_batch_keeps_the_rest_and_other_sinks_rows(tmp_path: Path) -> None:
    spool = spool_at(tmp_path / "s.db", hot=100)
    spool.add(["a", "b"], [make_record() for _ in range(4)])
    taken = spool.lease("a", 10, time.time())
    spool.ack("a", taken[:1] + taken[2:])
    assert (spool.pending("a"), spool.pending("b")) == (1, 4)


def test_has_pending_in_memory_and_through_a_spill(tmp_path: Path) -> None:
    memory = MemoryStore(max_entries=1)
    spill = spool_at(tmp_path / "spool.db")
    spilling = SpillingStore(memory, lambda: spill, adopt=False)
    assert not memory.has_pending() and not spilling.has_pending()
    spilling.add(["s"], [make_record(input_tokens=1)])
    assert memory.has_pending() and spilling.has_pending() and not spill.has_pending()
    spilling.add(["s"], [make_record(input_tokens=2)])  # memory is full: spills
    assert spill.has_pending()
    entries = spilling.lease("s", 10, time.time())
    assert [e.tier for e in entries] == [memory, spill]
    spilling.ack("s", entries)
    assert not memory.has_pending() and not spill.has_pending() and not spilling.has_pending()


def test_a_row_holds_one_batch_and_a_lease_takes_whole_rows(tmp_path: Path) -> None:
    spool = spool_at(tmp_path / "s.db", chunk=4)
    records = [make_record() for _ in range(10)]
    spool.add(["a"], records)
    assert rows(tmp_path / "s.db") == [(4, 0, False), (4, 0, False), (2, 0, False)]
    taken = spool.lease("a", 9, time.time())
    assert [e.record for e in taken] == records[:8], "two whole rows; the third would not fit"
    assert rows(tmp_path / "s.db") == [(4, 0, True), (4, 0, True), (2, 0, False)]
    spool.ack("a", taken)
    assert rows(tmp_path / "s.db") == [(2, 0, False)]


def test_a_row_larger_than_the_batch_is_split_when_leased(tmp_path: Path) -> None:
    spool = spool_at(tmp_path / "s.db", chunk=10)
    records = [make_record() for _ in range(10)]
    spool.add(["a"], records)
    taken = spool.lease("a", 4, time.time())
    assert [e.record for e in taken] == records[:4]
    assert rows(tmp_path / "s.db") == [(4, 0, True), (4, 0, False), (2, 0, False)]
    assert [e.record for e in spool.lease("a", 6, time.time())] == records[4:]


def test_a_batch_with_mixed_outcomes_rewrites_its_row(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    spool = spool_at(path, hot=100, chunk=8)
    records = [make_record() for _ in range(8)]
    spool.add(["a"], records)
    taken = spool.lease("a", 8, time.time())
    now = time.time()
    delivered, dead, soon, later = taken[:3], taken[3:4], taken[4:6], taken[6:]
    for entry in soon:
        entry.attempts, entry.not_before = 1, now - 1
    for entry in later:
        entry.attempts, entry.not_before = 2, now + 100
    spool.ack("a", delivered)
    assert rows(path) == [(5, 0, True)], "rewritten, still leased: the rest is not settled yet"
    spool.dead("a", dead, ["422: customer unknown"], now)
    spool.retry("a", soon + later)
    assert sorted(rows(path)) == [(2, 1, False), (2, 2, False)], "one row per due time, released"
    assert spool.pending("a") == 4
    [letter] = spool.dead_letters("a")
    assert letter.record == records[3] and letter.reason == "422: customer unknown"
    other = Spool(path, max_bytes=0, lease_seconds=60, hot_limit=0)  # another process sees the same
    other.owner = "another-process"
    again = other.lease("a", 10, now)
    assert [(e.record, e.attempts) for e in again] == [(records[4], 1), (records[5], 1)]
    other.ack("a", again)
    assert [e.record for e in other.lease("a", 10, now + 101)] == records[6:]


def test_a_whole_row_retried_alike_is_released_in_place(tmp_path: Path) -> None:
    spool = spool_at(tmp_path / "s.db", chunk=3)
    spool.add(["a"], [make_record() for _ in range(3)])
    taken = spool.lease("a", 3, time.time())
    due = time.time() + 5
    for entry in taken:
        entry.attempts, entry.not_before = 1, due
    spool.retry("a", taken)
    assert rows(tmp_path / "s.db") == [(3, 1, False)]


def test_settling_a_row_whose_lease_was_lost_leaves_it_to_its_new_holder(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    first = spool_at(path, lease=0.05)
    records = [make_record() for _ in range(3)]
    first.add(["a"], records)
    taken = first.lease("a", 10, time.time())
    other = Spool(path, max_bytes=0, lease_seconds=60, hot_limit=0)
    other.owner = "another-process"
    again = other.lease("a", 10, time.time() + 0.1)
    assert [e.record for e in again] == records
    first.ack("a", taken[:1])
    first.dead("a", taken[1:2], ["late"], time.time())
    first.retry("a", taken[2:])
    assert rows(path) == [(3, 0, True)] and first.dead_letters() == []
    other.ack("a", again)
    assert rows(path) == []


def test_a_spool_of_one_row_per_record_is_upgraded_at_open(tmp_path: Path) -> None:
    from usagetap.delivery.codec import encode

    path = tmp_path / "s.db"
    records = [make_record() for _ in range(3)]
    conn = sqlite3.connect(str(path))
    conn.executescript(
        """
        CREATE TABLE spool (seq INTEGER PRIMARY KEY AUTOINCREMENT, sink TEXT NOT NULL, event_id TEXT NOT NULL,
            payload TEXT NOT NULL, created REAL NOT NULL, attempts INTEGER NOT NULL DEFAULT 0,
            not_before REAL NOT NULL DEFAULT 0, lease_owner TEXT, lease_pid INTEGER, lease_until REAL,
            origin TEXT NOT NULL DEFAULT '', origin_pid INTEGER NOT NULL DEFAULT 0, UNIQUE (sink, event_id));
        CREATE INDEX spool_due ON spool (sink, not_before, seq);
        CREATE TABLE dead (seq INTEGER PRIMARY KEY AUTOINCREMENT, sink TEXT NOT NULL, event_id TEXT NOT NULL,
            payload TEXT NOT NULL, reason TEXT NOT NULL, created REAL NOT NULL, died REAL NOT NULL);
        CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
        """
    )
    conn.executemany(
        "INSERT INTO spool (sink, event_id, payload, created, attempts) VALUES ('a', ?, ?, 1.0, ?)",
        [(r.event_id, encode(r), i) for i, r in enumerate(records)],
    )
    conn.commit()
    conn.close()
    spool = spool_at(path)
    assert spool.pending("a") == 3
    taken = spool.lease("a", 10, time.time())
    assert [(e.record, e.attempts) for e in taken] == [(r, i) for i, r in enumerate(records)]
    spool.ack("a", taken)
    assert spool.pending() == 0


def test_a_row_in_memory_larger_than_the_batch_is_handed_out_a_batch_at_a_time(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    spool = spool_at(path, hot=100, chunk=5)
    records = [make_record() for _ in range(5)]
    spool.add(["a"], records)
    first = spool.lease("a", 2, time.time())
    assert [e.record for e in first] == records[:2]
    spool.ack("a", first)
    assert rows(path) == [(3, 0, True)]
    second = spool.lease("a", 2, time.time())
    assert [e.record for e in second] == records[2:4]
    spool.ack("a", second)
    last = spool.lease("a", 2, time.time())
    assert [e.record for e in last] == records[4:]
    spool.ack("a", last)
    assert rows(path) == [] and spool.pending() == 0
