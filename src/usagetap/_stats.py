"""Process-wide counters: captured, sent, retried, dead, dropped (by reason), internal errors.

Every counter in :data:`COUNTERS` is always in a snapshot, at 0 until it counts
(``stats()["dead"]`` never raises ``KeyError``).

Every metered call counts, so counting takes no lock: each thread adds to its
own dict and :func:`snapshot` sums them. (With a lock, threads queue behind
a holder the GIL preempted, and a microsecond step takes milliseconds.) The
counts of threads that have ended are folded into one dict. ``captured``, counted
once per call on the caller's thread, is ``next(STATE.captured)`` (an
``itertools.count``: atomic, and no Python call).
"""

from __future__ import annotations

import itertools
import threading

from ._forksafe import module_lock
from ._state import FORGET, STATE, on_reset

__all__ = ["COUNTERS", "incr", "reset", "snapshot"]

COUNTERS = (
    "captured",  # calls metered
    "spooled",  # records written to the spool
    "sent",  # records a backend acknowledged
    "duplicate",  # of those, ones it already had
    "retried",  # records kept for another attempt
    "dead",  # records a backend refused for good (dead letters)
    "dropped.invalid",  # records that failed validation
    "dropped.queue_full",  # overflow="drop_newest" with a full buffer
    "dropped.spool_full",
    "dropped.shutdown",  # still in memory when the final flush ran out of time
    "dropped.after_shutdown",  # captured after shutdown()
    "spool_failures",  # spool writes that failed (records kept in memory)
    "internal_errors",  # exceptions inside usagetap, never raised into the call
    "resolver_errors",  # customer resolvers of the integrations that raised
    "celery.bad_header",  # a Celery task header usagetap could not read
    "dimensions_capped",  # dimension keys or values cut at capture (see validate_dimensions)
    "partial.parts_exceed_total",  # usage whose parts exceed their total: recorded partial, cut
    "partial.out_of_range",  # a count above record.MAX_TOKENS: recorded partial, not billed
    "partial.not_a_count",  # a count that is negative, fractional or no number: partial, not billed
    "partial.invalid",  # a record that broke a rule: kept partial without its usage
    "spool_salvaged",  # records moved out of a corrupt spool into the fresh one
    "spool_unreadable",  # records a corrupt spool held that could not be read
    "spool_unreadable_rows",  # rows of a corrupt spool that could not be read at all (size unknown)
    "budget_store_errors",  # budget store operations that failed (reserve: on_error decides the call)
)

_lock = module_lock(globals(), "_lock")
_local = threading.local()


def _own() -> dict[str, int]:
    counts: dict[str, int] = {}
    with _lock:
        _fold()
        STATE.counts_live.append((threading.current_thread(), counts))
    _local.counts = counts
    return counts


def _fold() -> None:
    """Move the counts of ended threads into the ended counts (holding ``_lock``)."""
    alive = []
    for thread, counts in STATE.counts_live:
        if thread.is_alive():
            alive.append((thread, counts))
        else:
            for name, n in counts.items():
                STATE.counts_ended[name] = STATE.counts_ended.get(name, 0) + n
    STATE.counts_live[:] = alive


def incr(name: str, n: int = 1) -> None:
    try:
        counts: dict[str, int] = _local.counts
    except AttributeError:
        counts = _own()
    counts[name] = counts.get(name, 0) + n


def snapshot() -> dict[str, int]:
    with _lock:
        _fold()
        total = dict.fromkeys(COUNTERS, 0)
        total.update(STATE.counts_ended)
        for _, counts in STATE.counts_live:
            for name, n in dict(counts).items():
                total[name] = total.get(name, 0) + n
    total["captured"] += _value(STATE.captured)
    return total


def _value(counter: itertools.count[int]) -> int:
    """What ``counter`` has counted (the number it yields next): ``count(7)`` is its repr."""
    return int(repr(counter)[6:-1])


def reset() -> None:
    with _lock:
        STATE.counts_ended.clear()
        for _, counts in STATE.counts_live:
            counts.clear()
        STATE.captured = itertools.count()


on_reset(reset, FORGET)
