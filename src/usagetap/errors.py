"""Exceptions raised by usagetap.

The tree::

    UsagetapError
    ├── ConfigurationError    bad configure() arguments or environment
    ├── InvalidRecord         a usage record failed validation (never reaches a sink)
    ├── MissingCustomer       customer policy "require" and no customer in scope
    └── BudgetExceeded        a budget limit would be exceeded; the provider was not called

Only ``ConfigurationError`` (at configure time), ``MissingCustomer`` and
``BudgetExceeded`` (by explicit opt-in) ever reach user code from a wrapped
call; every other failure inside usagetap is logged and counted.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any, Optional

__all__ = ["BudgetExceeded", "ConfigurationError", "InvalidRecord", "MissingCustomer", "UsagetapError"]


class UsagetapError(Exception):
    """Base class of every usagetap exception."""


class ConfigurationError(UsagetapError, ValueError):
    """``configure()`` or the environment asked for something impossible."""


class InvalidRecord(UsagetapError, ValueError):
    """A usage record failed validation."""


class MissingCustomer(UsagetapError):
    """A billable call was made with no customer in scope under the ``"require"`` policy."""


class BudgetExceeded(UsagetapError):
    """A customer is over a configured limit; the provider call was not made.

    The figures: ``customer``, ``period`` (``"day"``, ``"week"``, ``"month"``,
    ``"total"``) starting at ``period_start`` (UTC; None for ``"total"``),
    the limit (``max_cost`` in USD and/or ``max_tokens``) and what was spent
    in the period (``cost``, ``tokens``).
    """

    def __init__(
        self,
        message: str,
        *,
        customer: Optional[str] = None,
        period: Optional[str] = None,
        period_start: Optional[datetime] = None,
        max_cost: Optional[Decimal] = None,
        max_tokens: Optional[int] = None,
        cost: Optional[Decimal] = None,
        tokens: Optional[int] = None,
    ) -> None:
        super().__init__(message)
        self.customer = customer
        self.period = period
        self.period_start = period_start
        self.max_cost = max_cost
        self.max_tokens = max_tokens
        self.cost = cost
        self.tokens = tokens

    def __reduce__(self) -> tuple[Any, ...]:
        figures = {name: getattr(self, name) for name in _FIGURES}
        return (_rebuild_budget_exceeded, (str(self), figures))


_FIGURES = ("customer", "period", "period_start", "max_cost", "max_tokens", "cost", "tokens")


def _rebuild_budget_exceeded(message: str, figures: dict[str, Any]) -> BudgetExceeded:
    return BudgetExceeded(message, **figures)
