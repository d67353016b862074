"""Attribution and runs: who a call is billed to, carried by ``contextvars``.

``customer("org_1", feature="chat")`` opens a scope; scopes nest (inner values
win, the outer scope is restored on exit, also on exceptions) and follow
asyncio tasks, which copy the context they were created in. Threads do not
inherit the context: hand them work through :func:`propagate`.

``track(customer=..., **dimensions)`` is a scope plus a :class:`~usagetap._runs.Run`
that totals the calls made inside it; :func:`current_run` returns the run in scope.
"""

from __future__ import annotations

import contextvars
import functools
import inspect
from collections.abc import AsyncGenerator, Callable, Generator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Optional, TypeVar, Union, cast

from ._record import Scalar, validate_dimensions
from ._runs import Run

if TYPE_CHECKING:
    from types import TracebackType

__all__ = ["Run", "Scope", "current_run", "current_scope", "customer", "propagate", "track"]

F = TypeVar("F", bound=Callable[..., Any])

CallArgs = Optional[tuple[Optional[inspect.Signature], tuple[Any, ...], dict[str, Any]]]


@dataclass
class Scope:
    """What is in effect for a call: the customer, the dimensions to stamp on its record, the run.

    A scope is made for one entry (:func:`enter_scope`), which sets its ``token``; nothing else
    changes it afterwards.
    """

    customer: Optional[str] = None
    dimensions: Mapping[str, Scalar] = field(default_factory=dict)
    run: Optional[Run] = field(default=None, compare=False)
    token: Optional[contextvars.Token[Scope]] = field(default=None, compare=False, repr=False)


CustomerId = Union[str, int, None]
"""What a customer id may be given as; it is kept as a ``str`` (see :func:`customer_id`)."""

_EMPTY = Scope()
_scope: contextvars.ContextVar[Scope] = contextvars.ContextVar("usagetap_scope", default=_EMPTY)
SCOPE = _scope
"""The scope in effect (:func:`current_scope` reads it; the per-call path reads it directly)."""


def current_scope() -> Scope:
    """The scope in effect in this context (an empty one outside any scope)."""
    return _scope.get()


def current_run() -> Optional[Run]:
    """The innermost ``usagetap.track()`` run in effect here, or None.

    ::

        @usagetap.track(customer=lambda org, **_: org, feature="research")
        def research(org: str, topic: str) -> None:
            ...
            run = usagetap.current_run()
            log.info("research for %s so far: %d tokens", org, run.total_tokens)
    """
    return _scope.get().run


def enter_scope(scope: Scope) -> None:
    """Make ``scope`` current; the matching :func:`exit_scope` restores the one before.

    The reset token lives on the scope itself, so one ``customer`` object can be
    entered concurrently from several threads or tasks.
    """
    scope.token = _scope.set(scope)


def exit_scope() -> None:
    token = _scope.get().token
    if token is None:
        raise RuntimeError("usagetap: scope exited more times than entered")
    try:
        _scope.reset(token)
    except ValueError:
        # entered in another context: a decorated generator resumed from another thread or task
        old = token.old_value
        _scope.set(_EMPTY if old is contextvars.Token.MISSING else old)


def customer_id(value: object, where: str) -> Optional[str]:
    """``value`` as a customer id: a ``str`` as is, an ``int`` as its decimal string, None as None.

    The one rule for every place that takes a customer id (scopes, runs,
    ``wrap()``, ``record()``, resolvers, limits). Raises ``TypeError`` for any
    other type (``bool`` included) and ``ValueError`` for an empty string.
    """
    if value is None:
        return None
    if isinstance(value, str):
        if not value:
            raise ValueError(f"{where}: customer id must not be empty")
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return str(int(value))
    raise TypeError(f"{where}: customer id must be a str, an int or None, got {type(value).__name__}")


class _Scoped:
    """What ``customer`` and ``track`` share: a context manager and a decorator over a new scope."""

    dimensions: dict[str, Scalar]

    def _scope(self, outer: Scope, call: CallArgs, name: Optional[str]) -> Scope:
        raise NotImplementedError

    def _finish(self, scope: Scope, error: Optional[BaseException]) -> None:
        pass

    def _merged(self, outer: Scope) -> Mapping[str, Scalar]:
        return {**outer.dimensions, **self.dimensions} if outer.dimensions else self.dimensions

    def __exit__(
        self,
        exc_type: Optional[type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> None:
        scope = _scope.get()
        exit_scope()
        self._finish(scope, exc)

    def __call__(self, fn: F) -> F:
        """Decorate a function, coroutine function, generator or async generator function."""
        name = getattr(fn, "__qualname__", None)
        if inspect.isasyncgenfunction(fn):
            return cast(F, _wrap_async_generator(self, fn, name))
        if inspect.isgeneratorfunction(fn):
            return cast(F, _wrap_generator(self, fn, name))
        if inspect.iscoroutinefunction(fn):
            return cast(F, _wrap_coroutine(self, fn, name))
        return cast(F, _wrap_function(self, fn, name))


class customer(_Scoped):
    """Attribute the calls made inside to a customer, with optional dimensions.

    Use it as a context manager or as a decorator (functions, coroutine
    functions, generators and async generators)::

        with usagetap.customer("org_123", feature="chat"):
            client.chat.completions.create(...)

        @usagetap.customer("org_123")
        def handler(): ...

    The id is a ``str``, or an ``int`` taken as its decimal string; ``None``
    keeps the enclosing customer and only adds dimensions.
    Dimension values must be ``str``, ``int``, ``float`` or ``bool``; anything
    else raises ``TypeError`` here, naming the key.
    """

    def __init__(self, customer: CustomerId, /, **dimensions: Any) -> None:
        self.customer_id = customer_id(customer, "usagetap.customer()")
        self.dimensions = validate_dimensions(dimensions, where="usagetap.customer()")

    def _scope(self, outer: Scope, call: CallArgs = None, name: Optional[str] = None) -> Scope:
        return Scope(
            customer=self.customer_id if self.customer_id is not None else outer.customer,
            dimensions=self._merged(outer),
            run=outer.run,
        )

    def __enter__(self) -> customer:
        enter_scope(self._scope(_scope.get()))
        return self

    def __repr__(self) -> str:
        return f"usagetap.customer({self.customer_id!r}, **{self.dimensions!r})"


CustomerSpec = Union[CustomerId, Callable[..., CustomerId]]


class track(_Scoped):
    """A customer scope that is also a run: its calls are totalled on a :class:`~usagetap._runs.Run`.

    ::

        with usagetap.track(customer="org_123", feature="research") as run:
            agent.answer(question)
        print(run.calls, run.input_tokens, run.output_tokens, run.cost)

        @usagetap.track(customer=lambda user_id, **_: user_id, feature="summarize")
        async def summarize(user_id: str, text: str) -> str:
            run = usagetap.current_run()
            ...

    ``customer`` is an id (``str``, or ``int`` taken as its decimal string),
    None (keep the enclosing customer), or, for the decorator, a callable
    given the decorated function's arguments by parameter name (defaults
    applied), so ``lambda user_id, **_: user_id`` picks one out however the
    function is called; what it returns follows the same rule.
    Each call of a decorated function (each iteration of a decorated
    generator, from first ``next()`` to its end) is one run. A run inside a
    run is its child: its calls count in both, and records carry the inner
    run's ``run_id`` and the outer one as ``parent_run_id``.
    """

    def __init__(self, customer: CustomerSpec = None, **dimensions: Any) -> None:
        self.customer = customer if callable(customer) else customer_id(customer, "usagetap.track()")
        self.dimensions = validate_dimensions(dimensions, where="usagetap.track()")

    def _scope(self, outer: Scope, call: CallArgs = None, name: Optional[str] = None) -> Scope:
        who = self.customer
        if callable(who):
            if call is None:
                raise TypeError(
                    "usagetap.track(customer=<callable>) needs the decorated function's arguments: "
                    "use it as a decorator, or pass a customer id to use it in a with statement"
                )
            who = customer_id(_call_with_arguments(who, *call), f"usagetap.track(customer={who!r})")
        billed = who if who is not None else outer.customer
        dimensions = self._merged(outer)
        run = Run(customer=billed, dimensions=dimensions, parent=outer.run, name=name)
        return Scope(customer=billed, dimensions=dimensions, run=run)

    def _finish(self, scope: Scope, error: Optional[BaseException]) -> None:
        if scope.run is not None:
            scope.run.end(error)

    def __enter__(self) -> Run:
        scope = self._scope(_scope.get())
        enter_scope(scope)
        assert scope.run is not None
        return scope.run

    def __repr__(self) -> str:
        return f"usagetap.track({self.customer!r}, **{self.dimensions!r})"


# -- decorators ------------------------------------------------------------


def _signature(fn: Callable[..., Any]) -> Optional[inspect.Signature]:
    try:
        return inspect.signature(fn)
    except (TypeError, ValueError):
        return None


def _call_with_arguments(
    pick: Callable[..., Any],
    signature: Optional[inspect.Signature],
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
) -> Any:
    """``pick`` called with the decorated function's arguments by parameter name, defaults applied."""
    if signature is None:
        return pick(*args, **kwargs)
    bound = signature.bind(*args, **kwargs)
    bound.apply_defaults()
    named: dict[str, Any] = {}
    for name, value in bound.arguments.items():
        if signature.parameters[name].kind is inspect.Parameter.VAR_KEYWORD:
            named.update(value)
        else:
            named[name] = value
    return pick(**named)


def _wrap_function(spec: _Scoped, fn: Callable[..., Any], name: Optional[str]) -> Callable[..., Any]:
    signature = _signature(fn)

    @functools.wraps(fn)
    def scoped(*args: Any, **kwargs: Any) -> Any:
        scope = spec._scope(_scope.get(), (signature, args, kwargs), name)
        enter_scope(scope)
        error: Optional[BaseException] = None
        try:
            return fn(*args, **kwargs)
        except BaseException as exc:
            error = exc
            raise
        finally:
            exit_scope()
            spec._finish(scope, error)

    return scoped


def _wrap_coroutine(spec: _Scoped, fn: Callable[..., Any], name: Optional[str]) -> Callable[..., Any]:
    signature = _signature(fn)

    @functools.wraps(fn)
    async def scoped(*args: Any, **kwargs: Any) -> Any:
        scope = spec._scope(_scope.get(), (signature, args, kwargs), name)
        enter_scope(scope)
        error: Optional[BaseException] = None
        try:
            return await fn(*args, **kwargs)
        except BaseException as exc:
            error = exc
            raise
        finally:
            exit_scope()
            spec._finish(scope, error)

    return scoped


class _Swap:
    """The scope of a suspended generator: in effect while its body runs, set aside while the consumer runs.

    Only usagetap's scope is swapped; scopes the body opens and keeps open
    across a ``yield`` are saved with it and come back on the next step.
    """

    __slots__ = ("inner", "outer", "scope")

    def __init__(self, spec: _Scoped, call: CallArgs, name: Optional[str]) -> None:
        self.outer = _scope.get()
        self.scope = self.inner = spec._scope(self.outer, call, name)
        _scope.set(self.inner)

    def suspend(self) -> None:
        self.inner = _scope.get()
        _scope.set(self.outer)

    def resume(self) -> None:
        self.outer = _scope.get()
        _scope.set(self.inner)

    def leave(self) -> None:
        _scope.set(self.outer)


def _wrap_generator(spec: _Scoped, fn: Callable[..., Any], name: Optional[str]) -> Callable[..., Any]:
    signature = _signature(fn)

    @functools.wraps(fn)
    def scoped(*args: Any, **kwargs: Any) -> Generator[Any, Any, Any]:
        swap = _Swap(spec, (signature, args, kwargs), name)
        error: Optional[BaseException] = None
        try:
            gen = fn(*args, **kwargs)
            value: Any = None
            thrown: Optional[BaseException] = None
            while True:
                try:
                    item = gen.send(value) if thrown is None else gen.throw(thrown)
                except StopIteration as stop:
                    return stop.value
                swap.suspend()
                try:
                    value, thrown = (yield item), None
                except GeneratorExit:
                    swap.resume()
                    gen.close()
                    raise
                except BaseException as exc:
                    value, thrown = None, exc
                swap.resume()
        except BaseException as exc:
            error = exc
            raise
        finally:
            swap.leave()
            spec._finish(swap.scope, error)

    return scoped


def _wrap_async_generator(spec: _Scoped, fn: Callable[..., Any], name: Optional[str]) -> Callable[..., Any]:
    signature = _signature(fn)

    @functools.wraps(fn)
    async def scoped(*args: Any, **kwargs: Any) -> AsyncGenerator[Any, Any]:
        swap = _Swap(spec, (signature, args, kwargs), name)
        error: Optional[BaseException] = None
        try:
            gen = fn(*args, **kwargs)
            value: Any = None
            thrown: Optional[BaseException] = None
            while True:
                try:
                    item = await (gen.asend(value) if thrown is None else gen.athrow(thrown))
                except StopAsyncIteration:
                    return
                swap.suspend()
                try:
                    value, thrown = (yield item), None
                except GeneratorExit:
                    swap.resume()
                    await gen.aclose()
                    raise
                except BaseException as exc:
                    value, thrown = None, exc
                swap.resume()
        except BaseException as exc:
            error = exc
            raise
        finally:
            swap.leave()
            spec._finish(swap.scope, error)

    return scoped


# -- threads ---------------------------------------------------------------


def propagate(fn: F) -> F:
    """Return ``fn`` bound to the caller's context: its customer scope and run follow it into other threads.

    Threads (``threading.Thread``, ``ThreadPoolExecutor``) start with an empty
    context, so calls made there would have no customer::

        with usagetap.track(customer="org_1") as run:
            with ThreadPoolExecutor() as pool:
                list(pool.map(usagetap.propagate(summarize), documents))
        run.calls  # includes the calls made in the pool

    The context is captured when ``propagate()`` is called (like
    ``contextvars.copy_context()``); each call of the returned function runs
    in its own copy, so it can run in several threads at once. asyncio tasks
    and ``asyncio.to_thread`` already carry the context and need no help; for
    a coroutine function, the returned coroutine function runs with the
    captured scope wherever it is awaited.
    """
    context = contextvars.copy_context()
    if inspect.iscoroutinefunction(fn):
        captured = _scope.get()

        @functools.wraps(fn)
        async def run_async(*args: Any, **kwargs: Any) -> Any:
            token = _scope.set(captured)
            try:
                return await fn(*args, **kwargs)
            finally:
                _scope.reset(token)

        return cast(F, run_async)

    @functools.wraps(fn)
    def run(*args: Any, **kwargs: Any) -> Any:
        return context.copy().run(fn, *args, **kwargs)

    return cast(F, run)
