"""The spool's queries: schema checks, meta merging, dead letters and owners."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from usagetap.db import spool as db


@pytest.fixture
def conn(tmp_path: Path) -> Iterator[sqlite3.Connection]:
    c = sqlite3.connect(str(tmp_path / "spool.db"), isolation_level=None)
    db.setup(c)
    yield c
    c.close()


def test_a_database_without_the_spool_tables_is_told_apart(tmp_path: Path) -> None:
    other = sqlite3.connect(str(tmp_path / "other.db"))
    other.execute("CREATE TABLE dead (x)")
    assert db.missing_tables(other) == ["meta", "spool"]
    other.close()


def test_a_fresh_spool_has_every_table(conn: sqlite3.Connection) -> None:
    assert db.missing_tables(conn) == []


def test_merged_meta_sums_counters_and_replaces_fields(conn: sqlite3.Connection) -> None:
    with db.immediate(conn):
        db.merge_meta(conn, "sink:a", add={"delivered": 2}, put={"halted": "401"})
        db.merge_meta(conn, "sink:a", add={"delivered": 3, "dead": 1}, put={"halted": None})
    assert json.loads(db.meta(conn, "sink:a") or "") == {"delivered": 5, "dead": 1, "halted": None}
    assert db.meta_under(conn, "sink:") == [("sink:a", db.meta(conn, "sink:a"))]


def test_dead_letters_match_by_sink_and_reason_in_any_case(conn: sqlite3.Connection) -> None:
    db.insert_dead(
        conn,
        [
            ("a", "e1", "[]", "422: Customer unknown", 1.0, 2.0),
            ("b", "e2", "[]", "422: customer unknown", 1.0, 2.0),
            ("a", "e3", "[]", "400: bad model", 1.0, 2.0),
        ],
    )
    assert [seq for seq, _, _ in db.dead_matching(conn, "a", "CUSTOMER")] == [1]
    assert [seq for seq, _, _ in db.dead_matching(conn, None, "customer")] == [1, 2]
    db.forget_dead(conn, [1])
    db.refuse_again(conn, [("410: gone", 3.0, 2)])
    assert db.dead_by_reason(conn) == [("a", "400: bad model", 1, 2.0), ("b", "410: gone", 1, 3.0)]


def test_rows_of_another_origin_are_taken_over(conn: sqlite3.Connection) -> None:
    db.insert(conn, [("a", 2, "[]", 1.0, 0, 1.0, "gone", 7), ("a", 3, "[]", 1.0, 0, 1.0, "me", 8)])
    assert db.origins(conn, "me") == [("gone", 7)]
    db.take_over(conn, "gone", "me", 8)
    assert (db.origins(conn, "me"), db.pending(conn, "a", "me")) == ([], 5)
