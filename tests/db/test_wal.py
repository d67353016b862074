"""WAL mode for a SQLite file that several processes open at once (``db/wal.py``)."""

from __future__ import annotations

import multiprocessing
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from usagetap.db.budgets import SQLiteBudgets
from usagetap.db.wal import use_wal


class Flaky:
    """A connection whose journal-mode switch finds the file locked the first ``locked`` times."""

    def __init__(self, locked: int, error: str = "database is locked") -> None:
        self.locked, self.error, self.statements = locked, error, []  # type: list[str]

    def execute(self, sql: str) -> Any:
        if sql.startswith("PRAGMA journal_mode") and self.locked:
            self.locked -= 1
            raise sqlite3.OperationalError(self.error)
        self.statements.append(sql)
        return None


def test_a_journal_mode_switch_that_finds_the_file_locked_is_tried_again() -> None:
    conn = Flaky(locked=3)
    use_wal(conn, timeout=5.0)  # type: ignore[arg-type]
    assert conn.statements == ["PRAGMA journal_mode=WAL", "PRAGMA synchronous=NORMAL"]


def test_a_file_locked_past_the_timeout_raises_the_lock_error() -> None:
    with pytest.raises(sqlite3.OperationalError, match="locked"):
        use_wal(Flaky(locked=10_000), timeout=0.05)  # type: ignore[arg-type]


def test_another_error_is_raised_at_once() -> None:
    conn = Flaky(locked=1, error="disk I/O error")
    with pytest.raises(sqlite3.OperationalError, match="disk I/O"):
        use_wal(conn, timeout=5.0)  # type: ignore[arg-type]
    assert conn.locked == 0


def _open(path: str, results: Any) -> None:
    try:
        SQLiteBudgets(path, timeout=10.0).open()
        results.put("ok")
    except Exception as exc:
        results.put(repr(exc))


def test_processes_opening_a_new_budget_store_at_once_all_open_it(tmp_path: Path) -> None:
    context = multiprocessing.get_context("spawn" if multiprocessing.get_start_method() != "fork" else "fork")
    outcomes: list[str] = []
    for round_ in range(15):
        results = context.Queue()
        path = str(tmp_path / f"budgets{round_}.db")
        processes = [context.Process(target=_open, args=(path, results)) for _ in range(6)]
        for process in processes:
            process.start()
        for process in processes:
            process.join(60)
        outcomes += [results.get(timeout=10) for _ in processes]
    assert [o for o in outcomes if o != "ok"] == []
