"""What the web integrations share: turn a resolver's answer into a ``customer()`` scope."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any, Optional, Union

from .. import _stats
from .._context import customer, customer_id
from .._log import log_once
from .._record import Scalar, validate_dimensions

__all__ = ["Resolved", "attribution", "missing", "resolver_failed"]

Resolved = Union[None, str, int, tuple[Union[str, int, None], Mapping[str, Scalar]]]
"""A resolver's answer: a customer id, ``None``, or ``(customer id or None, dimensions)``."""

Resolver = Callable[[Any], Any]


def attribution(resolved: Any, dimensions: Mapping[str, Scalar]) -> Optional[customer]:
    """The scope for ``resolved`` on top of the integration's fixed ``dimensions``; None if there is nothing.

    The id follows :func:`usagetap._context.customer_id`, except that an empty
    string means no customer (an empty header is an absent one). Raises
    ``TypeError`` (or ``ValueError``) for an answer of the wrong shape.
    """
    extra: Mapping[str, Any] = {}
    if isinstance(resolved, tuple):
        if len(resolved) != 2 or not isinstance(resolved[1], Mapping):
            raise TypeError("a resolver returns a customer id, None, or a (customer id, dimensions) pair")
        resolved, extra = resolved
    who = None if resolved == "" else customer_id(resolved, "resolver")
    merged = {**dimensions, **validate_dimensions(extra, where="resolver")} if extra else dimensions
    if who is None and not merged:
        return None
    return customer(who, **merged)


def resolver_failed(where: str, exc: BaseException) -> None:
    """Log (once per place and error type) and count a resolver that raised or answered nonsense."""
    _stats.incr("resolver_errors")
    log_once(
        logging.ERROR,
        f"resolver:{where}:{type(exc).__name__}",
        "usagetap: the customer resolver of %s failed; the request is served without a customer scope "
        "(further errors like it are counted in resolver_errors, not logged)",
        where,
        exc_info=exc,
    )


def missing(framework: str, extra: str) -> ImportError:
    """The error for an integration used without its framework installed."""
    return ImportError(
        f"usagetap's {framework} integration needs {framework}: pip install 'usagetap[{extra}]'"
    )
