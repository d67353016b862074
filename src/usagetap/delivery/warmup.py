"""Import what delivery needs (genai-prices and its price data, tenacity) once, in the background.

Started at :func:`usagetap._runtime.start`, before the first capture, so the
first group commit does not wait for it: until it is done, records are
committed unpriced, and the sinks' workers wait for it before their first
send (so one thread imports them).

A fork in the middle of an import leaves the module's import lock held, or the
module half initialised, in the child forever. So a fork waits (at most
``FORK_WAIT`` seconds) while the warm-up or a sink's first send (which imports
its HTTP client's modules) is :func:`guarded`.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Iterator

from .._forksafe import module_lock
from .._log import internal_error

__all__ = ["FORK_WAIT", "guarded", "is_warm", "wait", "warm"]

FORK_WAIT = 10.0

_started = threading.Event()
_done = threading.Event()
_idle = threading.Event()
_idle.set()
_active = 0
_lock = module_lock(globals(), "_lock")


def is_warm() -> bool:
    """Whether pricing can run without importing anything."""
    return _done.is_set()


def warm() -> None:
    """Start the warm-up on a thread of its own (once per process)."""
    if _started.is_set():
        return
    with _lock:
        if _started.is_set():
            return
        _started.set()
        _enter()
        threading.Thread(target=_import, name="usagetap-warm", daemon=True).start()


def wait(timeout: float = 30.0) -> bool:
    """Warm up (if nobody started it) and wait for it; True when done."""
    warm()
    return _done.wait(timeout)


@contextlib.contextmanager
def guarded() -> Iterator[None]:
    """A section a fork waits for (it may import modules)."""
    with _lock:
        _enter()
    try:
        yield
    finally:
        _leave()


def _enter() -> None:
    global _active
    _active += 1
    _idle.clear()


def _leave() -> None:
    global _active
    with _lock:
        _active -= 1
        if not _active:
            _idle.set()


def _import() -> None:
    try:
        import tenacity  # noqa: F401
        from genai_prices import Usage, calc_price

        calc_price(Usage(input_tokens=1), "gpt-4o", provider_id="openai")  # loads the price data
    except Exception as exc:  # pragma: no cover - a broken install is reported where pricing runs
        internal_error("import", exc)
    finally:
        _done.set()
        _leave()


def _before_fork() -> None:
    """Wait for the guarded sections under way, then hold the lock through the fork (none starts)."""
    deadline = time.monotonic() + FORK_WAIT
    while True:
        _lock.acquire()
        left = deadline - time.monotonic()
        if _idle.is_set() or left <= 0:
            return
        _lock.release()
        _idle.wait(left)


def _after_fork_in_parent() -> None:
    _lock.release()


def _after_fork_in_child() -> None:
    global _active
    _active = 0
    _idle.set()
    if not _done.is_set():  # the warm-up thread is the parent's: the child starts its own if needed
        _started.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(
        before=_before_fork, after_in_parent=_after_fork_in_parent, after_in_child=_after_fork_in_child
    )
