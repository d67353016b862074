"""What can still be read from a damaged spool: its rows read around damaged pages
(:func:`usagetap.db.spool.damaged_rows`), and of each row's payload (a JSON array of records)
damaged in part, the records still whole in it.

::

    found = salvage_spool(conn)
    found.rows          # readable spool rows, their payloads re-read record by record
    found.unreadable    # records known lost (rows still say how many they held)
    found.lost_rows     # rows that could not be read at all (how many records they held is unknown)
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass, field
from typing import Any, Optional

from .._record import UsageRecord
from ..db import spool as db
from ..db.recover import text
from .codec import VERSION, decode, decode_array, decode_chunk

__all__ = [
    "Salvage",
    "SalvagedRow",
    "readable_records",
    "salvage_spool",
]

_DECODE_ERRORS = (ValueError, TypeError, IndexError, KeyError, AttributeError, ArithmeticError)
_RECORD_START = f'[{VERSION},"'  # a record's array: the codec's version, then its event id


def readable_records(payload: str) -> list[UsageRecord]:
    """The records of a spool payload; when it is damaged, every record still whole in it."""
    try:
        return decode_chunk(payload)
    except _DECODE_ERRORS:
        pass
    decoder = json.JSONDecoder()
    out: list[UsageRecord] = []
    pos = payload.find(_RECORD_START)
    while pos >= 0:
        try:
            value, end = decoder.raw_decode(payload, pos)
            out.append(decode_array(value))
        except _DECODE_ERRORS:
            pos = payload.find(_RECORD_START, pos + 1)
            continue
        pos = payload.find(_RECORD_START, end)
    return out


@dataclass
class SalvagedRow:
    """A spool row read back: its sink, its records still readable, and its schedule."""

    sink: str
    records: list[UsageRecord]
    created: float
    attempts: int
    not_before: float


@dataclass
class Salvage:
    """What a damaged spool still holds. ``unreadable``: records known lost; ``lost_rows``: rows that
    could not be read at all (their record counts unknown); ``dead``: readable dead letters as
    (sink, event id, payload, reason, created, died); ``meta``: readable meta rows."""

    rows: list[SalvagedRow] = field(default_factory=list)
    unreadable: int = 0
    lost_rows: int = 0
    dead: list[tuple[Any, ...]] = field(default_factory=list)
    lost_dead: int = 0
    meta: list[tuple[Any, ...]] = field(default_factory=list)

    @property
    def records(self) -> int:
        return sum(len(row.records) for row in self.rows)


def salvage_spool(conn: sqlite3.Connection, *, sink: Optional[str] = None) -> Salvage:
    """Read what is readable of the spool behind ``conn`` (``sink``: only its rows).

    A record is kept once per sink, however many rows hold it.
    """
    conn.text_factory = text
    out = Salvage()
    found, out.lost_rows = db.damaged_rows(conn)
    seen: set[tuple[str, str]] = set()
    for _, name, n, payload, created, attempts, not_before in found:
        if isinstance(name, bytes):
            name = text(name)  # noqa: PLW2901 (a row found on a page: its text is bytes)
        if sink is not None and name != sink:
            continue
        records = readable_records(text(payload)) if isinstance(payload, bytes) else []
        out.unreadable += max(0, _int(n) - len(records))
        fresh = [r for r in records if (name, r.event_id) not in seen]
        seen.update((name, r.event_id) for r in fresh)
        if fresh:
            out.rows.append(SalvagedRow(name, fresh, _float(created), _int(attempts), _float(not_before)))
    dead, out.lost_dead = db.damaged_dead(conn)
    for row in dead:
        if sink is None or row[1] == sink:
            try:
                decode(row[3])
            except _DECODE_ERRORS:
                out.lost_dead += 1
                continue
            out.dead.append(row[1:])
    out.meta = db.damaged_meta(conn)
    return out


def _int(value: Any) -> int:
    return value if isinstance(value, int) else 0


def _float(value: Any) -> float:
    return float(value) if isinstance(value, (int, float)) else 0.0
