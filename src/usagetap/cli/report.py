"""``usagetap report``: calls, tokens and cost from the local ledger, as a table, CSV, JSON or HTML."""

from __future__ import annotations

import argparse
import os
import sqlite3
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

from ._common import CLIError, console, parse_day

if TYPE_CHECKING:
    from .._ledger_source import LedgerSource
    from .._report import Row

__all__ = ["add_parser", "run"]

_EXAMPLES = """\
examples:
  usagetap report                          per customer and model, as a table
  usagetap report --by customer --format json
  usagetap report --format csv --by customer,month > invoices.csv
                                           one line per customer and month: tokens by type,
                                           cost, billed_cost, currency (an invoice import)
  usagetap report --by product             any dimension the records carry
  usagetap report --by day,customer --since 2026-11-01 --until 2026-11-30
  usagetap report --by run --format csv    one row per tracked run
  usagetap report --db /var/lib/app/ledger.db --format csv --totals > usage.csv
  usagetap report --html usage.html        a self-contained page: cost per customer by day,
                                           cost by model and the table (opens offline)
"""


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    report = sub.add_parser(
        "report",
        help="calls, tokens and cost from the local ledger",
        description="Aggregate the local usage ledger by customer, model, feature, day, month, run or any "
        "dimension the records carry. Costs are in US dollars from the genai-prices table ('cost'; "
        "'billed_cost' with the configured markup); calls to models it does not know have no cost "
        "(shown as 'unknown', never as 0). Tables show cents; JSON and CSV exact decimal strings. "
        "Rows are sorted by cost, the largest first (in time order first when grouped by day or month).",
        epilog=_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    report.add_argument(
        "--db", help="ledger path or postgresql:// URL (default: $USAGETAP_DB or ./.usagetap/ledger.db)"
    )
    report.add_argument(
        "--by",
        default="customer,model",
        help="comma-separated group keys: customer, model, feature, day, month, provider, operation, run, "
        "status, or the name of any dimension the records carry (default: customer,model)",
    )
    report.add_argument(
        "--format",
        choices=("table", "csv", "json"),
        help="what to print (default: table; nothing but a summary line when --html is given)",
    )
    report.add_argument("--since", type=parse_day, help="first UTC day to include (YYYY-MM-DD)")
    report.add_argument("--until", type=parse_day, help="last UTC day to include (YYYY-MM-DD)")
    report.add_argument(
        "--totals",
        action="store_true",
        help='csv: append a \'(total)\' row; json: print {"rows": [...], "totals": {...}} '
        "instead of the list of rows (the table always has a total)",
    )
    report.add_argument(
        "--html",
        metavar="PATH",
        help="also write a self-contained HTML page (charts and the table) to PATH ('-' for stdout)",
    )
    report.add_argument(
        "--top",
        type=_positive,
        default=8,
        metavar="N",
        help="html: name at least the N customers with the highest cost in the chart (default: 8); more "
        "when the others together would cost more than the smallest named one",
    )
    report.set_defaults(run=run)


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"not a positive count (1, 2, ...): {text!r}")
    return value


def run(args: argparse.Namespace) -> int:
    from .. import _report as report
    from .._ledger_source import LedgerError, open_ledger
    from ..errors import ConfigurationError
    from ..sinks.ledger import default_path

    path = args.db or default_path()
    by = [key.strip() for key in args.by.split(",") if key.strip()]
    if not by:
        raise CLIError(f"--by needs at least one key: {', '.join(report.GROUP_KEYS)}")
    if args.html == "-" and args.format:
        raise CLIError("--html - and --format both print to stdout; choose one")
    if args.since and args.until and args.since > args.until:
        raise CLIError(f"--since {args.since} is after --until {args.until}")
    try:
        conn = open_ledger(path)
    except FileNotFoundError:
        raise CLIError(f"no ledger at {_shown(path)} (run 'usagetap demo', or pass --db)") from None
    except (LedgerError, ConfigurationError) as exc:
        raise CLIError(f"cannot open the ledger at {_shown(path)}: {exc}") from None
    path = conn.name
    try:
        rows = report.aggregate(conn, by, since=args.since, until=args.until)
        page = _html_page(conn, by, args, path) if args.html else None
    except ValueError as exc:
        raise CLIError(str(exc)) from None
    except (sqlite3.Error, LedgerError) as exc:
        raise CLIError(f"cannot read the ledger at {path}: {exc}") from None
    finally:
        conn.close()
    if page is not None:
        _write_html(args.html, page, rows)
    fmt = args.format or (None if args.html else "table")
    if fmt == "json":
        print(report.render_json(rows, by, with_totals=args.totals, since=args.since, until=args.until))
    elif fmt == "csv":
        sys.stdout.write(
            report.render_csv(rows, by, with_totals=args.totals, since=args.since, until=args.until)
        )
    elif fmt == "table":
        _print_table(rows, by, path)
    return 0


def _shown(path: str) -> str:
    from ..db.ledger_pg import redact

    return redact(path)


def _html_page(conn: LedgerSource, by: Sequence[str], args: argparse.Namespace, path: str) -> str:
    from .._report_html import build_page

    return build_page(conn, by, since=args.since, until=args.until, source=path, top=args.top)


def _write_html(target: str, page: str, rows: Sequence[Row]) -> None:
    from .._report import cost_cell, totals

    if target == "-":
        sys.stdout.write(page)
        return
    try:
        with open(target, "w", encoding="utf-8", opener=_private) as out:
            out.write(page)
    except OSError as exc:
        raise CLIError(f"cannot write {target}: {exc.strerror or exc}") from None
    total = totals(rows)
    print(f"wrote {target}: {total.calls:,} calls, {cost_cell(total)}", file=sys.stderr)


def _private(path: str, flags: int) -> int:
    """Create files readable by their owner only: reports hold per-customer billing data."""
    return os.open(path, flags, 0o600)


def _print_table(rows: Sequence[Row], by: Sequence[str], path: str) -> None:
    from rich.table import Table

    from .._report import billed_cell, cost_cell, numeric_columns, totals

    total = totals(rows)
    numeric = numeric_columns(total)
    table = Table(title=f"LLM usage ({path})", show_footer=True)
    for i, key in enumerate(by):
        table.add_column(key.capitalize(), footer="Total" if i == 0 else "", no_wrap=True)
    for title, attr in numeric:
        table.add_column(title, justify="right", footer=f"{getattr(total, attr):,}", no_wrap=True)
    table.add_column("Cost (USD)", justify="right", footer=cost_cell(total), no_wrap=True)
    if total.billed:
        table.add_column("Billed cost (USD)", justify="right", footer=billed_cell(total), no_wrap=True)
    for row in rows:
        cells = [
            *(row.keys.get(key) or "-" for key in by),
            *(f"{getattr(row, attr):,}" for _, attr in numeric),
            cost_cell(row),
        ]
        table.add_row(*cells, *([billed_cell(row)] if total.billed else []))
    out = console()
    out.print(table)
    if total.unpriced:
        out.print(f"* {total.unpriced} call(s) have no price (unknown model); their cost is not included.")
