"""The ``usagetap`` command.

``report`` reads the local ledger, ``status`` the delivery spool, ``replay``
re-sends dead letters or a ledger range, ``demo`` shows the whole path offline.
Each command is one module here: its parser (``add_parser``) and what it does (``run``).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import Optional

from .._version import __version__
from . import demo, open_spanner, reconcile, replay, report, status
from ._common import Parser, fail, reader_gone

__all__ = ["main"]

_MAIN_EXAMPLES = """\
examples:
  usagetap demo                            metered calls offline, then the report
  usagetap report --by customer,day        what each customer used, day by day
  usagetap status                          what is waiting for delivery, what died and why
  usagetap replay --dead                   re-send dead letters once the cause is fixed

run 'usagetap <command> --help' for a command's options and examples
"""


def _parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="usagetap",
        description="Meter LLM usage per customer: report on the local ledger, inspect delivery, "
        "replay what was not delivered.",
        epilog=_MAIN_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"usagetap {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="<command>")
    sub.required = True
    for command in (report, demo, status, replay, open_spanner, reconcile):
        command.add_parser(sub)
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        code = int(args.run(args))
        sys.stdout.flush()
        return code
    except BrokenPipeError:
        return reader_gone()
    except KeyboardInterrupt:
        return 130
    except Exception as exc:
        return fail(exc)
