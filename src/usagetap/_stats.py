"""Process-wide counters: captured, sent, retried, dead, dropped (by reason), internal errors."""

from __future__ import annotations

import os
import threading

__all__ = ["incr", "reset", "snapshot"]

_lock = threading.Lock()
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


def _new_lock_in_child() -> None:
    global _lock
    _lock = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_new_lock_in_child)
