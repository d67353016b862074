"""``usagetap status``: what the delivery spool holds per sink, read-only."""

from __future__ import annotations

import argparse
import os
import sqlite3
from typing import TYPE_CHECKING, Any, Optional

from ._common import CLIError, console, spool_path

if TYPE_CHECKING:
    from rich.console import Console

    from .._status import SpoolStatus

__all__ = ["add_parser", "run"]

_EXAMPLES = """\
examples:
  usagetap status                          the spool at $USAGETAP_SPOOL or ./.usagetap/spool.db
  usagetap status --spool /var/lib/app/spool.db --format json

what it shows, per sink: records waiting (due now, in backoff after a failed attempt, in flight:
leased by a delivering process, and whether that process is alive), the oldest waiting record,
dead letters by reason, the last delivery error and the counters (delivered, duplicates, retried,
dead) the delivering processes keep in the spool, summed over all of them.
"""


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    status = sub.add_parser(
        "status",
        help="what is waiting for delivery, dead letters and delivery errors",
        description="Read the delivery spool (read-only) and show, per sink, what is waiting, what is "
        "in flight, what died and why, and the last delivery error.",
        epilog=_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    status.add_argument(
        "--spool", metavar="PATH", help="spool path (default: $USAGETAP_SPOOL or ./.usagetap/spool.db)"
    )
    status.add_argument("--format", choices=("table", "json"), default="table", help="default: table")
    status.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    import json
    import time

    from .._status import NotASpool, SpoolStatus, open_readonly, read_status

    path = spool_path(args)
    try:
        conn = open_readonly(path)
    except NotASpool as exc:
        raise CLIError(f"{path} is {exc}") from None
    except FileNotFoundError:
        if args.spool:
            raise CLIError(
                f"no spool at {path} (check the path, or leave --spool out for the default)"
            ) from None
        empty = SpoolStatus(path=path, size=0, now=time.time(), sinks=[], dead=[])
        if args.format == "json":
            print(json.dumps(empty.as_dict(), indent=2))
        else:
            print(
                f"Nothing waiting: no spool at {path} yet (made when a record is queued for a remote sink)."
            )
        return 0
    except sqlite3.Error as exc:
        raise CLIError(f"cannot read the spool at {path}: {exc}") from None
    try:
        status = read_status(conn, path)
    except sqlite3.Error as exc:
        raise CLIError(f"cannot read the spool at {path}: {exc}") from None
    finally:
        conn.close()
    ledger = _shared_ledger()
    if args.format == "json":
        print(json.dumps({**status.as_dict(), **({"ledger": ledger} if ledger else {})}, indent=2))
    else:
        _print_status(status, console())
        if ledger:
            _print_ledger(ledger, console())
    return 0


def _shared_ledger() -> Optional[dict[str, Any]]:
    """The PostgreSQL ledger ``$USAGETAP_DB`` names (None for a file): its records, or why it cannot be
    read."""
    from .._ledger_source import LedgerError, open_ledger
    from ..db.ledger_pg import is_url, redact
    from ..errors import ConfigurationError

    target = os.environ.get("USAGETAP_DB") or ""
    if not is_url(target):
        return None
    try:
        source = open_ledger(target, connect_timeout=5)
        try:
            return {"target": source.name, "records": source.count(None, None)}
        finally:
            source.close()
    except (FileNotFoundError, LedgerError, ConfigurationError) as exc:
        return {"target": redact(target), "error": str(exc)}


def _print_ledger(ledger: dict[str, Any], console: Console) -> None:
    from rich.markup import escape

    state = f"{ledger['records']:,} records" if "records" in ledger else f"cannot be read: {ledger['error']}"
    console.print(f"\nLedger {escape(ledger['target'])} (shared, PostgreSQL): {escape(state)}")


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

    from ..delivery.worker import COUNTERS

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
