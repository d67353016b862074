"""The Store interface: what the pipeline and workers ask of every store, answered by each one."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.helpers import make_record
from usagetap.delivery.spool import Spool, open_spool
from usagetap.delivery.store import Entry, MemoryStore, SpillingStore, Store


def spool_at(path: Path) -> Spool:
    return open_spool(str(path), max_bytes=0, lease_seconds=60.0, hot_limit=0)


def test_the_store_interface_cannot_be_instantiated_without_its_core_methods() -> None:
    with pytest.raises(TypeError, match="abstract"):
        Store()  # type: ignore[abstract]


def test_only_a_spool_is_durable_and_keeps_meta(tmp_path: Path) -> None:
    spool = spool_at(tmp_path / "s.db")
    memory = MemoryStore()
    spilling = SpillingStore(MemoryStore(), lambda: None, adopt=False)
    assert [(s.durable, s.keeps_meta) for s in (spool, memory, spilling)] == [
        (True, True),
        (False, False),
        (False, False),
    ]
    spool.close()


def test_a_spools_disk_is_itself_and_memory_has_none(tmp_path: Path) -> None:
    spool = spool_at(tmp_path / "s.db")
    assert spool.disk() is spool
    assert MemoryStore().disk() is None
    spool.close()


def test_a_spilling_store_opens_its_disk_once_on_first_ask(tmp_path: Path) -> None:
    spool = spool_at(tmp_path / "s.db")
    opened: list[Spool] = []

    def open_spill() -> Spool:
        opened.append(spool)
        return spool

    spilling = SpillingStore(MemoryStore(), open_spill, adopt=False)
    assert opened == []
    assert spilling.disk() is spool and spilling.disk() is spool
    assert opened == [spool]
    spool.close()


def test_a_spilling_store_whose_spool_cannot_open_has_no_disk_and_does_not_retry() -> None:
    calls: list[int] = []

    def open_spill() -> None:
        calls.append(1)

    spilling = SpillingStore(MemoryStore(), open_spill, adopt=False)
    assert (spilling.disk(), spilling.disk(), len(calls)) == (None, None, 1)


def test_draining_a_spilling_store_takes_what_memory_holds_and_leaves_the_spilled(tmp_path: Path) -> None:
    spool = spool_at(tmp_path / "s.db")
    spilling = SpillingStore(MemoryStore(max_entries=1), lambda: spool, adopt=False)
    kept, spilled = make_record(), make_record()
    spilling.add(["a"], [kept])
    spilling.add(["a"], [spilled])  # memory is full: spills
    assert [(sink, e.record) for sink, e in spilling.drain()] == [("a", kept)]
    assert spilling.pending("a") == 1 and spool.pending("a") == 1
    spool.close()


def test_a_spool_holds_nothing_only_in_memory_to_drain(tmp_path: Path) -> None:
    spool = open_spool(str(tmp_path / "s.db"), max_bytes=0, lease_seconds=60.0, hot_limit=100)
    spool.add(["a"], [make_record()])
    assert spool.drain() == []
    assert spool.pending("a") == 1
    spool.close()


def test_entries_drained_from_memory_keep_their_attempts_and_due_time_on_disk(tmp_path: Path) -> None:
    spool = spool_at(tmp_path / "s.db")
    record = make_record()
    later = time.time() + 3600
    spool.keep_entries([("a", Entry(0, record, 3, later))])
    assert spool.lease("a", 10, time.time()) == []
    (entry,) = spool.lease("a", 10, later + 1)
    assert (entry.record, entry.attempts, entry.not_before) == (record, 3, later)
    spool.close()


def test_a_memory_store_does_not_keep_entries_from_another_store() -> None:
    with pytest.raises(NotImplementedError, match="MemoryStore"):
        MemoryStore().keep_entries([("a", Entry(0, make_record()))])
