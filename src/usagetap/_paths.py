"""Where the default ledger and spool live: ``./.usagetap``, or a per-user directory.

A read-only working directory (a container's root, a read-only mount) would
lose the default ledger's records. There, and only for the default paths,
usagetap uses ``$XDG_DATA_HOME/usagetap`` (``~/.local/share/usagetap``) and
says so once in a WARNING. A path set by the user (``USAGETAP_DB``,
``USAGETAP_SPOOL``, ``configure(spool_path=...)``, ``Ledger(path)``) is never
moved: when it cannot be written, that is an error.
"""

from __future__ import annotations

import os

from ._log import WARNING, log_once

__all__ = ["LOCAL_DIR", "default_dir", "user_data_dir"]

LOCAL_DIR = ".usagetap"


def user_data_dir() -> str:
    """``$XDG_DATA_HOME/usagetap``, or ``~/.local/share/usagetap``."""
    base = os.environ.get("XDG_DATA_HOME") or os.path.join(os.path.expanduser("~"), ".local", "share")
    return os.path.join(base, "usagetap")


def _writable(path: str) -> bool:
    return os.access(path, os.W_OK | os.X_OK)


def default_dir() -> str:
    """``.usagetap`` (relative to the working directory) when it can be written there, else
    :func:`user_data_dir` (with one WARNING saying so)."""
    if os.path.isdir(LOCAL_DIR) and _writable(LOCAL_DIR):
        return LOCAL_DIR
    try:
        cwd = os.getcwd()
    except OSError:
        cwd = "."
    if not os.path.exists(LOCAL_DIR) and _writable(cwd):
        return LOCAL_DIR
    fallback = user_data_dir()
    log_once(
        WARNING,
        f"default-dir:{cwd}",
        "usagetap: %s is not writable; the default ledger and spool are kept in %s instead",
        os.path.join(cwd, LOCAL_DIR),
        fallback,
    )
    return fallback
