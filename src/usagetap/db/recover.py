"""What can still be read from a damaged SQLite file: row by row, around the pages that cannot be read.

Python's sqlite3 has no ``.recover``, so rows are read by rowid in ranges: a
range that raises :class:`sqlite3.DatabaseError` (a damaged page on its path)
is halved until single rows are left, and a single row that still raises is
unreadable. An index, read apart from the table, says which rowids exist, so
only rows that were there count as lost. Rows that the b-tree cannot reach (a
damaged interior page) are looked for on the file's intact leaf pages, as
SQLite's ``.recover`` does. Nothing here knows a usagetap table: :mod:`.spool`
and :mod:`.ledger` name theirs.
"""

from __future__ import annotations

import sqlite3
import struct
from bisect import bisect_left, bisect_right
from collections.abc import Sequence
from typing import Any, Optional

__all__ = ["file_of", "readable_rows", "scan_pages", "text"]


def text(raw: bytes) -> str:
    """Stored text as ``str``: bytes that are no UTF-8 (a damaged page) become U+FFFD."""
    return raw.decode("utf-8", "replace")


def readable_rows(
    conn: sqlite3.Connection, table: str, columns: Sequence[str], *, index: Optional[str] = None
) -> tuple[list[tuple[Any, ...]], list[int]]:
    """Every readable row of ``table`` (``rowid`` first, then ``columns``), and the rowids that are not.

    ``index``: an index of the table, read to learn which rowids exist; without
    it (or when it cannot be read), every rowid of a range that cannot be read
    counts as unreadable, so the count is at most what was lost.
    """
    select = f"SELECT rowid, {', '.join(columns)} FROM {table} WHERE rowid BETWEEN ? AND ?"
    existing = _rowids(conn, table, index)
    low, high = _bounds(conn, table, existing)
    rows: list[tuple[Any, ...]] = []
    lost: list[int] = []

    def read(lo: int, hi: int) -> None:
        try:
            rows.extend(conn.execute(select, (lo, hi)).fetchall())
            return
        except sqlite3.DatabaseError:
            pass
        if existing is not None:
            inside = existing[bisect_left(existing, lo) : bisect_right(existing, hi)]
            if len(inside) <= 1:
                lost.extend(inside)
                return
            mid = inside[len(inside) // 2]
            read(lo, mid - 1)
            read(mid, hi)
        elif lo == hi:
            lost.append(lo)
        else:
            mid = (lo + hi) // 2
            read(lo, mid)
            read(mid + 1, hi)

    if high >= low:
        read(low, high)
    if existing is not None:  # a damaged interior page can also lead a search astray without an error
        found = {int(row[0]) for row in rows}.union(lost)
        for rowid in existing:
            if rowid not in found:
                read(rowid, rowid)
                if not rows or int(rows[-1][0]) != rowid:
                    lost.append(rowid)
    rows.sort(key=lambda row: int(row[0]))
    return rows, sorted(set(lost))


def _rowids(conn: sqlite3.Connection, table: str, index: Optional[str]) -> Optional[list[int]]:
    if index is None:
        return None
    try:
        found = conn.execute(f"SELECT rowid FROM {table} INDEXED BY {index}").fetchall()
    except sqlite3.DatabaseError:
        return None
    return sorted({int(r[0]) for r in found})


def _bounds(conn: sqlite3.Connection, table: str, existing: Optional[list[int]]) -> tuple[int, int]:
    """The rowids to read, from the table's own first and last, the index's, and ``sqlite_sequence``."""
    low: list[int] = []
    high: list[int] = []
    if existing:
        low.append(existing[0])
        high.append(existing[-1])
    for sql, into in ((f"SELECT MIN(rowid) FROM {table}", low), (f"SELECT MAX(rowid) FROM {table}", high)):
        try:
            value = conn.execute(sql).fetchone()[0]
        except sqlite3.DatabaseError:
            continue
        if value is not None:
            into.append(int(value))
    try:
        seq = conn.execute("SELECT seq FROM sqlite_sequence WHERE name=?", (table,)).fetchone()
    except sqlite3.DatabaseError:
        seq = None
    if seq is not None:
        high.append(int(seq[0]))
    if not low and high:
        low.append(1)
    return (min(low), max(high)) if low and high else (1, 0)


def file_of(conn: sqlite3.Connection) -> str:
    """The path of the database file behind ``conn`` (empty when it has none or cannot say)."""
    try:
        for _, name, file in conn.execute("PRAGMA database_list").fetchall():
            if name == "main":
                return str(file or "")
    except sqlite3.DatabaseError:
        pass
    return ""


def scan_pages(path: str, rowids: set[int], columns: tuple[int, Sequence[int]]) -> dict[int, tuple[Any, ...]]:
    """Rows ``rowids`` found on intact table leaf pages of the database file at ``path`` (and its WAL),
    read without the b-tree above them: what a damaged interior page hides.

    ``columns``: (the table's column count, the columns to return); text comes back as bytes. A payload
    whose overflow chain is damaged comes back cut short (its whole records still readable).
    """
    pages = _pages(path)
    if not pages:
        return {}
    size = len(next(iter(pages.values())))
    usable = size - (pages[1][20] if 1 in pages else 0)
    out: dict[int, tuple[Any, ...]] = {}
    count, wanted = columns
    for number, page in pages.items():
        start = 100 if number == 1 else 0
        if page[start] != 0x0D:  # a table leaf
            continue
        cells = int.from_bytes(page[start + 3 : start + 5], "big")
        for i in range(cells):
            try:
                at = int.from_bytes(page[start + 8 + 2 * i : start + 10 + 2 * i], "big")
                rowid, values = _cell(pages, page, at, usable)
            except (IndexError, ValueError, KeyError, struct.error):
                continue
            if rowid in rowids and rowid not in out and len(values) == count:
                out[rowid] = tuple(values[c] for c in wanted)
    return out


def _pages(path: str) -> dict[int, bytes]:
    """Page number -> content: the file's pages, then the committed frames of its WAL over them."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError:
        return {}
    if len(data) < 100 or not data.startswith(b"SQLite format 3\0"):
        return {}
    size = int.from_bytes(data[16:18], "big")
    size = 65536 if size == 1 else size
    if size < 512:
        return {}
    pages = {n + 1: data[n * size : (n + 1) * size] for n in range(len(data) // size)}
    try:
        with open(path + "-wal", "rb") as f:
            wal = f.read()
    except OSError:
        return pages
    pending: dict[int, bytes] = {}
    for at in range(32, len(wal) - 24 - size + 1, 24 + size):
        number = int.from_bytes(wal[at : at + 4], "big")
        pending[number] = wal[at + 24 : at + 24 + size]
        if int.from_bytes(wal[at + 4 : at + 8], "big"):  # a commit frame
            pages.update(pending)
            pending = {}
    return pages


def _varint(data: bytes, at: int) -> tuple[int, int]:
    value = 0
    for i in range(9):
        byte = data[at + i]
        if i == 8:
            return (value << 8) | byte, at + 9
        value = (value << 7) | (byte & 0x7F)
        if not byte & 0x80:
            return value, at + i + 1
    raise ValueError("varint")  # pragma: no cover


def _cell(pages: dict[int, bytes], page: bytes, at: int, usable: int) -> tuple[int, list[Any]]:
    """One table-leaf cell: its rowid and its record's values (the overflow chain followed)."""
    length, at = _varint(page, at)
    rowid, at = _varint(page, at)
    most = usable - 35
    if length <= most:
        payload = page[at : at + length]
    else:
        least = (usable - 12) * 32 // 255 - 23
        local = least + (length - least) % (usable - 4)
        local = local if local <= most else least
        payload = page[at : at + local]
        nxt = int.from_bytes(page[at + local : at + local + 4], "big")
        seen: set[int] = set()
        last = 0
        while len(payload) < length:
            if not nxt or nxt not in pages or nxt in seen:  # a damaged link
                nxt = _continuation(pages, last, length - len(payload), usable, seen) if last else 0
                if not nxt:
                    break
            seen.add(nxt)
            last = nxt
            over = pages[nxt]
            payload += over[4:usable]
            nxt = int.from_bytes(over[:4], "big")
        payload = payload[:length]
    return rowid, _values(payload)


def _continuation(pages: dict[int, bytes], after: int, remaining: int, usable: int, seen: set[int]) -> int:
    """The page after ``after`` (overflow pages are written in order) when it starts the rest of the
    chain: as many pages as ``remaining`` bytes need, each linked to the next, the last to none. 0 if not."""
    first = page = after + 1
    need = -(-remaining // (usable - 4))
    for i in range(need):
        if page not in pages or page in seen:
            return 0
        link = int.from_bytes(pages[page][:4], "big")
        if i == need - 1:
            return first if link == 0 else 0
        page = link
    return 0


def _values(record: bytes) -> list[Any]:
    """A record's values; those past its end (an overflow chain cut short) are None, a text cut
    short is what is left of it."""
    header, at = _varint(record, 0)
    types = []
    while at < header:
        kind, at = _varint(record, at)
        types.append(kind)
    values: list[Any] = []
    pos = header
    for kind in types:
        if kind in (0, 8, 9):
            values.append(None if kind == 0 else kind - 8)
            continue
        if kind in (10, 11):
            raise ValueError(f"serial type {kind}")
        width = (0, 1, 2, 3, 4, 6, 8, 8)[kind] if kind < 8 else (kind - 12 - kind % 2) // 2
        field = record[pos : pos + width]
        pos += width
        if kind >= 12:
            values.append(field)  # text and blobs as bytes
        elif len(field) < width:
            values.append(None)
        elif kind == 7:
            values.append(struct.unpack(">d", field)[0])
        else:
            values.append(int.from_bytes(field, "big", signed=True))
    return values
