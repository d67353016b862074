"""What an exception from a sink's ``send()`` means: the backend is unreachable, or the batch is bad.

Transient failures (connections, timeouts, a busy database) mean "retry every
event". Any other exception is taken as caused by the records: the batch is
bisected like a batch the backend refuses as a whole, and the event(s) at
fault are dead-lettered with the exception (class and message, key-like
text redacted) as reason.
"""

from __future__ import annotations

import concurrent.futures
import http.client
import sqlite3

import httpx

from ..sinks._http import MAX_REASON
from ..sinks._redact import Redactor

__all__ = ["TRANSIENT", "exception_reason", "is_transient"]

TRANSIENT: tuple[type[BaseException], ...] = (
    OSError,  # ConnectionError, TimeoutError, ssl.SSLError, a full disk
    httpx.TransportError,
    http.client.HTTPException,
    sqlite3.OperationalError,  # "database is locked", disk I/O errors
    concurrent.futures.TimeoutError,
)

_REDACT = Redactor()  # no secrets of its own: what looks like a key or a credential


def is_transient(exc: BaseException) -> bool:
    """Whether ``exc`` says the backend could not be reached now (retry), not that the records are bad."""
    return isinstance(exc, TRANSIENT)


def exception_reason(exc: BaseException, sink: str = "") -> str:
    """``"ledger: OverflowError: Python int too large to convert to SQLite INTEGER"``, secrets redacted."""
    text = " ".join(f"{sink + ': ' if sink else ''}{type(exc).__name__}: {exc}".split()).rstrip(": ")
    text = _REDACT.free_text(text)
    return text if len(text) <= MAX_REASON else text[: MAX_REASON - 3] + "..."
