"""The suite's self-guard: a test fails when it leaves an internal error it did not declare.

An internal error is an exception usagetap swallowed to keep the caller's call intact
(``_log.internal_error``): counted in ``internal_errors``, logged once per place and type.
A test that provokes one on purpose says which, by the place it is logged under::

    @pytest.mark.internal_error("extract")
    def test_a_malformed_usage_block_is_recorded_partial(...): ...

A declared kind matches that place exactly, or as its prefix before ``:`` (``worker``
matches ``worker:ledger``). A declared kind that never happens fails the test too: the
marker went stale. A property test whose random inputs may or may not provoke them says
``optional=True``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from typing import Optional

import pytest

from usagetap import _stats

__all__ = ["MARKER", "InternalErrors", "declared", "matches"]

MARKER = "internal_error"
_TEMPLATE = "usagetap: internal error in %s"


def matches(declared: str, where: str) -> bool:
    """Whether the declared kind names the place ``where`` an internal error was logged."""
    return where == declared or where.startswith(f"{declared}:")


class InternalErrors(logging.Handler):
    """Collects the places of the internal errors logged while it is attached."""

    def __init__(self) -> None:
        super().__init__(level=logging.ERROR)
        self.places: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if isinstance(record.msg, str) and record.msg.startswith(_TEMPLATE) and record.args:
            args = record.args if isinstance(record.args, tuple) else (record.args,)
            self.places.append(str(args[0]))

    def __enter__(self) -> InternalErrors:
        logging.getLogger("usagetap").addHandler(self)
        return self

    def __exit__(self, *exc: object) -> None:
        logging.getLogger("usagetap").removeHandler(self)

    def problem(
        self, declared: Sequence[str], optional: bool = False, count: Optional[int] = None
    ) -> Optional[str]:
        """Why the test must fail, or None: undeclared internal errors, or declared ones that never came."""
        count = _stats.snapshot()["internal_errors"] if count is None else count
        places = sorted(set(self.places))
        undeclared = [where for where in places if not any(matches(d, where) for d in declared)]
        if undeclared:
            return (
                f"{count} internal error(s) in {', '.join(undeclared)} (see the 'usagetap' log): "
                f"fix the bug, "
                f"or declare the expected one with @pytest.mark.{MARKER}({undeclared[0].split(':')[0]!r})"
            )
        if count and not places:
            return f"{count} internal error(s) of unknown kind (the 'usagetap' logger was silenced)"
        missing = [] if optional else [d for d in declared if not any(matches(d, where) for where in places)]
        if missing:
            return f"declared internal error(s) {', '.join(missing)} did not happen: remove the stale marker"
        return None


def declared(marks: Iterable[pytest.Mark]) -> tuple[list[str], bool]:
    """The kinds the ``internal_error`` markers of a test name, and whether they are optional."""
    marks = list(marks)
    kinds = [str(kind) for mark in marks for kind in mark.args]
    return kinds, any(mark.kwargs.get("optional") for mark in marks)
