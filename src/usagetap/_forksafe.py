"""Locks that survive ``fork()``.

A lock held by another thread at ``fork()`` stays held forever in the child,
where that thread does not exist. Every module-level lock in usagetap is made
here, and the child gets fresh ones. SQLite keeps its own internal mutexes,
which cannot be renewed, so every SQLite call usagetap makes holds
:data:`SQLITE` and a fork waits for it.
"""

from __future__ import annotations

import os
import threading
from typing import Any

__all__ = ["SQLITE", "module_lock"]

SQLITE = threading.RLock()

_registered: list[tuple[dict[str, Any], str]] = []


def module_lock(namespace: dict[str, Any], name: str) -> threading.Lock:
    """A new lock stored as ``namespace[name]``, replaced by a fresh one in forked children."""
    lock = threading.Lock()
    namespace[name] = lock
    _registered.append((namespace, name))
    return lock


def _in_child() -> None:
    SQLITE.release()
    for namespace, name in _registered:
        namespace[name] = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(before=SQLITE.acquire, after_in_parent=SQLITE.release, after_in_child=_in_child)
