"""Process-wide state: the configured pipeline, ``configure()``, ``flush()``, ``shutdown()``, exit hook."""

from __future__ import annotations

import atexit
import threading
from typing import Optional

from . import _stats
from .delivery import FlushResult, Item, Pipeline
from .record import UsageRecord
from .sinks.base import Sink

__all__ = ["capture", "configure", "flush", "get_pipeline", "shutdown", "submit"]

EXIT_TIMEOUT = 5.0

_lock = threading.Lock()
_pipeline: Optional[Pipeline] = None


def _default_sink() -> Sink:
    from .sinks.ledger import Ledger

    return Ledger()


def get_pipeline() -> Pipeline:
    """The pipeline records go to, created with the default sink on first use."""
    pipeline = _pipeline
    if pipeline is not None:
        return pipeline
    with _lock:
        if _pipeline is None:
            _install(Pipeline(_default_sink()))
        assert _pipeline is not None
        return _pipeline


def _install(pipeline: Pipeline) -> None:
    global _pipeline
    _pipeline = pipeline


def configure(
    *,
    sink: Optional[Sink] = None,
    flush_interval: float = 1.0,
    batch_size: int = 500,
    customer_policy: Optional[str] = None,
) -> None:
    """Choose where records go and how they are batched.

    With no call to ``configure()``, records go to a local SQLite ledger
    (``./.usagetap/ledger.db`` or ``$USAGETAP_DB``)::

        usagetap.configure(sink=usagetap.sinks.Memory(), flush_interval=0.5)

    Calling it again replaces the pipeline; what the old one still held is
    flushed to the old sink first.

    ``customer_policy`` says what happens to a call with no customer in scope:
    ``"allow"`` (the default: recorded with ``customer=None``, warned about
    once), ``"warn"`` (warned about every time) or ``"require"`` (raises
    :class:`usagetap.MissingCustomer` before the provider is called). Left
    out, the policy in effect stays.
    """
    if flush_interval <= 0:
        raise ValueError("flush_interval must be > 0")
    if batch_size < 1:
        raise ValueError("batch_size must be >= 1")
    if customer_policy is not None:
        from .policy import set_customer_policy

        set_customer_policy(customer_policy)
    new = Pipeline(
        sink if sink is not None else _default_sink(), batch_size=batch_size, flush_interval=flush_interval
    )
    with _lock:
        old = _pipeline
        _install(new)
    if old is not None:
        old.shutdown(timeout=EXIT_TIMEOUT)


def capture(record: UsageRecord) -> None:
    """Validate ``record`` (raising :class:`InvalidRecord`) and queue it for delivery; no I/O."""
    submit(record.validate())


def submit(item: Item) -> None:
    """Queue a record, or a capture that becomes one on the delivery worker; no I/O."""
    _stats.incr("captured")
    get_pipeline().submit(item)


def flush(timeout: Optional[float] = 5.0) -> FlushResult:
    """Deliver everything captured so far, waiting at most ``timeout`` seconds.

    Returns ``FlushResult(sent, pending, dead)``; it is truthy when nothing is pending.
    """
    pipeline = _pipeline
    if pipeline is None:
        return FlushResult(sent=0, pending=0, dead=0)
    return pipeline.flush(timeout)


def shutdown(timeout: Optional[float] = EXIT_TIMEOUT) -> FlushResult:
    """Flush within ``timeout`` and stop delivery; later records are refused until ``configure()``.

    Runs at interpreter exit with a 5 s deadline. Idempotent.
    """
    pipeline = _pipeline
    if pipeline is None:
        return FlushResult(sent=0, pending=0, dead=0)
    return pipeline.shutdown(timeout)


atexit.register(shutdown, EXIT_TIMEOUT)
