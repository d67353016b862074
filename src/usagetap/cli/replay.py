"""``usagetap replay``: re-send dead letters, a ledger range or a spool file to the configured sink."""

from __future__ import annotations

import argparse
import os
import sqlite3
import sys
from collections.abc import Callable, Iterable, Sequence
from datetime import date
from typing import TYPE_CHECKING, Optional

from ._common import EXIT_UNDELIVERED, CLIError, console, parse_count, parse_day, spool_path

if TYPE_CHECKING:
    from .._record import UsageRecord
    from .._replay import ReplayResult
    from ..sinks.base import Sink

__all__ = ["add_parser", "run"]

_EXAMPLES = """\
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


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    replay = sub.add_parser(
        "replay",
        help="re-send dead letters or a ledger range to the configured sink",
        description="Re-send dead letters from the spool (--dead) or the records of a date range of the "
        "local ledger (--since/--until) to the sink the environment configures, with the same event ids.",
        epilog=_EXAMPLES,
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
        type=parse_day,
        metavar="DAY",
        help="first UTC day of usage to replay (YYYY-MM-DD; by the record's time)",
    )
    replay.add_argument(
        "--until", type=parse_day, metavar="DAY", help="last UTC day of usage to replay (YYYY-MM-DD)"
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
        "--db",
        metavar="PATH",
        help="ledger path or postgresql:// URL (default: $USAGETAP_DB or ./.usagetap/ledger.db)",
    )
    replay.add_argument(
        "--spool", metavar="PATH", help="spool path (default: $USAGETAP_SPOOL or ./.usagetap/spool.db)"
    )
    replay.add_argument(
        "--retries",
        type=parse_count,
        default=5,
        metavar="N",
        help="retries of an event the backend asks to retry (default: 5)",
    )
    replay.add_argument("--dry-run", action="store_true", help="show what would be sent; send nothing")
    replay.set_defaults(run=run)


def _configured_sink() -> Optional[Sink]:
    from ..errors import ConfigurationError
    from ..sinks._env import sink_from_env

    try:
        return sink_from_env(os.environ)
    except ConfigurationError as exc:
        raise CLIError(str(exc)) from None


def run(args: argparse.Namespace) -> int:
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
    from .._replay import load_dead_letters, open_spool_file, update_dead_letters
    from .._status import NotASpool

    path = spool_path(args)
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
            return EXIT_UNDELIVERED if letters.unreadable else 0
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
    from .._replay import read_file
    from .._status import NotASpool

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
        return EXIT_UNDELIVERED if lost else 0
    if args.dry_run or sink is None:
        _dry_run(what, found.records, sink)
        return 0
    result = _run_replay(sink, found.records, len(found.records), args.retries)
    return _report_replay(result, sink, what, undelivered_before=lost)


def _replay_ledger(args: argparse.Namespace, sink: Optional[Sink]) -> int:
    from .._ledger_source import LedgerError, open_ledger
    from .._replay import count_ledger, ledger_records
    from ..db.ledger_pg import redact
    from ..errors import ConfigurationError
    from ..sinks.ledger import default_path

    path = args.db or default_path()
    try:
        conn = open_ledger(path)
    except FileNotFoundError:
        raise CLIError(f"no ledger at {redact(path)} (pass --db, or set USAGETAP_DB)") from None
    except (LedgerError, ConfigurationError) as exc:
        raise CLIError(f"cannot open the ledger at {redact(path)}: {exc}") from None
    path = conn.name
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
    except (sqlite3.Error, LedgerError) as exc:
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

    from .._replay import Replayer

    label = f"replaying to {sink.name}"
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=console(stderr=True),
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
    return 0 if result.complete and not undelivered_before else EXIT_UNDELIVERED
