"""Process liveness: signal 0 on POSIX; on Windows a wait on the process, never ``os.kill(pid, 0)``."""

from __future__ import annotations

import ctypes
import os
import subprocess
import sys
from typing import Any

import pytest

from usagetap import _liveness
from usagetap._liveness import pid_alive

WAIT_OBJECT_0, WAIT_TIMEOUT = 0, 0x102
ERROR_ACCESS_DENIED, ERROR_INVALID_PARAMETER = 5, 87


class _Function:
    def __init__(self, result: Any) -> None:
        self.result = result
        self.calls: list[tuple[Any, ...]] = []
        self.restype: Any = None

    def __call__(self, *args: Any) -> Any:
        self.calls.append(args)
        return self.result


class _Kernel32:
    def __init__(self, handle: int, wait: int) -> None:
        self.OpenProcess = _Function(handle)
        self.WaitForSingleObject = _Function(wait)
        self.CloseHandle = _Function(1)


def _on_windows(monkeypatch: pytest.MonkeyPatch, kernel32: _Kernel32, last_error: int = 0) -> None:
    def no_signal(pid: int, sig: int) -> None:
        raise AssertionError("os.kill(pid, 0) is CTRL_C_EVENT on Windows")

    monkeypatch.setattr(sys, "platform", "win32")
    monkeypatch.setattr(os, "kill", no_signal)
    monkeypatch.setattr(ctypes, "WinDLL", lambda name, use_last_error=False: kernel32, raising=False)
    monkeypatch.setattr(ctypes, "get_last_error", lambda: last_error, raising=False)


def test_on_windows_a_running_process_is_alive_and_is_never_signalled(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    kernel32 = _Kernel32(handle=4242, wait=WAIT_TIMEOUT)
    _on_windows(monkeypatch, kernel32)
    assert pid_alive(1234) is True
    assert kernel32.OpenProcess.calls[0][2] == 1234
    assert [c[0].value for c in kernel32.CloseHandle.calls] == [4242]


def test_on_windows_an_exited_process_is_dead(monkeypatch: pytest.MonkeyPatch) -> None:
    kernel32 = _Kernel32(handle=4242, wait=WAIT_OBJECT_0)
    _on_windows(monkeypatch, kernel32)
    assert pid_alive(1234) is False
    assert len(kernel32.CloseHandle.calls) == 1


def test_on_windows_a_pid_with_no_process_is_dead(monkeypatch: pytest.MonkeyPatch) -> None:
    kernel32 = _Kernel32(handle=0, wait=WAIT_TIMEOUT)
    _on_windows(monkeypatch, kernel32, last_error=ERROR_INVALID_PARAMETER)
    assert pid_alive(1234) is False
    assert kernel32.WaitForSingleObject.calls == []


def test_on_windows_a_process_we_may_not_open_is_alive(monkeypatch: pytest.MonkeyPatch) -> None:
    kernel32 = _Kernel32(handle=0, wait=WAIT_OBJECT_0)
    _on_windows(monkeypatch, kernel32, last_error=ERROR_ACCESS_DENIED)
    assert pid_alive(1234) is True


def test_on_posix_this_process_is_alive_and_a_reaped_child_is_not() -> None:
    child = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], check=True, capture_output=True, text=True
    )
    assert pid_alive(os.getpid()) is True
    assert pid_alive(int(child.stdout)) is False


def test_the_spool_and_status_use_the_portable_check() -> None:
    from usagetap import _status
    from usagetap.delivery import spool

    assert spool.pid_alive is _liveness.pid_alive
    assert _status.pid_alive is _liveness.pid_alive
