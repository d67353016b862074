"""Process-wide counters: captured, sent, retried, dead, dropped (by reason), internal errors."""

from __future__ import annotations

from ._forksafe import module_lock

__all__ = ["incr", "reset", "snapshot"]

_lock = module_lock(globals(), "_lock")
_counters: dict[str, int] = {}


def incr(name: str, n: int = 1) -> None:
    with _lock:
        _counters[name] = _counters.get(name, 0) + n


def snapshot() -> dict[str, int]:
    with _lock:
        return dict(_counters)


def reset() -> None:
    with _lock:
        _counters.clear()
