"""Attribution: who a call is billed to, carried by ``contextvars``.

``customer("org_1", feature="chat")`` opens a scope; scopes nest (inner values
win, the outer scope is restored on exit, also on exceptions) and follow
asyncio tasks, which copy the context they were created in.
"""

from __future__ import annotations

import contextvars
import functools
import inspect
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Optional, TypeVar, cast

from .record import Scalar, validate_dimensions

if TYPE_CHECKING:
    from types import TracebackType

__all__ = ["Scope", "current_scope", "customer"]

F = TypeVar("F", bound=Callable[..., Any])


@dataclass(frozen=True)
class Scope:
    """What is in effect for a call: the customer and the dimensions to stamp on its record."""

    customer: Optional[str] = None
    dimensions: Mapping[str, Scalar] = field(default_factory=dict)
    token: Optional[contextvars.Token[Scope]] = field(default=None, compare=False, repr=False)


_EMPTY = Scope()
_scope: contextvars.ContextVar[Scope] = contextvars.ContextVar("usagetap_scope", default=_EMPTY)


def current_scope() -> Scope:
    """The scope in effect in this context (an empty one outside any scope)."""
    return _scope.get()


def enter_scope(scope: Scope) -> None:
    """Make ``scope`` current; the matching :func:`exit_scope` restores the one before.

    The reset token lives on the scope itself, so one ``customer`` object can be
    entered concurrently from several threads or tasks.
    """
    object.__setattr__(scope, "token", _scope.set(scope))


def exit_scope() -> None:
    token = _scope.get().token
    if token is None:
        raise RuntimeError("usagetap: scope exited more times than entered")
    _scope.reset(token)


class customer:
    """Attribute the calls made inside to a customer, with optional dimensions.

    Use it as a context manager or as a decorator (sync and async functions)::

        with usagetap.customer("org_123", feature="chat"):
            client.chat.completions.create(...)

        @usagetap.customer("org_123")
        def handler(): ...

    ``customer_id=None`` keeps the enclosing customer and only adds dimensions.
    Dimension values must be ``str``, ``int``, ``float`` or ``bool``; anything
    else raises ``TypeError`` here, naming the key.
    """

    def __init__(self, customer_id: Optional[str], /, **dimensions: Any) -> None:
        if customer_id is not None and not isinstance(customer_id, str):
            raise TypeError(f"customer id must be a string or None, got {type(customer_id).__name__}")
        if customer_id == "":
            raise ValueError("customer id must not be empty")
        self.customer_id = customer_id
        self.dimensions: dict[str, Scalar] = validate_dimensions(dimensions, where="usagetap.customer()")

    def _scope_under(self, outer: Scope) -> Scope:
        return Scope(
            customer=self.customer_id if self.customer_id is not None else outer.customer,
            dimensions={**outer.dimensions, **self.dimensions} if outer.dimensions else self.dimensions,
        )

    def __enter__(self) -> customer:
        enter_scope(self._scope_under(_scope.get()))
        return self

    def __exit__(
        self,
        exc_type: Optional[type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> None:
        exit_scope()

    def __call__(self, fn: F) -> F:
        if inspect.iscoroutinefunction(fn):

            @functools.wraps(fn)
            async def run_async(*args: Any, **kwargs: Any) -> Any:
                with self:
                    return await fn(*args, **kwargs)

            return cast(F, run_async)

        @functools.wraps(fn)
        def run(*args: Any, **kwargs: Any) -> Any:
            with self:
                return fn(*args, **kwargs)

        return cast(F, run)

    def __repr__(self) -> str:
        return f"usagetap.customer({self.customer_id!r}, **{self.dimensions!r})"
