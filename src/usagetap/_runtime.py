"""Process-wide state: the configured pipeline, ``configure()``, ``flush()``, ``shutdown()``, exit hook."""

from __future__ import annotations

import atexit
import functools
import inspect
import os
import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Callable, Optional, TypeVar, Union, cast

from . import _stats
from ._forksafe import module_lock
from ._log import internal_error, log
from .delivery import DURABILITY, FlushResult, Settings, default_spool_path
from .errors import ConfigurationError
from .record import UsageRecord
from .sinks.base import Sink

if TYPE_CHECKING:
    from .delivery.pipeline import Item, Pipeline

__all__ = [
    "aflush",
    "capture",
    "configure",
    "flush",
    "flushing",
    "get_pipeline",
    "shutdown",
    "stats",
    "submit",
]

F = TypeVar("F", bound=Callable[..., Any])

_lock = module_lock(globals(), "_lock")
_pipeline: Optional[Pipeline] = None
_exit_timeout = 5.0
_started = False
_signals_done = False


def _default_sink() -> Sink:
    """The sink ``USAGETAP_SINK`` (and friends) describe, else the local ledger."""
    from .sinks._env import sink_from_env
    from .sinks.ledger import Ledger

    return sink_from_env(os.environ) or Ledger()


def _implicit_sink() -> Sink:
    """The default sink for a pipeline nobody configured: a bad environment is logged, not raised."""
    try:
        return _default_sink()
    except ConfigurationError as exc:
        from .sinks.ledger import Ledger

        log.error("usagetap: %s; records go to the local ledger instead", exc)
        return Ledger()


def _in_memory(sink: Sink) -> bool:
    """A sink that keeps records in this process only (:class:`~usagetap.sinks.Memory`): durability
    ``"memory"`` by default. Every other sink, the local ledger included, gets the spool."""
    from .sinks.memory import Memory

    return isinstance(sink, Memory)


def get_pipeline() -> Pipeline:
    """The pipeline records go to, created with the default sink on first use."""
    pipeline = _pipeline
    if pipeline is not None:
        return pipeline
    from .delivery.pipeline import Pipeline  # the threads, the spool and pricing: on first use

    with _lock:
        if _pipeline is None:
            sink = _implicit_sink()
            durability = "memory" if _in_memory(sink) else "spool"
            _install(Pipeline(sink, Settings(durability=durability, spool_path=default_spool_path())))
        assert _pipeline is not None
        return _pipeline


def _install(pipeline: Pipeline) -> None:
    global _pipeline
    _pipeline = pipeline


def configure(
    *,
    sink: Union[Sink, Sequence[Sink], None] = None,
    spool_path: Optional[str] = None,
    durability: Optional[str] = None,
    flush_interval: float = 1.0,
    batch_size: int = 500,
    commit_interval: float = 0.1,
    max_queue: int = 10_000,
    max_queue_bytes: int = 64 << 20,
    max_spool_bytes: int = 1 << 30,
    overflow: str = "drop_newest",
    block_timeout: float = 1.0,
    on_drop: Optional[Callable[[Optional[UsageRecord], str], None]] = None,
    lease_seconds: float = 120.0,
    exit_timeout: float = 5.0,
    customer_policy: Optional[str] = None,
) -> None:
    """Choose where records go and how they are kept until a sink acknowledges them.

    ::

        usagetap.configure(
            sink=usagetap.sinks.Spaire(api_key=...),   # or a list: each sink gets every record
            spool_path=".usagetap/spool.db",            # durable queue ($USAGETAP_SPOOL)
            durability="spool",                         # "memory" | "spool" | "sync"
            flush_interval=1.0, batch_size=500,
        )

    - ``durability``: ``"spool"`` (the default, the local ledger included)
      group-commits records to SQLite every ``commit_interval`` seconds (<= 0.1
      by default: the most a SIGKILL can lose); ``"sync"`` commits before the
      metered call returns; ``"memory"`` (default for the ``Memory`` sink)
      keeps them in memory, spilling to the spool what does not fit and what
      is left at exit.
    - ``max_queue`` / ``max_queue_bytes`` bound the in-memory buffer,
      ``max_spool_bytes`` the spool. When full, ``overflow="drop_newest"``
      drops (counted, and ``on_drop(record, reason)`` is called) or
      ``overflow="block"`` makes the caller wait up to ``block_timeout``.
    - ``flush_interval`` / ``batch_size``: a sink gets a batch when this many
      records are waiting, or this long after the first one.
    - ``exit_timeout``: the one deadline for delivering what is left at exit.
    - ``customer_policy``: what happens to a call with no customer in scope:
      ``"allow"`` (the default: recorded with ``customer=None``, warned about
      once), ``"warn"`` (warned about every time) or ``"require"`` (raises
      :class:`usagetap.MissingCustomer` before the provider is called). Left
      out, the policy in effect stays.

    With no call, records go to a SQLite ledger (``./.usagetap/ledger.db`` or
    ``$USAGETAP_DB``). Calling it again replaces the pipeline; the old one is
    flushed (and keeps what it could not deliver on disk).
    """
    if durability is not None and durability not in DURABILITY:
        raise ConfigurationError(f"durability must be one of {', '.join(DURABILITY)}, not {durability!r}")
    if overflow not in ("drop_newest", "block"):
        raise ConfigurationError(f"overflow must be 'drop_newest' or 'block', not {overflow!r}")
    for name, value in (
        ("flush_interval", flush_interval),
        ("commit_interval", commit_interval),
        ("lease_seconds", lease_seconds),
    ):
        if value <= 0:
            raise ConfigurationError(f"{name} must be > 0")
    for name, ivalue in (
        ("batch_size", batch_size),
        ("max_queue", max_queue),
        ("max_queue_bytes", max_queue_bytes),
    ):
        if ivalue < 1:
            raise ConfigurationError(f"{name} must be >= 1")
    if on_drop is not None and not callable(on_drop):
        raise ConfigurationError("on_drop must be callable")
    if customer_policy is not None:
        from .policy import set_customer_policy

        set_customer_policy(customer_policy)
    sinks: list[Sink] = (
        [_default_sink()]
        if sink is None
        else list(sink)
        if isinstance(sink, (list, tuple))
        else [cast(Sink, sink)]
    )
    for candidate in sinks:
        if not callable(getattr(candidate, "send", None)) or not isinstance(
            getattr(candidate, "name", None), str
        ):
            raise ConfigurationError(f"{candidate!r} is not a sink (it needs a name and send(records))")
    if durability is None:
        durability = "memory" if all(_in_memory(s) for s in sinks) else "spool"
    settings = Settings(
        durability=durability,
        spool_path=spool_path or default_spool_path(),
        flush_interval=flush_interval,
        batch_size=batch_size,
        commit_interval=commit_interval,
        max_queue=max_queue,
        max_queue_bytes=max_queue_bytes,
        max_spool_bytes=max_spool_bytes,
        overflow=overflow,
        block_timeout=block_timeout,
        on_drop=on_drop,
        lease_seconds=lease_seconds,
    )
    from .delivery.pipeline import Pipeline

    new = Pipeline(sinks, settings)
    global _exit_timeout
    with _lock:
        old = _pipeline
        _install(new)
        _exit_timeout = exit_timeout
    if old is not None:
        old.shutdown(timeout=exit_timeout)
    _install_signal_handlers()
    new.resume()


def start() -> None:
    """usagetap starts in this process: at the first ``wrap()``, ``instrument()``, ``record()``,
    ``flush()``, ``stats()`` or ``configure()`` (not at ``import usagetap``). Cheap after the first call.

    - the SIGTERM / SIGINT handlers are installed (see :mod:`usagetap._signals`);
    - genai-prices and tenacity are imported in the background (the first records are committed
      to the spool without waiting for them);
    - records an earlier process left in the default spool are delivered (and counted as pending)
      from now on, not from the first capture.
    """
    global _started
    if _started and (_signals_done or threading.current_thread() is not threading.main_thread()):
        return
    _started = True
    try:
        _install_signal_handlers()
        from .delivery.warmup import warm

        warm()
        if _pipeline is None and os.path.exists(default_spool_path()):
            get_pipeline().resume(wait=False)
    except Exception as exc:
        internal_error("start", exc)


def _install_signal_handlers() -> None:
    global _signals_done
    if threading.current_thread() is not threading.main_thread():
        return
    from . import _signals

    _signals.install(_stop_on_signal, _persist_on_signal, lambda: _exit_timeout)
    _signals_done = True


def _stop_on_signal() -> None:
    shutdown()


def _persist_on_signal() -> None:
    pipeline = _pipeline
    if pipeline is not None:
        pipeline.persist()


def capture(record: UsageRecord) -> None:
    """Validate ``record`` (raising :class:`InvalidRecord`) and queue it for delivery."""
    submit(record.validate())


def submit(item: Item) -> None:
    """Queue a record, or a capture that becomes one on the delivery thread."""
    _stats.incr("captured")
    if not _started:
        start()
    (_pipeline or get_pipeline()).submit(item)


def flush(timeout: Optional[float] = 5.0) -> FlushResult:
    """Deliver everything captured so far, waiting at most ``timeout`` seconds.

    Returns ``FlushResult(sent, pending, dead)``; it is truthy when nothing is pending::

        result = usagetap.flush(timeout=2.0)
        if not result:
            log.warning("%d usage records still pending", result.pending)

    What is still pending stays queued (on disk with a spool) and is delivered later.
    """
    start()
    pipeline = _pipeline
    if pipeline is None:
        return FlushResult(sent=0, pending=0, dead=0)
    return pipeline.flush(timeout)


async def aflush(timeout: Optional[float] = 5.0) -> FlushResult:
    """:func:`flush` for asyncio code: waits in a worker thread, never blocking the event loop.

    ::

        result = await usagetap.aflush(timeout=2.0)
    """
    import asyncio

    return await asyncio.get_running_loop().run_in_executor(None, flush, timeout)


def shutdown(timeout: Optional[float] = None) -> FlushResult:
    """Flush within ``timeout`` (default: ``exit_timeout``, 5 s) and stop delivery. Idempotent.

    Runs at interpreter exit and never hangs; what cannot be delivered in time
    stays in the spool for the next start. Later records are refused until
    ``configure()`` is called again. Call it yourself where exit hooks do not run::

        signal.signal(signal.SIGTERM, lambda *_: (usagetap.shutdown(timeout=3.0), sys.exit(0)))
    """
    pipeline = _pipeline
    if pipeline is None:
        return FlushResult(sent=0, pending=0, dead=0)
    return pipeline.shutdown(_exit_timeout if timeout is None else timeout)


def stats() -> dict[str, int]:
    """Counters since start: captured, spooled, sent, retried, duplicate, dead, dropped.<reason>, ...

    Plus ``pending``: records captured by this process and not yet delivered::

        counts = usagetap.stats()
        metrics.gauge("usagetap.pending", counts["pending"])
        metrics.gauge("usagetap.dead", counts.get("dead", 0))
    """
    start()
    counts = _stats.snapshot()
    pipeline = _pipeline
    if pipeline is not None:
        pipeline.resume()  # counts what an earlier process left in the spool
    counts["pending"] = pipeline.pending() if pipeline is not None else 0
    return counts


class flushing:
    """Flush before returning: for serverless handlers whose process may be frozen right after.

    ::

        @usagetap.flushing(timeout=2.0)
        def handler(event, context): ...

        with usagetap.flushing():
            ...

    Works on sync and async functions (and as ``async with``).
    """

    def __init__(self, timeout: float = 5.0) -> None:
        self.timeout = timeout

    def __enter__(self) -> flushing:
        return self

    def __exit__(self, *exc: object) -> None:
        flush(self.timeout)

    async def __aenter__(self) -> flushing:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await aflush(self.timeout)

    def __call__(self, fn: F) -> F:
        if inspect.iscoroutinefunction(fn):

            @functools.wraps(fn)
            async def run_async(*args: Any, **kwargs: Any) -> Any:
                async with self:
                    return await fn(*args, **kwargs)

            return cast(F, run_async)

        @functools.wraps(fn)
        def run(*args: Any, **kwargs: Any) -> Any:
            with self:
                return fn(*args, **kwargs)

        return cast(F, run)


def _at_exit() -> None:
    shutdown()


atexit.register(_at_exit)


class _Anchor:
    """Keeps the after-fork registration below alive (multiprocessing holds it weakly)."""


_anchor = _Anchor()


def _finalize_in_child(_: object) -> None:
    from multiprocessing import util

    util.Finalize(None, _at_exit, exitpriority=100)


def _child_exit_hook() -> None:
    """A multiprocessing child ends with os._exit, skipping atexit: flush through its finalizers.

    multiprocessing clears inherited finalizers when the child starts, then runs its
    after-fork hooks; registering one here puts our finalizer back at the right moment.
    """
    import sys

    if "multiprocessing" in sys.modules:
        try:
            from multiprocessing import util

            util.register_after_fork(_anchor, _finalize_in_child)
        except Exception:  # pragma: no cover
            pass


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_child_exit_hook)
