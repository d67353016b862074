"""``usagetap open-spanner ensure-meter``: create the Open Spanner meter the environment describes."""

from __future__ import annotations

import argparse
import json

from ._common import CLIError

__all__ = ["add_parser", "run"]

_EXAMPLES = """\
examples:
  USAGETAP_API_KEY=osp_... USAGETAP_BASE_URL=https://metering.example.com usagetap open-spanner ensure-meter
  usagetap open-spanner ensure-meter --meter ai_tokens --dimensions feature,product

the meter is created with usagetap's typed dimensions unless it exists; run it once per deployment
(or set USAGETAP_ENSURE_METER=1 to have the sink do it before its first delivery)
"""


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    group = sub.add_parser(
        "open-spanner",
        help="set up an Open Spanner deployment for usagetap",
        description="Open Spanner set-up, from the environment (USAGETAP_API_KEY, USAGETAP_BASE_URL, "
        "USAGETAP_METER, USAGETAP_DIMENSIONS).",
        epilog=_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    group.set_defaults(run=run)
    actions = group.add_subparsers(dest="action", metavar="<action>")
    actions.required = True
    ensure = actions.add_parser(
        "ensure-meter",
        help="create the meter unless it exists, and print it",
        description="Create the meter (POST /v1/meters) with usagetap's typed dimensions unless it "
        "exists, and print the meter as the deployment describes it (JSON).",
        epilog=_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ensure.add_argument("--meter", help="the meter's name (default: $USAGETAP_METER or ai_tokens)")
    ensure.add_argument(
        "--dimensions",
        metavar="NAMES",
        help="extra dimensions, comma-separated (default: $USAGETAP_DIMENSIONS)",
    )


def run(args: argparse.Namespace) -> int:
    import httpx

    from ..errors import ConfigurationError, UsagetapError
    from ..sinks.open_spanner import OpenSpanner

    dimensions = None
    if args.dimensions is not None:
        dimensions = [d.strip() for d in args.dimensions.split(",") if d.strip()]
    sink = OpenSpanner(meter=args.meter, dimensions=dimensions)
    try:
        meter = sink.ensure_meter()
    except ConfigurationError:
        raise
    except UsagetapError as exc:
        raise CLIError(str(exc)) from None
    except httpx.HTTPError as exc:
        raise CLIError(f"open_spanner: the deployment did not answer ({type(exc).__name__})") from None
    finally:
        sink.close()
    print(json.dumps(meter, indent=2, sort_keys=True))
    return 0
