"""What the spool holds, for ``usagetap status``: read-only, from the SQLite file alone.

Per sink: records waiting (due now, in backoff, leased by a live or a dead
process), the oldest one, dead letters, and what the delivering processes
recorded in the spool's ``meta`` table: counters summed over every process
that delivered from this spool, the last delivery error, and why delivery is
halted (a rejected key, a sink the environment names but that cannot be built);
and what was salvaged from a corrupt spool it replaced, with the count of what
could not be read.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Optional

from ._liveness import pid_alive
from .db import spool as db
from .db.spool import SALVAGE_KEY
from .delivery.worker import COUNTERS, status_key

SALVAGE_COUNTERS = ("salvaged", "unreadable", "unreadable_rows", "unreadable_dead")

__all__ = [
    "DeadGroup",
    "Lease",
    "NotASpool",
    "SinkStatus",
    "SpoolStatus",
    "check_spool",
    "open_readonly",
    "read_status",
]


class NotASpool(ValueError):
    """The file is an SQLite database, but not a usagetap spool."""


@dataclass
class Lease:
    """Records of one sink leased (in flight) by one process (``rows``: how many records)."""

    pid: int
    rows: int
    expires: float
    alive: bool


@dataclass
class SinkStatus:
    """One sink's share of the spool, and what its workers last recorded."""

    sink: str
    pending: int = 0
    due: int = 0
    backoff: int = 0
    in_flight: int = 0
    stale: int = 0
    oldest: Optional[float] = None
    next_attempt: Optional[float] = None
    max_attempts: int = 0
    leases: list[Lease] = field(default_factory=list)
    dead_letters: int = 0
    counters: dict[str, int] = field(default_factory=dict)
    last_error: Optional[str] = None
    last_error_at: Optional[float] = None
    updated: Optional[float] = None
    halted: Optional[str] = None


@dataclass
class DeadGroup:
    """Dead letters of one sink with one reason."""

    sink: str
    reason: str
    count: int
    latest: float


@dataclass
class SpoolStatus:
    path: str
    size: int
    now: float
    sinks: list[SinkStatus]
    dead: list[DeadGroup]
    salvage: dict[str, Any] = field(default_factory=dict)

    @property
    def pending(self) -> int:
        return sum(s.pending for s in self.sinks)

    @property
    def dead_letters(self) -> int:
        return sum(g.count for g in self.dead)

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready view: times as ISO 8601 UTC, ages in seconds."""
        return {
            "spool": self.path,
            "bytes": self.size,
            "now": _iso(self.now),
            "pending": self.pending,
            "dead_letters": self.dead_letters,
            "sinks": [self._sink(s) for s in self.sinks],
            "dead_letters_by_reason": [
                {"sink": g.sink, "reason": g.reason, "count": g.count, "latest": _iso(g.latest)}
                for g in self.dead
            ],
            "salvage": self.salvage or None,
        }

    def _sink(self, s: SinkStatus) -> dict[str, Any]:
        return {
            "sink": s.sink,
            "pending": s.pending,
            "due": s.due,
            "backoff": s.backoff,
            "in_flight": s.in_flight,
            "stale_leases": s.stale,
            "oldest_pending": _iso(s.oldest),
            "oldest_age_seconds": None if s.oldest is None else round(max(0.0, self.now - s.oldest), 3),
            "next_attempt": _iso(s.next_attempt),
            "max_attempts": s.max_attempts,
            "leases": [
                {"pid": x.pid, "rows": x.rows, "expires": _iso(x.expires), "alive": x.alive} for x in s.leases
            ],
            "dead_letters": s.dead_letters,
            "counters": {name: s.counters.get(name, 0) for name in COUNTERS},
            "counters_updated": _iso(s.updated),
            "last_error": None
            if s.last_error is None
            else {"at": _iso(s.last_error_at), "message": s.last_error},
            "halted": s.halted,
        }


def _iso(moment: Optional[float]) -> Optional[str]:
    if moment is None:
        return None
    return datetime.fromtimestamp(moment, timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")


def check_spool(conn: sqlite3.Connection) -> None:
    """Raise :class:`NotASpool` unless ``conn`` is a usagetap spool (sqlite3.Error if no database)."""
    missing = db.missing_tables(conn)
    if missing:
        raise NotASpool(f"not a usagetap spool (no {', '.join(sorted(missing))} table)")


def open_readonly(path: str) -> sqlite3.Connection:
    """A read-only connection to the spool at ``path``.

    Raises FileNotFoundError when there is none, :class:`NotASpool` or sqlite3.Error when it is no spool.
    """
    target = Path(path)
    if not target.is_file():
        raise FileNotFoundError(path)
    conn = sqlite3.connect(
        f"{target.resolve().as_uri()}?mode=ro", uri=True, timeout=10.0, isolation_level=None
    )
    try:
        check_spool(conn)
    except (sqlite3.Error, NotASpool):
        conn.close()
        raise
    return conn


def read_status(
    conn: sqlite3.Connection,
    path: str,
    *,
    now: Optional[float] = None,
    alive: Callable[[int], bool] = pid_alive,
) -> SpoolStatus:
    """Everything ``usagetap status`` shows, read in one transaction."""
    now = time.time() if now is None else now
    sinks: dict[str, SinkStatus] = {}

    def sink(name: str) -> SinkStatus:
        return sinks.setdefault(name, SinkStatus(name))

    with db.snapshot(conn):
        for name, pending, oldest, max_attempts in db.waiting_by_sink(conn):
            s = sink(name)
            s.pending, s.oldest, s.max_attempts = pending, oldest, max_attempts
        for name, due, backoff, next_attempt in db.due_by_sink(conn, now):
            s = sink(name)
            s.due, s.backoff, s.next_attempt = due, backoff, next_attempt
        for name, pid, rows, expires in db.leases_by_sink(conn, now):
            lease = Lease(int(pid or 0), rows, expires, bool(pid) and alive(int(pid)))
            s = sink(name)
            s.leases.append(lease)
            s.in_flight += rows
        for name, stale in db.stale_by_sink(conn, now):
            sink(name).stale = stale
        dead = [
            DeadGroup(name, reason, count, latest) for name, reason, count, latest in db.dead_by_reason(conn)
        ]
        for group in dead:
            sink(group.sink).dead_letters += group.count
        prefix = status_key("")
        for key, value in db.meta_under(conn, prefix):
            _apply_meta(sink(key[len(prefix) :]), value)
        salvage = db.meta(conn, SALVAGE_KEY)
    size = db.file_bytes(conn)
    return SpoolStatus(path, size, now, sorted(sinks.values(), key=lambda s: s.sink), dead, _salvage(salvage))


def _salvage(value: Optional[str]) -> dict[str, Any]:
    """What was salvaged from a corrupt spool, and what could not be read (counters, source, time)."""
    if not value:  # nothing was ever salvaged into this spool
        return {}
    try:
        data = json.loads(value)
    except ValueError:
        return {}
    if not isinstance(data, dict):
        return {}
    out: dict[str, Any] = {name: int(data.get(name) or 0) for name in SALVAGE_COUNTERS}
    out["from"] = data.get("from") if isinstance(data.get("from"), str) else None
    out["at"] = _iso(_number(data.get("at")))
    return out


def _apply_meta(s: SinkStatus, value: str) -> None:
    try:
        data = json.loads(value)
    except ValueError:
        return
    if not isinstance(data, dict):
        return
    s.counters = {name: int(data.get(name) or 0) for name in COUNTERS}
    error = data.get("last_error")
    s.last_error = error if isinstance(error, str) else None
    s.last_error_at = _number(data.get("last_error_at"))
    halted = data.get("halted")
    s.halted = halted if isinstance(halted, str) else None
    s.updated = _number(data.get("updated"))


def _number(value: Any) -> Optional[float]:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None
