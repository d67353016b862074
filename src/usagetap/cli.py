"""The ``usagetap`` command: ``report`` reads the local ledger, ``demo`` shows the whole path offline."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from datetime import date
from typing import TYPE_CHECKING, Optional

if TYPE_CHECKING:
    from .report import Row

__all__ = ["main"]

_REPORT_EXAMPLES = """\
examples:
  usagetap report                          per customer and model, as a table
  usagetap report --by customer --format json
  usagetap report --by day,customer --since 2026-11-01 --until 2026-11-30
  usagetap report --db /var/lib/app/ledger.db --format csv > usage.csv
"""

_DEMO_EXAMPLES = """\
examples:
  usagetap demo                      run the workload, write ./.usagetap/ledger.db, print the report
  USAGETAP_DB=/tmp/demo.db usagetap demo
"""


class CLIError(Exception):
    """A user-facing error: printed as one line, exit status 1."""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="usagetap",
        description="Meter LLM usage per customer. Reads and demonstrates the local usage ledger.",
        epilog="run 'usagetap <command> --help' for a command's options and examples",
    )
    sub = parser.add_subparsers(dest="command", metavar="<command>")
    sub.required = True

    report = sub.add_parser(
        "report",
        help="calls, tokens and cost from the local ledger",
        description="Aggregate the local usage ledger by customer, model, feature or day.",
        epilog=_REPORT_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    report.add_argument("--db", help="ledger path (default: $USAGETAP_DB or ./.usagetap/ledger.db)")
    report.add_argument(
        "--by",
        default="customer,model",
        help="comma-separated group keys: customer, model, feature, day, provider, operation, run, status "
        "(default: customer,model)",
    )
    report.add_argument("--format", choices=("table", "csv", "json"), default="table")
    report.add_argument("--since", type=_day, help="first UTC day to include (YYYY-MM-DD)")
    report.add_argument("--until", type=_day, help="last UTC day to include (YYYY-MM-DD)")
    report.set_defaults(run=_report)

    demo = sub.add_parser(
        "demo",
        help="run a small multi-customer workload offline and print the report",
        description="Start the bundled loopback provider, make metered calls through the real OpenAI SDK "
        "for several customers (streaming and not), write the local ledger and print the report. "
        "No network, no API key.",
        epilog=_DEMO_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    demo.add_argument("--db", help="ledger path (default: $USAGETAP_DB or ./.usagetap/ledger.db)")
    demo.set_defaults(run=_demo)
    return parser


def _day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date (YYYY-MM-DD): {text!r}") from None


def _report(args: argparse.Namespace) -> int:
    from . import report
    from .sinks.ledger import connect, default_path

    path = args.db or default_path()
    by = [key.strip() for key in args.by.split(",") if key.strip()]
    try:
        conn = connect(path, create=False)
    except FileNotFoundError:
        raise CLIError(f"no ledger at {path} (run 'usagetap demo', or pass --db)") from None
    try:
        rows = report.aggregate(conn, by, since=args.since, until=args.until)
    except ValueError as exc:
        raise CLIError(str(exc)) from None
    finally:
        conn.close()
    if args.format == "json":
        print(report.render_json(rows, by))
    elif args.format == "csv":
        sys.stdout.write(report.render_csv(rows, by))
    else:
        _print_table(rows, by, path)
    return 0


def _print_table(rows: Sequence[Row], by: Sequence[str], path: str) -> None:
    from rich.console import Console
    from rich.table import Table

    from .report import totals

    total = totals(rows)
    numeric = [
        ("Calls", "calls"),
        ("Input", "input_tokens"),
        ("Output", "output_tokens"),
        ("Cache read", "cache_read_tokens"),
        ("Cache write", "cache_write_tokens"),
        ("Reasoning", "reasoning_tokens"),
    ]
    numeric = [
        (title, attr)
        for title, attr in numeric
        if attr in ("calls", "input_tokens", "output_tokens") or getattr(total, attr)
    ]
    table = Table(title=f"LLM usage ({path})", show_footer=True)
    for i, key in enumerate(by):
        table.add_column(key.capitalize(), footer="Total" if i == 0 else "", no_wrap=True)
    for title, attr in numeric:
        table.add_column(title, justify="right", footer=f"{getattr(total, attr):,}", no_wrap=True)
    table.add_column("Cost (USD)", justify="right", footer=_cost_cell(total), no_wrap=True)
    for row in rows:
        table.add_row(
            *(row.keys.get(key) or "-" for key in by),
            *(f"{getattr(row, attr):,}" for _, attr in numeric),
            _cost_cell(row),
        )
    console = Console()
    if not console.is_terminal:
        console = Console(width=max(console.width, 160))
    console.print(table)
    if total.unpriced:
        console.print(
            f"* {total.unpriced} call(s) have no price (unknown model); their cost is not included."
        )


def _cost_cell(row: Row) -> str:
    from .report import format_usd

    if row.calls and row.unpriced == row.calls:
        return "unknown"
    text = format_usd(row.cost)
    return f"{text} *" if row.unpriced else text


def _demo(args: argparse.Namespace) -> int:
    from .demo import run_demo

    try:
        path = run_demo(args.db)
    except ImportError as exc:
        raise CLIError(f"{exc} (install with: pip install 'usagetap[openai]')") from None
    print()
    return _report(argparse.Namespace(db=path, by="customer,model", format="table", since=None, until=None))


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        return int(args.run(args))
    except CLIError as exc:
        print(f"usagetap: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
