"""Process-wide state: the configured pipeline, ``configure()``, ``flush()``, ``shutdown()``, exit hook."""

from __future__ import annotations

import atexit
import functools
import inspect
import os
import sys
import threading
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, NamedTuple, Optional, TypeVar, Union, cast

from . import _stats
from ._forksafe import module_lock
from ._log import internal_error, log
from ._record import UsageRecord
from ._spans import SPANS
from ._state import DEFAULT_EXIT_TIMEOUT, STATE, STOP, on_reset
from .delivery import DURABILITY, FlushResult, Settings, default_spool_path
from .errors import ConfigurationError
from .publish import register
from .sinks.base import Sink, as_sink, is_sink

if TYPE_CHECKING:
    from .delivery.intake import Captured
    from .delivery.pipeline import Pipeline
    from .limits import PastSpend, SpendSource

__all__ = [
    "aflush",
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
_configuring = module_lock(globals(), "_configuring")  # one configure() at a time


class _Unset:
    def __repr__(self) -> str:
        return "<unchanged>"


_UNSET: Any = _Unset()  # a configure() parameter left out: the value in effect stays

# configure() parameters that shape the pipeline (changing one builds a new pipeline, same sinks)
_PIPELINE = (
    "sink",
    "spool_path",
    "durability",
    "flush_interval",
    "batch_size",
    "commit_interval",
    "max_queue",
    "max_queue_bytes",
    "max_spool_bytes",
    "overflow",
    "block_timeout",
    "on_drop",
    "lease_seconds",
)


def _default_sink() -> Sink:
    """The sink ``USAGETAP_SINK`` (and friends) describe, else the local ledger."""
    from .sinks._env import sink_from_env
    from .sinks.ledger import Ledger

    return sink_from_env(os.environ) or Ledger()


def _implicit_sink() -> Sink:
    """The default sink for a pipeline nobody configured.

    A bad environment is logged, not raised, and never sends the records elsewhere: they wait in
    the spool, under the name of the sink the environment names, with its delivery halted.
    """
    try:
        return _default_sink()
    except ConfigurationError as exc:
        from .sinks._env import Unbuildable, sink_name_from_env

        placeholder = Unbuildable(sink_name_from_env(os.environ), str(exc))
        log.error(
            "usagetap: %s. Usage records for sink %s are kept in the spool %s and not delivered "
            "until the environment is fixed (see 'usagetap status')",
            exc,
            placeholder.name,
            default_spool_path(),
        )
        return cast(Sink, placeholder)


def _in_memory(sink: Sink) -> bool:
    """A sink that keeps records in this process only (:class:`~usagetap.sinks.Memory`): durability
    ``"memory"`` by default. Every other sink, the local ledger included, gets the spool."""
    from .sinks.memory import Memory

    return isinstance(sink, Memory)


def _unbuilt(sinks: Sequence[Sink]) -> bool:
    return any(as_sink(s).unavailable for s in sinks)


def get_pipeline() -> Pipeline:
    """The pipeline records go to, created with the default sink on first use."""
    pipeline = STATE.pipeline
    if pipeline is not None:
        return pipeline
    from .delivery.pipeline import Pipeline  # the threads, the spool and pricing: on first use

    with _lock:
        if STATE.pipeline is None:
            sink = _implicit_sink()
            _install(Pipeline(sink, _settings([sink], STATE.named)))
        assert STATE.pipeline is not None
        return STATE.pipeline


def _install(pipeline: Optional[Pipeline]) -> None:
    """Make ``pipeline`` the one records go to; its local ledger (if any) tells limits past spend."""
    STATE.pipeline = pipeline
    STATE.spend_source = _FIRST_PIPELINE if pipeline is None else _ledger_of(pipeline.sinks)


def _ledger_of(sinks: Sequence[Sink]) -> Optional[SpendSource]:
    """The first local ledger among ``sinks`` (none unless a Ledger was made: sqlite3 stays unloaded)."""
    ledger = sys.modules.get("usagetap.sinks.ledger")
    if ledger is None:
        return None
    return next((sink for sink in sinks if isinstance(sink, ledger.Ledger)), None)


class _FirstPipeline:
    """The spend source before any pipeline is built: the ledger of the one built on first use."""

    def spent(
        self, customer: str, starts: Sequence[Optional[datetime]], until: datetime
    ) -> Optional[list[PastSpend]]:
        get_pipeline()
        source = STATE.spend_source
        if source is None or source is self:
            return None
        return source.spent(customer, starts, until)


_FIRST_PIPELINE = _FirstPipeline()
STATE.spend_source = _FIRST_PIPELINE


def _check(named: dict[str, Any]) -> None:
    """Raise :class:`ConfigurationError` for a bad value among the parameters given."""
    durability = named.get("durability")
    if durability is not None and durability not in DURABILITY:
        raise ConfigurationError(f"durability must be one of {', '.join(DURABILITY)}, not {durability!r}")
    overflow = named.get("overflow", "drop_newest")
    if overflow not in ("drop_newest", "block"):
        raise ConfigurationError(f"overflow must be 'drop_newest' or 'block', not {overflow!r}")
    for name in ("flush_interval", "commit_interval", "lease_seconds"):
        if name in named and named[name] <= 0:
            raise ConfigurationError(f"{name} must be > 0")
    for name in ("batch_size", "max_queue", "max_queue_bytes"):
        if name in named and named[name] < 1:
            raise ConfigurationError(f"{name} must be >= 1")
    if named.get("on_drop") is not None and not callable(named["on_drop"]):
        raise ConfigurationError("on_drop must be callable")
    if "enabled" in named and not isinstance(named["enabled"], bool):
        raise ConfigurationError(f"enabled must be True or False, not {named['enabled']!r}")
    policy = named.get("customer_policy")
    if policy is not None:
        from ._customer_policy import CUSTOMER_POLICIES

        if policy not in CUSTOMER_POLICIES:
            raise ConfigurationError(
                f"customer_policy must be one of {', '.join(map(repr, CUSTOMER_POLICIES))}; got {policy!r}"
            )


def _sink_list(sink: Union[Sink, Sequence[Sink]]) -> list[Sink]:
    sinks = list(sink) if isinstance(sink, (list, tuple)) else [cast(Sink, sink)]
    if not sinks:
        raise ConfigurationError("sink needs at least one sink")
    for candidate in sinks:
        if not is_sink(candidate):
            raise ConfigurationError(f"{candidate!r} is not a sink (it needs a name and send(records))")
    return sinks


def _settings(sinks: Sequence[Sink], named: dict[str, Any]) -> Settings:
    """The pipeline's settings: each parameter as last named, else its default."""
    durability = named.get("durability")
    if durability is None:
        durability = "memory" if all(_in_memory(s) for s in sinks) else "spool"
    given: dict[str, Any] = {k: v for k, v in named.items() if k not in ("sink", "durability", "spool_path")}
    return Settings(
        durability=durability, spool_path=named.get("spool_path") or default_spool_path(), **given
    )


def _changes(named: dict[str, Any], pipeline: Pipeline) -> bool:
    """Whether the pipeline parameters in ``named`` differ from those ``pipeline`` runs with."""
    for key, value in named.items():
        if key == "sink":
            if len(value) != len(pipeline.sinks) or any(
                a is not b for a, b in zip(value, pipeline.sinks, strict=False)
            ):
                return True
        elif key not in STATE.named or (STATE.named[key] is not value and STATE.named[key] != value):
            return True
    return False


def configure(
    *,
    sink: Union[Sink, Sequence[Sink], None] = _UNSET,
    spool_path: Optional[str] = _UNSET,
    durability: Optional[str] = _UNSET,
    flush_interval: float = _UNSET,
    batch_size: int = _UNSET,
    commit_interval: float = _UNSET,
    max_queue: int = _UNSET,
    max_queue_bytes: int = _UNSET,
    max_spool_bytes: int = _UNSET,
    overflow: str = _UNSET,
    block_timeout: float = _UNSET,
    on_drop: Optional[Callable[[Optional[UsageRecord], str], None]] = _UNSET,
    lease_seconds: float = _UNSET,
    exit_timeout: float = _UNSET,
    customer_policy: Optional[str] = _UNSET,
    enabled: bool = _UNSET,
) -> None:
    """Choose where records go and how they are kept until a sink acknowledges them.

    ::

        usagetap.configure(
            sink=usagetap.sinks.Spaire(api_key=...),   # or a list: each sink gets every record
            spool_path=".usagetap/spool.db",            # durable queue ($USAGETAP_SPOOL)
            durability="spool",                         # "memory" | "spool" | "sync"
            flush_interval=1.0, batch_size=500,
        )
        usagetap.configure(customer_policy="require")  # later: the sink above stays

    Each call changes only the parameters it names; the others keep the value
    in effect (their default until named). A sink is replaced only by naming
    another one.

    - ``sink``: with none named, the one ``USAGETAP_SINK`` describes (a bad
      environment raises :class:`ConfigurationError`), else the local ledger.
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
      :class:`usagetap.MissingCustomer` before the provider is called).
    - ``enabled=False`` turns metering off (as ``USAGETAP_DISABLED=1`` does):
      ``wrap()`` returns clients untouched, ``instrument()`` patches nothing,
      and clients wrapped or instrumented before pass every call straight
      through until ``enabled=True``.

    With no call, records go to a SQLite ledger (``./.usagetap/ledger.db`` or
    ``$USAGETAP_DB``). Changing ``sink`` or another delivery parameter builds a
    new pipeline with the same sinks (unless ``sink`` is named); the old one
    delivers what it can within ``exit_timeout`` without waiting for a halted
    or pausing sink, and what it could not deliver stays in the spool.
    """
    given: dict[str, Any] = {
        "sink": sink,
        "spool_path": spool_path,
        "durability": durability,
        "flush_interval": flush_interval,
        "batch_size": batch_size,
        "commit_interval": commit_interval,
        "max_queue": max_queue,
        "max_queue_bytes": max_queue_bytes,
        "max_spool_bytes": max_spool_bytes,
        "overflow": overflow,
        "block_timeout": block_timeout,
        "on_drop": on_drop,
        "lease_seconds": lease_seconds,
        "exit_timeout": exit_timeout,
        "customer_policy": customer_policy,
        "enabled": enabled,
    }
    named = {k: v for k, v in given.items() if v is not _UNSET}
    _check(named)
    if named.get("sink") is not None:
        named["sink"] = _sink_list(named["sink"])
    elif "sink" in named:
        del named["sink"]  # sink=None: the sink in effect stays
    with _configuring:
        _reconfigure(named)


def _reconfigure(named: dict[str, Any]) -> None:
    delivery = {k: v for k, v in named.items() if k in _PIPELINE}
    current = STATE.pipeline
    # a sink the environment names but that could not be built is built now, or the error raised
    rebuild = current is None or current.closed or _unbuilt(current.sinks) or _changes(delivery, current)
    sinks: list[Sink] = []
    if rebuild:
        if "sink" in delivery:
            sinks = delivery["sink"]
        elif current is not None and not _unbuilt(current.sinks):
            sinks = current.sinks
        else:
            sinks = [_default_sink()]  # a bad environment raises here
    if named.get("customer_policy") is not None:
        from ._customer_policy import set_customer_policy

        set_customer_policy(named["customer_policy"])
    if "enabled" in named:
        from . import _switch

        _switch.set_enabled(named["enabled"])
    if "exit_timeout" in named:
        STATE.exit_timeout = named["exit_timeout"]
    if not rebuild:
        STATE.named.update(delivery)
        return
    from .delivery.pipeline import Pipeline

    settings = {**STATE.named, **delivery}
    new = Pipeline(sinks, _settings(sinks, settings))
    STATE.named.clear()
    STATE.named.update(settings)
    with _lock:
        old = STATE.pipeline
        _install(new)
    if old is not None:
        old.shutdown(timeout=STATE.exit_timeout, keep_open=sinks, skip_paused=True, successor=new)
    _install_signal_handlers()
    if old is not None:
        new.adopt()
    else:
        new.resume()


def reset_configuration() -> None:
    """Forget the pipeline and every parameter configure() was given (for tests)."""
    from . import _switch

    with _configuring:
        STATE.named.clear()
        _install(None)
        STATE.exit_timeout = DEFAULT_EXIT_TIMEOUT
        _switch.reset()


class Saved(NamedTuple):
    """What :func:`saved_configuration` took: the pipeline (None: none built yet) and parameters."""

    pipeline: Optional[Pipeline]
    closed: bool
    named: dict[str, Any]
    exit_timeout: float
    customer_policy: str
    enabled: bool


def saved_configuration() -> Saved:
    """The configuration in effect, for :func:`restore_configuration` (``testing.recording()``)."""
    from . import _switch

    with _configuring:
        closed = STATE.pipeline is not None and STATE.pipeline.closed
        return Saved(
            STATE.pipeline,
            closed,
            dict(STATE.named),
            STATE.exit_timeout,
            STATE.customer_policy,
            _switch.enabled,
        )


def restore_configuration(saved: Saved) -> None:
    """Put back what :func:`saved_configuration` took: its sinks, parameters, exit deadline,
    customer policy and kill switch.

    The pipeline in effect is shut down first (what it could not deliver stays in the spool).
    A configuration that had built no pipeline yet builds its default one on next use again;
    one that was shut down stays shut down.
    """
    from . import _switch

    with _configuring:
        current = STATE.pipeline
        if current is not None and not current.closed:
            current.shutdown(timeout=STATE.exit_timeout)
        STATE.customer_policy = saved.customer_policy
        _switch.set_enabled(saved.enabled)
        STATE.named.clear()
        STATE.named.update(saved.named)
        STATE.exit_timeout = saved.exit_timeout
        old = saved.pipeline
        if old is None or saved.closed or _unbuilt(old.sinks):
            with _lock:
                _install(None if old is None or _unbuilt(old.sinks) else old)
            return
        from .delivery.pipeline import Pipeline

        restored = Pipeline(old.sinks, _settings(old.sinks, STATE.named))
        with _lock:
            _install(restored)
    restored.resume()


def start() -> None:
    """usagetap starts in this process: at the first ``wrap()``, ``instrument()``, ``record()``,
    ``flush()``, ``stats()`` or ``configure()`` (not at ``import usagetap``). Cheap after the first call.

    - the SIGTERM / SIGINT handlers are installed (see :mod:`usagetap._signals`);
    - genai-prices and tenacity are imported in the background (the first records are committed
      to the spool without waiting for them);
    - records an earlier process left in the default spool are delivered (and counted as pending)
      from now on, not from the first capture.
    """
    if STATE.started and (
        STATE.signals_installed or threading.current_thread() is not threading.main_thread()
    ):
        return
    STATE.started = True
    try:
        _install_signal_handlers()
        from .delivery.warmup import warm

        warm()
        if STATE.pipeline is None and os.path.exists(default_spool_path()):
            get_pipeline().resume(wait=False)
    except Exception as exc:
        internal_error("start", exc)


def _install_signal_handlers() -> None:
    if threading.current_thread() is not threading.main_thread():
        return
    from . import _signals

    _signals.install(_stop_on_signal, _persist_on_signal, lambda: STATE.exit_timeout)
    STATE.signals_installed = True


def _stop_on_signal() -> None:
    shutdown()


def _persist_on_signal() -> None:
    pipeline = STATE.pipeline
    if pipeline is not None:
        pipeline.persist()


class Delivery:
    """The consumer of finished calls that queues each for delivery (see :mod:`usagetap.publish`)."""

    def on_end(self, capture: Captured) -> None:
        """Queue a record, or a capture that becomes one on the intake thread."""
        next(STATE.captured)
        pipeline = STATE.pipeline
        if pipeline is None or not STATE.started:
            start()
            pipeline = get_pipeline()
        pipeline.submit(capture)


DELIVERY = Delivery()
register(DELIVERY)
register(SPANS)
submit = DELIVERY.on_end


def flush(timeout: Optional[float] = 5.0) -> FlushResult:
    """Deliver everything captured so far, waiting at most ``timeout`` seconds.

    Returns ``FlushResult(sent, pending, dead)``; it is truthy when nothing is pending::

        result = usagetap.flush(timeout=2.0)
        if not result:
            log.warning("%d usage records still pending", result.pending)

    What is still pending stays queued (on disk with a spool) and is delivered later.
    """
    start()
    pipeline = STATE.pipeline
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
    pipeline = STATE.pipeline
    if pipeline is None:
        return FlushResult(sent=0, pending=0, dead=0)
    return pipeline.shutdown(STATE.exit_timeout if timeout is None else timeout)


def stats() -> dict[str, int]:
    """Counters since start, every one always present (0 until it counts): ``captured``, ``spooled``,
    ``sent``, ``duplicate``, ``retried``, ``dead``, ``dropped.invalid``, ``dropped.queue_full``,
    ``dropped.spool_full``, ``dropped.shutdown``, ``dropped.after_shutdown``, ``spool_failures``,
    ``internal_errors``, ``resolver_errors``, ``celery.bad_header``, ``dimensions_capped``,
    ``partial.parts_exceed_total``, ``partial.out_of_range``, ``partial.not_a_count``,
    ``partial.invalid`` (calls recorded partial, and why), ``spool_salvaged``, ``spool_unreadable``,
    ``spool_unreadable_rows`` (what a corrupt spool gave up and lost), ``budget_store_errors``
    (budget store operations that failed; see ``limits.use_store``).

    Plus ``pending``: records captured by this process and not yet delivered; ``halted``: sinks
    whose delivery is halted (a rejected key, a sink that could not be built); ``misconfigured``:
    1 when ``USAGETAP_SINK`` and its variables name a sink that cannot be built, so records wait
    in the spool for it::

        counts = usagetap.stats()
        metrics.gauge("usagetap.pending", counts["pending"])
        metrics.gauge("usagetap.dead", counts["dead"])
    """
    start()
    counts = _stats.snapshot()
    pipeline = STATE.pipeline
    if pipeline is not None:
        pipeline.resume()  # counts what an earlier process left in the spool
    counts["pending"] = pipeline.pending() if pipeline is not None else 0
    counts["halted"] = pipeline.halted() if pipeline is not None else 0
    counts["misconfigured"] = int(pipeline is not None and _unbuilt(pipeline.sinks))
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
    if "multiprocessing" in sys.modules:
        try:
            from multiprocessing import util

            util.register_after_fork(_anchor, _finalize_in_child)
        except Exception:  # pragma: no cover
            pass


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_child_exit_hook)


def _reset() -> None:
    shutdown(timeout=DEFAULT_EXIT_TIMEOUT)
    reset_configuration()
    STATE.consumers = (DELIVERY, SPANS)


on_reset(_reset, STOP)
