"""``usagetap reconcile``: the local ledger against the provider's organization usage and cost APIs."""

from __future__ import annotations

import argparse
import os
import sqlite3
import sys
from decimal import Decimal, InvalidOperation

from ._common import CLIError, console, parse_day

__all__ = ["EXIT_DRIFT", "add_parser", "run"]

EXIT_DRIFT = 4
_LONG_RANGE_DAYS = 7  # longer ranges show their progress on stderr

_EXAMPLES = """\
examples:
  usagetap reconcile openai --since 2026-11-01 --until 2026-11-30
  usagetap reconcile anthropic --since 2026-11-01 --until 2026-11-07 --format json
  usagetap reconcile openai --since 2026-11-30 --until 2026-11-30 --max-drift 0.5% --save
                                           nightly: exit status 4 when coverage or cost drifts;
                                           'usagetap report --html' then shows coverage per day
"""


def _percent(text: str) -> Decimal:
    try:
        value = Decimal(text.strip().removesuffix("%"))
    except InvalidOperation:
        value = Decimal(-1)
    if not value.is_finite() or value < 0:
        raise argparse.ArgumentTypeError(f"not a percentage (e.g. 1%, 0.5): {text!r}")
    return value


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser(
        "reconcile",
        help="compare the ledger with the provider's own usage and cost",
        description="Read the provider's organization usage and cost APIs with an admin key "
        "($USAGETAP_OPENAI_ADMIN_KEY or $USAGETAP_ANTHROPIC_ADMIN_KEY) and compare them with the "
        "ledger by UTC day, model, project/workspace, service tier and batch (and API key, see --by-key): "
        "per bucket the provider's "
        "and the metered tokens, the coverage and the residual. OpenAI's cost is compared per day (its "
        "costs have no model). Exit status 4 when coverage or cost drifts past --max-drift.",
        epilog=_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("provider", choices=("openai", "anthropic"))
    parser.add_argument("--since", type=parse_day, required=True, help="first UTC day (YYYY-MM-DD)")
    parser.add_argument("--until", type=parse_day, required=True, help="last UTC day (YYYY-MM-DD)")
    parser.add_argument("--format", choices=("table", "csv", "json"), default="table")
    parser.add_argument(
        "--max-drift",
        type=_percent,
        default=Decimal(1),
        metavar="PCT",
        help="the coverage or cost drift that fails the run, in percent (default: 1%%)",
    )
    parser.add_argument(
        "--base-url",
        help="the provider's API (default: $OPENAI_BASE_URL / $ANTHROPIC_BASE_URL, else its own)",
    )
    parser.add_argument(
        "--by-key",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="split buckets by API key (reads the provider's key listing; costs then compare per day). "
        "Default: when every record carries its key's hint and each hint names one listed key",
    )
    parser.add_argument("--db", help="ledger path (default: $USAGETAP_DB or ./.usagetap/ledger.db)")
    parser.add_argument(
        "--save", action="store_true", help="keep the result next to the ledger for 'usagetap report --html'"
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from .. import reconcile as rec
    from .._ledger_source import LedgerError, open_ledger
    from ..db import ledger_pg
    from ..errors import ConfigurationError
    from ..reconcile import _render
    from ..sinks.ledger import default_path

    def source_name(path: str) -> str:
        return ledger_pg.redact(path) if ledger_pg.is_url(path) else path

    if args.since > args.until:
        raise CLIError(f"--since {args.since} is after --until {args.until}")
    variable = rec.ADMIN_KEY_VARIABLES[args.provider]
    key = os.environ.get(variable, "").strip()
    if not key:
        raise CLIError(f"set {variable} to an admin key of the {args.provider} organization")
    path = args.db or default_path()
    if args.save and ledger_pg.is_url(path):
        raise CLIError("--save keeps the result next to a ledger file; a PostgreSQL ledger has none")
    try:
        source = open_ledger(path)
    except FileNotFoundError:
        raise CLIError(f"no ledger at {source_name(path)} (pass --db)") from None
    except (sqlite3.Error, LedgerError, ConfigurationError) as exc:
        raise CLIError(f"cannot open the ledger at {source_name(path)}: {exc}") from None
    try:
        ledger = source.reconcile_rows(args.provider, args.since, args.until)
    except (sqlite3.Error, LedgerError) as exc:
        raise CLIError(f"cannot read the ledger at {source.name}: {exc}") from None
    finally:
        source.close()
    long_range = (args.until - args.since).days >= _LONG_RANGE_DAYS
    try:
        result = rec.reconcile(
            args.provider,
            args.since,
            args.until,
            ledger,
            admin_key=key,
            base_url=args.base_url,
            max_drift=args.max_drift,
            progress=_progress if long_range else None,
            by_key=args.by_key,
        )
    except (rec.AdminError, ValueError) as exc:
        raise CLIError(f"{args.provider}: {exc}") from None
    if args.save:
        _render.save(result, path)
    if args.format == "json":
        print(_render.render_json(result))
    elif args.format == "csv":
        sys.stdout.write(_render.render_csv(result))
    else:
        console().print(_render.render_table(result))
    drifted = result.drifted
    for line in drifted:
        print(f"usagetap: drift: {line}", file=sys.stderr)
    return EXIT_DRIFT if drifted else 0


def _progress(message: str) -> None:
    print(f"usagetap: reading {message}", file=sys.stderr, flush=True)
