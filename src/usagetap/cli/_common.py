"""What every command shares: the one-line errors, argument types, the console, the spool path."""

from __future__ import annotations

import argparse
import os
import sqlite3
import sys
from datetime import date
from typing import TYPE_CHECKING, NoReturn

if TYPE_CHECKING:
    from rich.console import Console

__all__ = [
    "CLIError",
    "EXIT_UNDELIVERED",
    "Parser",
    "console",
    "fail",
    "parse_count",
    "parse_day",
    "reader_gone",
    "spool_path",
]

EXIT_UNDELIVERED = 3


class CLIError(Exception):
    """A user-facing error: printed as one line, exit status 1."""


class Parser(argparse.ArgumentParser):
    """argparse, with usage errors on one line (exit status 2) that point at ``--help``."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


def parse_count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"not a count (0, 1, 2, ...): {text!r}")
    return value


def parse_day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date (YYYY-MM-DD): {text!r}") from None


def console(stderr: bool = False) -> Console:
    from rich.console import Console

    out = Console(stderr=stderr)
    if not out.is_terminal:
        out = Console(stderr=stderr, width=max(out.width, 160))
    return out


def spool_path(args: argparse.Namespace) -> str:
    from ..delivery.pipeline import default_spool_path

    return str(args.spool or default_spool_path())


def fail(exc: Exception) -> int:
    """Print ``exc`` as one line on stderr (never a traceback); exit status 1."""
    from ..errors import ConfigurationError

    if isinstance(exc, (CLIError, ConfigurationError)):
        message = str(exc)
    elif isinstance(exc, OSError) and exc.strerror:
        where = f": {_clip(os.fsdecode(exc.filename))}" if exc.filename is not None else ""
        message = f"{exc.strerror}{where}"
    elif isinstance(exc, sqlite3.Error):
        message = f"database error: {exc}"
    else:
        message = f"unexpected {type(exc).__name__}: {exc}"
    print(f"usagetap: error: {' '.join(message.split())}", file=sys.stderr)
    return 1


def _clip(text: str, limit: int = 120) -> str:
    return text if len(text) <= limit else f"{text[: limit // 2 - 2]}...{text[-(limit // 2 - 1) :]}"


def reader_gone() -> int:
    """``usagetap report | head``: the reader left. Stop quietly, as other Unix tools do."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass
    return 141  # 128 + SIGPIPE, what a shell reports for a tool killed by the signal
