"""Process-wide counters: captured, sent, retried, dead, dropped (by reason), internal errors.

Every metered call counts, so counting takes no lock: each thread adds to its
own dict and :func:`snapshot` sums them. (With a lock, threads queue behind
a holder the GIL preempted, and a microsecond step takes milliseconds.) The
counts of threads that have ended are folded into one dict.
"""

from __future__ import annotations

import threading

from ._forksafe import module_lock

__all__ = ["incr", "reset", "snapshot"]

_lock = module_lock(globals(), "_lock")
_local = threading.local()
_live: list[tuple[threading.Thread, dict[str, int]]] = []
_ended: dict[str, int] = {}


def _own() -> dict[str, int]:
    counts: dict[str, int] = {}
    with _lock:
        _fold()
        _live.append((threading.current_thread(), counts))
    _local.counts = counts
    return counts


def _fold() -> None:
    """Move the counts of ended threads into ``_ended`` (holding ``_lock``)."""
    alive = []
    for thread, counts in _live:
        if thread.is_alive():
            alive.append((thread, counts))
        else:
            for name, n in counts.items():
                _ended[name] = _ended.get(name, 0) + n
    _live[:] = alive


def incr(name: str, n: int = 1) -> None:
    try:
        counts: dict[str, int] = _local.counts
    except AttributeError:
        counts = _own()
    counts[name] = counts.get(name, 0) + n


def snapshot() -> dict[str, int]:
    with _lock:
        _fold()
        total = dict(_ended)
        for _, counts in _live:
            for name, n in dict(counts).items():
                total[name] = total.get(name, 0) + n
    return total


def reset() -> None:
    with _lock:
        _ended.clear()
        for _, counts in _live:
            counts.clear()
