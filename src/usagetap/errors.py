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
    """A customer is over a configured limit; the provider call was not made."""
