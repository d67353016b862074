"""Whether a process id names a running process, on POSIX and on Windows.

On POSIX, signal 0 (``os.kill(pid, 0)``) checks without signalling. On Windows
``os.kill(pid, 0)`` is not a check: signal 0 is ``CTRL_C_EVENT`` and would
interrupt a console process group, so the process is opened for
synchronization and waited on with a zero timeout (kernel32 through ctypes,
no extra dependency).
"""

from __future__ import annotations

import os
import sys

__all__ = ["pid_alive"]

_SYNCHRONIZE = 0x00100000
_PROCESS_QUERY_LIMITED_INFORMATION = 0x1000
_WAIT_TIMEOUT = 0x102
_ERROR_ACCESS_DENIED = 5


def pid_alive(pid: int) -> bool:
    """Whether ``pid`` is a running process (one we may not signal counts as running)."""
    if sys.platform == "win32":
        return _windows_alive(pid)
    return _posix_alive(pid)


def _posix_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _windows_alive(pid: int) -> bool:
    import ctypes

    kernel32 = ctypes.WinDLL("kernel32", use_last_error=True)  # type: ignore[attr-defined,unused-ignore]
    kernel32.OpenProcess.restype = ctypes.c_void_p
    handle = kernel32.OpenProcess(_SYNCHRONIZE | _PROCESS_QUERY_LIMITED_INFORMATION, False, pid)
    if not handle:
        # A process that exists but is not ours refuses access; a pid with no process is an invalid parameter.
        return bool(ctypes.get_last_error() == _ERROR_ACCESS_DENIED)  # type: ignore[attr-defined,unused-ignore]
    try:
        return bool(kernel32.WaitForSingleObject(ctypes.c_void_p(handle), 0) == _WAIT_TIMEOUT)
    finally:
        kernel32.CloseHandle(ctypes.c_void_p(handle))
