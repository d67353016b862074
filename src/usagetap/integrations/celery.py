"""Celery: a task runs in the customer scope of the code that queued it; workers flush when they stop.

::

    # where the Celery app is defined, imported by the web process and the worker alike
    from celery import Celery
    from usagetap.integrations import celery as usagetap_celery

    app = Celery("proj", broker="redis://...")
    usagetap_celery.install()

    # web process
    with usagetap.customer("org_42", feature="digest"):
        summarize.delay(doc_id)          # the LLM calls inside summarize bill org_42

Publishing a task copies the current scope (customer and dimensions) into one
message header, ``usagetap``; the worker opens that scope for the task's run
(``task_prerun`` … ``task_postrun``), and tasks queued from inside a task carry it
on. An explicit ``apply_async(headers={"usagetap": {...}})`` wins over the
ambient scope. Eager tasks (``task_always_eager``) run in the caller's scope as
they are. A worker flushes usagetap when it shuts down, in each pool process
(``worker_process_shutdown``: prefork children exit without running ``atexit``)
and in the main process (``worker_shutdown``).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any, Optional

from .. import _stats
from .._context import current_scope, customer
from .._log import guarded, log_once
from .._runtime import flush
from ._resolve import missing

__all__ = ["HEADER", "install", "uninstall"]

HEADER = "usagetap"
_ATTR = "_usagetap_scope"
_flush_timeout = 5.0


def _signals() -> Any:
    try:
        from celery import signals
    except ImportError:
        raise missing("Celery", "celery") from None
    return signals


def install(*, flush_timeout: float = 5.0) -> None:
    """Connect usagetap to Celery's signals (process-wide; calling it again only updates the timeout).

    ``flush_timeout`` bounds the flush when a worker (or one of its pool processes) stops.
    """
    global _flush_timeout
    if flush_timeout <= 0:
        raise ValueError("flush_timeout must be > 0")
    signals = _signals()
    _flush_timeout = flush_timeout
    for signal, handler in _handlers(signals):
        signal.connect(handler, weak=False, dispatch_uid=f"usagetap.{handler.__name__}")


def uninstall() -> None:
    """Disconnect what :func:`install` connected."""
    for signal, handler in _handlers(_signals()):
        signal.disconnect(handler, dispatch_uid=f"usagetap.{handler.__name__}")


def _handlers(signals: Any) -> list[tuple[Any, Any]]:
    return [
        (signals.before_task_publish, _on_publish),
        (signals.task_prerun, _on_prerun),
        (signals.task_postrun, _on_postrun),
        (signals.worker_process_shutdown, _on_shutdown),
        (signals.worker_shutdown, _on_shutdown),
    ]


def _on_publish(headers: Optional[dict[str, Any]] = None, **_: Any) -> None:
    guarded("celery.before_task_publish", _stamp, headers)


def _stamp(headers: Optional[dict[str, Any]]) -> None:
    scope = current_scope()
    if headers is None or (scope.customer is None and not scope.dimensions):
        return
    carried: dict[str, Any] = {"dimensions": dict(scope.dimensions)}
    if scope.customer is not None:
        carried["customer"] = scope.customer
    headers.setdefault(HEADER, carried)


def _on_prerun(task: Any = None, **_: Any) -> None:
    guarded("celery.task_prerun", _enter, task)


def _enter(task: Any) -> None:
    request = getattr(task, "request", None)
    carried = _carried(request)
    if carried is None:
        return
    scoped = _scope_of(carried)
    if scoped is None:
        return
    scoped.__enter__()
    setattr(request, _ATTR, scoped)


def _carried(request: Any) -> Optional[Any]:
    """The header as the worker sees it: an attribute of the task request (protocol 2), or in its headers."""
    if request is None:
        return None
    carried = getattr(request, HEADER, None)
    if carried is None:
        headers = getattr(request, "headers", None)
        carried = headers.get(HEADER) if isinstance(headers, Mapping) else None
    return carried


def _scope_of(carried: Any) -> Optional[customer]:
    try:
        if not isinstance(carried, Mapping):
            raise TypeError(f"the {HEADER!r} header is a {type(carried).__name__}, not a mapping")
        return customer(carried.get("customer"), **dict(carried.get("dimensions") or {}))
    except (TypeError, ValueError) as exc:
        _stats.incr("celery.bad_header")
        log_once(
            logging.WARNING,
            f"celery-header:{type(exc).__name__}",
            "usagetap: ignored a task's %r header (%s); the task runs without that customer scope",
            HEADER,
            exc,
        )
        return None


def _on_postrun(task: Any = None, **_: Any) -> None:
    guarded("celery.task_postrun", _exit, task)


def _exit(task: Any) -> None:
    request = getattr(task, "request", None)
    scoped = getattr(request, _ATTR, None)
    if scoped is None:
        return
    delattr(request, _ATTR)
    scoped.__exit__(None, None, None)


def _on_shutdown(**_: Any) -> None:
    guarded("celery.worker_shutdown", flush, _flush_timeout)
