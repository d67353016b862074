"""The ``usagetap`` command.

``report`` reads the local ledger, ``status`` the delivery spool, ``replay``
re-sends dead letters or a ledger range, ``demo`` shows the whole path offline.
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import sys
from collections.abc import Callable, Iterable, Sequence
from datetime import date
from typing import TYPE_CHECKING, NoReturn, Optional

if TYPE_CHECKING:
    from rich.console import Console

    from .record import UsageRecord
    from .replay import ReplayResult
    from .report import Row
    from .sinks.base import Sink
    from .status import SpoolStatus

__all__ = ["main"]

_MAIN_EXAMPLES = """\
examples:
  usagetap demo                            metered calls offline, then the report
  usagetap report --by customer,day        what each customer used, day by day
  usagetap status                          what is waiting for delivery, what died and why
  usagetap replay --dead                   re-send dead letters once the cause is fixed

run 'usagetap <command> --help' for a command's options and examples
"""

_REPORT_EXAMPLES = """\
examples:
  usagetap report                          per customer and model, as a table
  usagetap report --by customer --format json
  usagetap report --by day,customer --since 2026-11-01 --until 2026-11-30
  usagetap report --by run --format csv    one row per tracked run
  usagetap report --db /var/lib/app/ledger.db --format csv --totals > usage.csv
  usagetap report --html usage.html        a self-contained page: cost per customer by day,
                                           cost by model and the table (opens offline)
"""

_DEMO_EXAMPLES = """\
examples:
  usagetap demo                      run the workload, write ./.usagetap/ledger.db, print the report
  USAGETAP_DB=/tmp/demo.db usagetap demo
"""


_STATUS_EXAMPLES = """\
examples:
  usagetap status                          the spool at $USAGETAP_SPOOL or ./.usagetap/spool.db
  usagetap status --spool /var/lib/app/spool.db --format json

what it shows, per sink: records waiting (due now, in backoff after a failed attempt, in flight:
leased by a delivering process, and whether that process is alive), the oldest waiting record,
dead letters by reason, the last delivery error and the counters (delivered, duplicates, retried,
dead) the delivering processes keep in the spool, summed over all of them.
"""

_REPLAY_EXAMPLES = """\
examples:
  usagetap replay --dead --dry-run         what would be re-sent, and why it died
  usagetap replay --dead                   dead letters of the configured sink, re-sent to it
  usagetap replay --dead --reason "customer not found" --since 2026-11-01
  usagetap replay --since 2026-11-01 --until 2026-11-30      a month of the local ledger
  USAGETAP_SINK=spaire USAGETAP_API_KEY=... usagetap replay --db usage.db --since 2026-11-01
  usagetap replay --from .usagetap/spool.db.corrupt-1796391329     a corrupt spool moved aside

The target is the sink the environment configures (USAGETAP_SINK, USAGETAP_API_KEY, ...).
Events keep their ids, which the backend deduplicates on: replaying twice never bills twice.
Dead letters the backend now takes are removed from the spool; those it refuses again stay,
with the new reason.

exit status: 0 every event delivered (or a dry run), 1 error, 2 bad arguments,
3 some events not delivered (the summary says which reasons)
"""

_EXIT_UNDELIVERED = 3


class CLIError(Exception):
    """A user-facing error: printed as one line, exit status 1."""


class _Parser(argparse.ArgumentParser):
    """argparse, with usage errors on one line (exit status 2) that point at ``--help``."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="usagetap",
        description="Meter LLM usage per customer: report on the local ledger, inspect delivery, "
        "replay what was not delivered.",
        epilog=_MAIN_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", metavar="<command>")
    sub.required = True

    report = sub.add_parser(
        "report",
        help="calls, tokens and cost from the local ledger",
        description="Aggregate the local usage ledger by customer, model, feature, day or run. Costs are "
        "in US dollars from the genai-prices table; calls to models it does not know have no cost "
        "(shown as 'unknown', never as 0).",
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
    report.add_argument(
        "--format",
        choices=("table", "csv", "json"),
        help="what to print (default: table; nothing but a summary line when --html is given)",
    )
    report.add_argument("--since", type=_day, help="first UTC day to include (YYYY-MM-DD)")
    report.add_argument("--until", type=_day, help="last UTC day to include (YYYY-MM-DD)")
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

    status = sub.add_parser(
        "status",
        help="what is waiting for delivery, dead letters and delivery errors",
        description="Read the delivery spool (read-only) and show, per sink, what is waiting, what is "
        "in flight, what died and why, and the last delivery error.",
        epilog=_STATUS_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    status.add_argument(
        "--spool", metavar="PATH", help="spool path (default: $USAGETAP_SPOOL or ./.usagetap/spool.db)"
    )
    status.add_argument("--format", choices=("table", "json"), default="table", help="default: table")
    status.set_defaults(run=_status)

    replay = sub.add_parser(
        "replay",
        help="re-send dead letters or a ledger range to the configured sink",
        description="Re-send dead letters from the spool (--dead) or the records of a date range of the "
        "local ledger (--since/--until) to the sink the environment configures, with the same event ids.",
        epilog=_REPLAY_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    replay.add_argument("--dead", action="store_true", help="replay the spool's dead letters")
    replay.add_argument(
        "--from",
        dest="from_file",
        metavar="FILE",
        help="replay every readable record waiting in a spool file (a corrupt one moved aside included: "
        "damaged pages are read around) or held in a ledger file",
    )
    replay.add_argument(
        "--since",
        type=_day,
        metavar="DAY",
        help="first UTC day of usage to replay (YYYY-MM-DD; by the record's time)",
    )
    replay.add_argument(
        "--until", type=_day, metavar="DAY", help="last UTC day of usage to replay (YYYY-MM-DD)"
    )
    replay.add_argument(
        "--sink",
        metavar="NAME",
        help="with --dead: the sink the dead letters belonged to (default: the configured sink's name; "
        "see 'usagetap status')",
    )
    replay.add_argument(
        "--reason", metavar="TEXT", help="with --dead: only dead letters whose reason contains this text"
    )
    replay.add_argument(
        "--db", metavar="PATH", help="ledger path (default: $USAGETAP_DB or ./.usagetap/ledger.db)"
    )
    replay.add_argument(
        "--spool", metavar="PATH", help="spool path (default: $USAGETAP_SPOOL or ./.usagetap/spool.db)"
    )
    replay.add_argument(
        "--retries",
        type=_count,
        default=5,
        metavar="N",
        help="retries of an event the backend asks to retry (default: 5)",
    )
    replay.add_argument("--dry-run", action="store_true", help="show what would be sent; send nothing")
    replay.set_defaults(run=_replay)
    return parser


def _count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"not a count (0, 1, 2, ...): {text!r}")
    return value


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
    if not by:
        raise CLIError(f"--by needs at least one key: {', '.join(report.GROUP_KEYS)}")
    if args.html == "-" and args.format:
        raise CLIError("--html - and --format both print to stdout; choose one")
    if args.since and args.until and args.since > args.until:
        raise CLIError(f"--since {args.since} is after --until {args.until}")
    try:
        conn = connect(path, create=False)
    except FileNotFoundError:
        raise CLIError(f"no ledger at {path} (run 'usagetap demo', or pass --db)") from None
    except sqlite3.Error as exc:
        raise CLIError(f"cannot open the ledger at {path}: {exc}") from None
    try:
        rows = report.aggregate(conn, by, since=args.since, until=args.until)
        page = _html_page(conn, by, args, path) if args.html else None
    except ValueError as exc:
        raise CLIError(str(exc)) from None
    except sqlite3.Error as exc:
        raise CLIError(f"cannot read the ledger at {path}: {exc}") from None
    finally:
        conn.close()
    if page is not None:
        _write_html(args.html, page, rows)
    fmt = args.format or (None if args.html else "table")
    if fmt == "json":
        print(report.render_json(rows, by, with_totals=args.totals))
    elif fmt == "csv":
        sys.stdout.write(report.render_csv(rows, by, with_totals=args.totals))
    elif fmt == "table":
        _print_table(rows, by, path)
    return 0


def _html_page(conn: sqlite3.Connection, by: Sequence[str], args: argparse.Namespace, path: str) -> str:
    from .report_html import build_page

    return build_page(conn, by, since=args.since, until=args.until, source=path)


def _write_html(target: str, page: str, rows: Sequence[Row]) -> None:
    from .report import cost_cell, totals

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
    from rich.console import Console
    from rich.table import Table

    from .report import cost_cell, numeric_columns, totals

    total = totals(rows)
    numeric = numeric_columns(total)
    table = Table(title=f"LLM usage ({path})", show_footer=True)
    for i, key in enumerate(by):
        table.add_column(key.capitalize(), footer="Total" if i == 0 else "", no_wrap=True)
    for title, attr in numeric:
        table.add_column(title, justify="right", footer=f"{getattr(total, attr):,}", no_wrap=True)
    table.add_column("Cost (USD)", justify="right", footer=cost_cell(total), no_wrap=True)
    for row in rows:
        table.add_row(
            *(row.keys.get(key) or "-" for key in by),
            *(f"{getattr(row, attr):,}" for _, attr in numeric),
            cost_cell(row),
        )
    console = Console()
    if not console.is_terminal:
        console = Console(width=max(console.width, 160))
    console.print(table)
    if total.unpriced:
        console.print(
            f"* {total.unpriced} call(s) have no price (unknown model); their cost is not included."
        )


def _demo(args: argparse.Namespace) -> int:
    from .demo import run_demo

    try:
        path = run_demo(args.db)
    except ImportError as exc:
        raise CLIError(f"{exc} (install with: pip install 'usagetap[openai]')") from None
    print()
    return _report(
        argparse.Namespace(
            db=path, by="customer,model", format="table", since=None, until=None, totals=False, html=None
        )
    )


# -- status ---------------------------------------------------------------------------


def _spool_path(args: argparse.Namespace) -> str:
    from .delivery.pipeline import default_spool_path

    return str(args.spool or default_spool_path())


def _status(args: argparse.Namespace) -> int:
    import json

    from .status import NotASpool, open_readonly, read_status

    path = _spool_path(args)
    try:
        conn = open_readonly(path)
    except NotASpool as exc:
        raise CLIError(f"{path} is {exc}") from None
    except FileNotFoundError:
        raise CLIError(
            f"no spool at {path} (nothing was queued for a remote sink here; "
            "pass --spool, or set USAGETAP_SPOOL)"
        ) from None
    except sqlite3.Error as exc:
        raise CLIError(f"cannot read the spool at {path}: {exc}") from None
    try:
        status = read_status(conn, path)
    except sqlite3.Error as exc:
        raise CLIError(f"cannot read the spool at {path}: {exc}") from None
    finally:
        conn.close()
    if args.format == "json":
        print(json.dumps(status.as_dict(), indent=2))
    else:
        _print_status(status, _console())
    return 0


def _console(stderr: bool = False) -> Console:
    from rich.console import Console

    console = Console(stderr=stderr)
    if not console.is_terminal:
        console = Console(stderr=stderr, width=max(console.width, 160))
    return console


def _age(seconds: float) -> str:
    """``42s``, ``3m 12s``, ``5h 02m``, ``4d 03h``."""
    s = int(max(0.0, seconds))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m {s % 60:02d}s"
    if s < 86400:
        return f"{s // 3600}h {s % 3600 // 60:02d}m"
    return f"{s // 86400}d {s % 86400 // 3600:02d}h"


def _when(moment: Optional[float], now: float) -> str:
    if moment is None:
        return "-"
    return f"in {_age(moment - now)}" if moment > now else f"{_age(now - moment)} ago"


def _print_status(status: SpoolStatus, console: Console) -> None:
    from rich.markup import escape
    from rich.table import Table

    from .delivery.worker import COUNTERS

    now = status.now
    console.print(
        f"Spool {escape(status.path)}: {status.size / 1024:,.0f} KiB, {status.pending:,} waiting, "
        f"{status.dead_letters:,} dead letters"
    )
    salvage = status.salvage
    if salvage:
        source = f" from the corrupt spool {escape(salvage['from'])}" if salvage["from"] else ""
        console.print(
            f"[bold]Damaged data[/bold] ({salvage['at']}): {salvage['salvaged']:,} records salvaged{source}; "
            f"unreadable: {salvage['unreadable']:,} records, {salvage['unreadable_rows']:,} rows of unknown "
            f"size, {salvage['unreadable_dead']:,} dead letters"
        )
    if not status.sinks:
        console.print("Empty: nothing is waiting and nothing was delivered from this spool yet.")
        return
    table = Table(title="Sinks", title_justify="left")
    for title in ("Sink", "Waiting", "Oldest", "Due", "Backoff", "In flight", "Dead letters"):
        table.add_column(title, justify="left" if title == "Sink" else "right", no_wrap=True)
    for name in COUNTERS:
        table.add_column(name.capitalize(), justify="right", no_wrap=True)
    for s in status.sinks:
        counters = [f"{s.counters[name]:,}" if s.counters else "-" for name in COUNTERS]
        table.add_row(
            escape(s.sink),
            f"{s.pending:,}",
            "-" if s.oldest is None else _age(now - s.oldest),
            f"{s.due:,}",
            f"{s.backoff:,}" + (f" (next {_when(s.next_attempt, now)})" if s.backoff else ""),
            f"{s.in_flight:,}",
            f"{s.dead_letters:,}",
            *counters,
        )
    console.print(table)
    console.print(
        "Delivered (duplicates included), Duplicates, Retried, Dead: events settled by every process "
        "that delivered from this spool."
    )
    leases = [(s, lease) for s in status.sinks for lease in s.leases]
    stale = [s for s in status.sinks if s.stale]
    if leases or stale:
        console.print("\n[bold]In flight[/bold]")
        for s, lease in leases:
            expires = _when(lease.expires, now)
            state = (
                f"running; the lease expires {expires}"
                if lease.alive
                else f"gone: released when a process opens the spool, or when the lease expires {expires}"
            )
            console.print(f"  {escape(s.sink)}: {lease.rows:,} leased by pid {lease.pid} ({state})")
        for s in stale:
            console.print(
                f"  {escape(s.sink)}: {s.stale:,} with an expired lease (taken over by the next worker)"
            )
    halted = [s for s in status.sinks if s.halted]
    if halted:
        console.print("\n[bold]Paused[/bold]")
        for s in halted:
            console.print(f"  {escape(s.sink)}: paused, {s.pending:,} waiting: {escape(s.halted or '')}")
    errors = [s for s in status.sinks if s.last_error]
    if errors:
        console.print("\n[bold]Last delivery error[/bold]")
        for s in errors:
            console.print(f"  {escape(s.sink)} ({_when(s.last_error_at, now)}): {escape(s.last_error or '')}")
    if status.dead:
        dead = Table(title="Dead letters", title_justify="left")
        dead.add_column("Sink", no_wrap=True)
        dead.add_column("Reason")
        dead.add_column("Count", justify="right", no_wrap=True)
        dead.add_column("Latest", justify="right", no_wrap=True)
        for group in status.dead:
            dead.add_row(
                escape(group.sink), escape(group.reason), f"{group.count:,}", _when(group.latest, now)
            )
        console.print()
        console.print(dead)
        console.print("Re-send them with 'usagetap replay --dead' once the cause is fixed.")


# -- replay ---------------------------------------------------------------------------


def _configured_sink() -> Optional[Sink]:
    from .errors import ConfigurationError
    from .sinks._env import sink_from_env

    try:
        return sink_from_env(os.environ)
    except ConfigurationError as exc:
        raise CLIError(str(exc)) from None


def _replay(args: argparse.Namespace) -> int:
    if args.since and args.until and args.since > args.until:
        raise CLIError(f"--since {args.since} is after --until {args.until}")
    if args.from_file:
        if args.dead or args.db or args.spool or args.reason:
            raise CLIError(
                "--from replays a file's records; it does not go with --dead, --db, --spool or --reason"
            )
    elif not args.dead:
        if args.sink or args.reason or args.spool:
            raise CLIError("--sink, --reason and --spool select dead letters; add --dead")
        if args.since is None and args.until is None:
            raise CLIError("say what to replay: --dead, or a ledger range with --since and/or --until")
    elif args.db:
        raise CLIError("--db selects a ledger range; it does not go with --dead")
    sink = _configured_sink()
    if sink is None and not args.dry_run:
        raise CLIError(
            "no sink configured: set USAGETAP_SINK (spaire, polar, open_spanner, solvapay, openmeter, "
            "stripe, http, ledger) and its variables, e.g. USAGETAP_API_KEY"
        )
    try:
        if args.from_file:
            return _replay_file(args, sink)
        if args.dead:
            return _replay_dead(args, sink)
        return _replay_ledger(args, sink)
    finally:
        if sink is not None:
            sink.close()


def _replay_dead(args: argparse.Namespace, sink: Optional[Sink]) -> int:
    from .replay import load_dead_letters, open_spool_file, update_dead_letters
    from .status import NotASpool

    path = _spool_path(args)
    source = args.sink or (sink.name if sink is not None else None)
    try:
        conn = open_spool_file(path)
    except NotASpool as exc:
        raise CLIError(f"{path} is {exc}") from None
    except FileNotFoundError:
        raise CLIError(
            f"no spool at {path}, so no dead letters (pass --spool, or set USAGETAP_SPOOL)"
        ) from None
    except sqlite3.Error as exc:
        raise CLIError(f"cannot read the spool at {path}: {exc}") from None
    try:
        letters = load_dead_letters(conn, sink=source, reason=args.reason, since=args.since, until=args.until)
        what = f"dead letters{'' if source is None else f' of sink {source}'}"
        for problem in letters.unreadable.values():
            print(f"usagetap: warning: {problem} (left in the spool)", file=sys.stderr)
        if not letters.records:
            print(f"nothing to replay: no {what} match in {path}", file=sys.stderr)
            return _EXIT_UNDELIVERED if letters.unreadable else 0
        if args.dry_run or sink is None:
            _dry_run(what, letters.records.values(), sink, reasons=list(letters.reasons.values()))
            return 0
        result = _run_replay(
            sink,
            list(letters.records.values()),
            len(letters.records),
            args.retries,
            after_batch=lambda records, result: update_dead_letters(conn, letters, records, result),
        )
    except sqlite3.Error as exc:
        raise CLIError(f"cannot use the spool at {path}: {exc}") from None
    finally:
        conn.close()
    return _report_replay(result, sink, what, undelivered_before=len(letters.unreadable))


def _replay_file(args: argparse.Namespace, sink: Optional[Sink]) -> int:
    from .replay import read_file
    from .status import NotASpool

    path = args.from_file
    try:
        found = read_file(
            path,
            sink=args.sink or (sink.name if sink is not None else None),
            since=args.since,
            until=args.until,
        )
    except FileNotFoundError:
        raise CLIError(f"no file at {path}") from None
    except NotASpool as exc:
        raise CLIError(f"{path} is {exc}") from None
    except sqlite3.Error as exc:
        raise CLIError(f"cannot read {path}: {exc}") from None
    what = f"{found.kind} records" + (f" of sink {found.sink}" if found.sink else "") + f" from {path}"
    if found.kind == "spool" and found.sink is None and len(found.sinks) > 1:
        print(
            f"usagetap: note: taking the rows of every sink in {path}: {', '.join(found.sinks)}",
            file=sys.stderr,
        )
    lost = found.unreadable + found.unreadable_rows
    if lost:
        print(
            f"usagetap: warning: {found.unreadable:,} records and {found.unreadable_rows:,} rows of {path} "
            "could not be read",
            file=sys.stderr,
        )
    if not found.records:
        print(f"nothing to replay: no readable {what}", file=sys.stderr)
        return _EXIT_UNDELIVERED if lost else 0
    if args.dry_run or sink is None:
        _dry_run(what, found.records, sink)
        return 0
    result = _run_replay(sink, found.records, len(found.records), args.retries)
    return _report_replay(result, sink, what, undelivered_before=lost)


def _replay_ledger(args: argparse.Namespace, sink: Optional[Sink]) -> int:
    from .replay import count_ledger, ledger_records
    from .sinks.ledger import connect, default_path

    path = args.db or default_path()
    try:
        conn = connect(path, create=False)
    except FileNotFoundError:
        raise CLIError(f"no ledger at {path} (pass --db, or set USAGETAP_DB)") from None
    except sqlite3.Error as exc:
        raise CLIError(f"cannot open the ledger at {path}: {exc}") from None
    window = f"{args.since or 'the start'} .. {args.until or 'today'}"
    what = f"ledger records ({window})"
    try:
        total = count_ledger(conn, args.since, args.until)
        if not total:
            print(f"nothing to replay: no {what} in {path}", file=sys.stderr)
            return 0
        if args.dry_run or sink is None:
            _dry_run(what, ledger_records(conn, args.since, args.until), sink)
            return 0
        result = _run_replay(sink, ledger_records(conn, args.since, args.until), total, args.retries)
    except sqlite3.Error as exc:
        raise CLIError(f"cannot read the ledger at {path}: {exc}") from None
    finally:
        conn.close()
    return _report_replay(result, sink, what)


def _dry_run(
    what: str, usage: Iterable[UsageRecord], sink: Optional[Sink], reasons: Sequence[str] = ()
) -> None:
    from collections import Counter

    count = tokens = 0
    customers: set[Optional[str]] = set()
    days: set[date] = set()
    for r in usage:
        count += 1
        tokens += r.input_tokens + r.output_tokens
        customers.add(r.customer)
        days.add(r.timestamp.date())
    target = repr(sink) if sink is not None else "no sink (USAGETAP_SINK is not set)"
    print(
        f"dry run: would replay {count:,} {what} to {target}: {len(customers):,} customer(s), "
        f"used {min(days)} .. {max(days)}, {tokens:,} tokens"
    )
    for reason, count in Counter(reasons).most_common(10):
        print(f"  {count:,} x {reason}")


def _run_replay(
    sink: Sink,
    records: Iterable[UsageRecord],
    total: int,
    retries: int,
    after_batch: Optional[Callable[[Sequence[UsageRecord], ReplayResult], None]] = None,
) -> ReplayResult:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from .replay import Replayer

    label = f"replaying to {sink.name}"
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=_console(stderr=True),
        transient=True,
    ) as progress:
        task = progress.add_task(label, total=total)

        def on_batch(batch: Sequence[UsageRecord], result: ReplayResult) -> None:
            if after_batch is not None:
                after_batch(batch, result)
            progress.update(task, advance=len(batch), description=label)

        def on_wait(seconds: float, reason: str) -> None:
            progress.update(task, description=f"{label}: retrying in {seconds:.1f}s ({reason[:60]})")

        replayer = Replayer(sink, retries=retries, on_batch=on_batch, on_wait=on_wait)
        return replayer.replay(records)


def _report_replay(result: ReplayResult, sink: Sink, what: str, undelivered_before: int = 0) -> int:
    from collections import Counter

    print(f"replayed {what} to {sink.name}: {result.summary()}")
    for label, reasons in (("dead", result.dead), ("failed", result.failed)):
        for reason, count in Counter(reasons.values()).most_common(5):
            print(f"  {label}: {count:,} x {reason}", file=sys.stderr)
    if result.halted:
        print(f"usagetap: stopped: {result.halted}", file=sys.stderr)
    return 0 if result.complete and not undelivered_before else _EXIT_UNDELIVERED


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        code = int(args.run(args))
        sys.stdout.flush()
        return code
    except BrokenPipeError:
        return _reader_gone()
    except KeyboardInterrupt:
        return 130
    except Exception as exc:
        return _fail(exc)


def _fail(exc: Exception) -> int:
    """Print ``exc`` as one line on stderr (never a traceback); exit status 1."""
    from .errors import ConfigurationError

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


def _reader_gone() -> int:
    """``usagetap report | head``: the reader left. Stop quietly, as other Unix tools do."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass
    return 141  # 128 + SIGPIPE, what a shell reports for a tool killed by the signal


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
