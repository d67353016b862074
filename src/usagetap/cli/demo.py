"""``usagetap demo``: metered calls through the bundled loopback provider, then the report."""

from __future__ import annotations

import argparse

from . import report
from ._common import CLIError

__all__ = ["add_parser", "run"]

_EXAMPLES = """\
examples:
  usagetap demo                      run the workload, write ./.usagetap/ledger.db, print the report
  usagetap demo --db /tmp/demo.db    a fresh ledger of its own (an existing one is appended to, and
                                     the demo says so)
  USAGETAP_DB=/tmp/demo.db usagetap demo
"""


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    demo = sub.add_parser(
        "demo",
        help="run a small multi-customer workload through the OpenAI and Anthropic SDKs, offline",
        description="Start the bundled loopback provider, make metered calls for several customers "
        "(streaming and not, sync and async) through the real OpenAI SDK and, when it is installed, the "
        "real Anthropic SDK (pip install 'usagetap[openai,anthropic]'), write the local ledger and "
        "print the report. No network, no API key. A ledger that already holds records is appended to "
        "(the demo says so): pass --db for a fresh one.",
        epilog=_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    demo.add_argument("--db", help="ledger path (default: $USAGETAP_DB or ./.usagetap/ledger.db)")
    demo.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from .._demo import run_demo

    try:
        path = run_demo(args.db)
    except ImportError as exc:
        raise CLIError(f"{exc} (install with: pip install 'usagetap[openai]')") from None
    print()
    return report.run(
        argparse.Namespace(
            db=path,
            by="customer,model",
            format="table",
            since=None,
            until=None,
            totals=False,
            html=None,
            top=8,
        )
    )
