"""The usagetap logger, once-only messages and the guard that keeps failures out of the host."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar, cast

from . import _stats
from ._forksafe import module_lock
from ._state import FORGET, STATE, on_reset

if TYPE_CHECKING:
    import logging

__all__ = ["DEBUG", "ERROR", "INFO", "WARNING", "guarded", "log", "log_once"]

DEBUG, INFO, WARNING, ERROR = 10, 20, 30, 40  # logging's levels, without importing it with usagetap


class _Logger:
    """The ``usagetap`` logger, looked up (and :mod:`logging` imported) when first used."""

    __slots__ = ()

    def __getattr__(self, name: str) -> Any:
        import logging

        return getattr(logging.getLogger("usagetap"), name)

    def __repr__(self) -> str:
        return "<usagetap logger>"


log = cast("logging.Logger", _Logger())

_seen_lock = module_lock(globals(), "_seen_lock")

T = TypeVar("T")


def log_once(level: int, key: str, msg: str, *args: Any, exc_info: BaseException | None = None) -> bool:
    """Log ``msg`` the first time ``key`` is seen in this process; return whether it was logged."""
    with _seen_lock:
        if key in STATE.logged_once:
            return False
        STATE.logged_once.add(key)
    log.log(level, msg, *args, exc_info=exc_info)
    return True


def reset_once() -> None:
    """Forget which once-only messages were logged (tests)."""
    with _seen_lock:
        STATE.logged_once.clear()


def guarded(where: str, fn: Callable[..., T], *args: Any, default: Any = None, **kwargs: Any) -> Any:
    """Call ``fn``; on any exception log it once per place and type, count it, and return ``default``."""
    try:
        return fn(*args, **kwargs)
    except Exception as exc:
        internal_error(where, exc)
        return default


def internal_error(where: str, exc: BaseException) -> None:
    """Record an exception raised inside usagetap, without re-raising it."""
    _stats.incr("internal_errors")
    log_once(
        ERROR,
        f"internal:{where}:{type(exc).__name__}",
        "usagetap: internal error in %s; the call itself was not affected "
        "(further errors like it are counted in usagetap.stats(), not logged)",
        where,
        exc_info=exc,
    )


on_reset(reset_once, FORGET)
