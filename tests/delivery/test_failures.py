"""Which exceptions from a sink mean "retry", and the dead-letter reason made from the others."""

from __future__ import annotations

import sqlite3

import httpx
import pytest

from usagetap.delivery.failures import exception_reason, is_transient


@pytest.mark.parametrize(
    "exc",
    [
        ConnectionError("backend down"),
        TimeoutError("timed out"),
        httpx.ConnectError("refused"),
        httpx.ReadTimeout("slow"),
        sqlite3.OperationalError("database is locked"),
    ],
)
def test_connection_errors_timeouts_and_a_locked_database_are_transient(exc: BaseException) -> None:
    assert is_transient(exc)


@pytest.mark.parametrize(
    "exc", [OverflowError("int too large"), ValueError("bad"), KeyError("x"), TypeError("y"), MemoryError()]
)
def test_errors_a_record_can_cause_are_not_transient(exc: BaseException) -> None:
    assert not is_transient(exc)


def test_the_reason_is_the_sink_the_class_and_the_message() -> None:
    reason = exception_reason(OverflowError("Python int too large to convert to SQLite INTEGER"), "ledger")
    assert reason == "ledger: OverflowError: Python int too large to convert to SQLite INTEGER"


def test_the_reason_never_carries_secrets() -> None:
    exc = ValueError(
        "key sk_live_abcdef123456 header Bearer tok.en-value "
        "url https://user:pw@host/x?api_key=zzz9 token: t0ps3cret"
    )
    reason = exception_reason(exc, "http")
    for secret in ("sk_live_abcdef123456", "tok.en-value", "user:pw", "zzz9", "t0ps3cret"):
        assert secret not in reason
    assert reason.startswith("http: ValueError: key [redacted]")


def test_a_long_message_is_cut_to_a_readable_reason() -> None:
    assert len(exception_reason(ValueError("x" * 5000), "s")) == 500
