"""What is checked before a metered call reaches the provider."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from ._log import log_once

if TYPE_CHECKING:
    from .instrument._calls import Call

__all__ = ["admit"]


def admit(call: Call) -> None:
    """Let the call through; one with no customer is recorded with ``customer=None``, warned about once."""
    if call.customer is None:
        log_once(
            logging.WARNING,
            "no-customer",
            "usagetap: a %s call was made with no customer in scope; it is recorded with customer=None "
            "(use usagetap.customer(...) or wrap(client, customer=...))",
            call.operation,
        )
