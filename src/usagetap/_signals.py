"""Keep every completed call when SIGTERM or SIGINT ends the process.

Python's default SIGTERM action (the normal container and gunicorn stop) kills
the process without running ``atexit``, so usagetap's exit flush never runs.
At start (see :func:`usagetap._runtime.start`), from the main thread, usagetap
installs a handler for SIGTERM and SIGINT, and only where it does not take one
away:

- the default action (``SIG_DFL``): the handler shuts usagetap down (flush
  within ``exit_timeout``, the rest stays in the spool), then re-delivers the
  signal with the default action, so the process ends as it would have, with
  the same exit status;
- a Python handler of the application's: ours commits what is buffered to the
  spool, then calls it (the application decides whether the process ends; its
  exit runs ``atexit``, which flushes);
- ``SIG_IGN`` and SIGINT's ``KeyboardInterrupt`` (which runs ``atexit``): left alone.
"""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Callable
from types import FrameType
from typing import Any, Optional

from ._log import internal_error

__all__ = ["install"]

_SIGNALS = ("SIGTERM", "SIGINT")
_installed: dict[int, Any] = {}  # signal -> the handler ours replaced


def install(stop: Callable[[], object], persist: Callable[[], object], grace: Callable[[], float]) -> None:
    """Install the handlers where usagetap may (main thread only; once per signal).

    ``stop`` shuts delivery down, ``persist`` commits buffered records to disk, ``grace`` is the
    longest ``stop`` may take.
    """
    if threading.current_thread() is not threading.main_thread():
        return
    for name in _SIGNALS:
        signum = getattr(signal, name, None)
        if signum is None or signum in _installed:
            continue
        try:
            previous = signal.getsignal(signum)
            if previous is signal.SIG_DFL:
                signal.signal(signum, _ending(stop, grace))
            elif callable(previous) and previous is not signal.default_int_handler:
                signal.signal(signum, _chained(previous, persist, grace))
            _installed[signum] = previous
        except (ValueError, OSError) as exc:  # not the main interpreter, or a signal we may not catch
            internal_error("signals", exc)


def _bounded(action: Callable[[], object], timeout: float) -> None:
    """Run ``action`` on a thread of its own, waiting at most ``timeout`` seconds.

    The signal interrupted the main thread anywhere, maybe holding a lock ``action`` needs: then
    the wait ends at ``timeout`` and what the last group commit wrote is what is kept.
    """
    thread = threading.Thread(target=action, name="usagetap-signal", daemon=True)
    thread.start()
    thread.join(timeout)


def _ending(
    stop: Callable[[], object], grace: Callable[[], float]
) -> Callable[[int, Optional[FrameType]], None]:
    def handler(signum: int, frame: Optional[FrameType]) -> None:
        try:
            _bounded(stop, grace() + 1.0)
        except Exception as exc:  # pragma: no cover - the signal is re-delivered whatever happens
            internal_error("signal", exc)
        signal.signal(signum, signal.SIG_DFL)
        os.kill(os.getpid(), signum)

    return handler


def _chained(
    previous: Callable[[int, Optional[FrameType]], Any],
    persist: Callable[[], object],
    grace: Callable[[], float],
) -> Callable[[int, Optional[FrameType]], Any]:
    def handler(signum: int, frame: Optional[FrameType]) -> Any:
        try:
            _bounded(persist, min(1.0, grace()))
        except Exception as exc:  # pragma: no cover
            internal_error("signal", exc)
        return previous(signum, frame)

    return handler
