"""Import time: ``python -X importtime -c "import usagetap"``, cumulative microseconds, median of runs.

Method: a fresh interpreter per run; the figure is the cumulative time the
``usagetap`` line reports (its own modules and everything they import), median
over ``--runs``, bytecode cached (as after ``pip install``). Also lists the
heaviest modules it pulls in, the self time of usagetap's own modules, and
checks that no provider SDK and no sink module other than the base is
imported. Then the same after ``import openai``, as in an application that
uses the SDK: the standard library modules both need are loaded already.

    python bench/importtime.py [--runs 15]
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import statistics
import subprocess
import sys

from _common import machine

LAZY = (
    "openai",
    "anthropic",
    "httpx",
    "httpx2",
    "genai_prices",
    "tenacity",
    "wrapt",
    "rich",
    "asyncio",
    "logging",
)


# As after ``pip install``: bytecode cached (an environment with PYTHONDONTWRITEBYTECODE set would
# otherwise compile usagetap from source in every run).
ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def one_run(code: str = "import usagetap") -> dict[str, tuple[int, int, int]]:
    """``{module: (self µs, cumulative µs, depth)}`` from one ``-X importtime`` run."""
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", code], capture_output=True, text=True, check=True, env=ENV
    )
    out: dict[str, tuple[int, int, int]] = {}
    for line in proc.stderr.splitlines():
        if not line.startswith("import time:") or "|" not in line or "self [us]" in line:
            continue
        own, cumulative, name = line[len("import time:") :].split("|")
        depth = (len(name) - len(name.lstrip())) // 2
        out[name.strip()] = (int(own), int(cumulative), depth)
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    one_run()  # writes the bytecode cache
    runs = [one_run() for _ in range(args.runs)]
    totals = [run["usagetap"][1] for run in runs]
    last = runs[-1]
    loaded = set(last)
    eager_sinks = sorted(m for m in loaded if m.startswith("usagetap.sinks.") and m != "usagetap.sinks.base")
    heavy = sorted(
        ((statistics.median(r[m][1] for r in runs if m in r), m) for m in loaded if last[m][2] <= 2),
        reverse=True,
    )[:8]
    print(
        f"method: python -X importtime -c 'import usagetap', cumulative time of the usagetap line, "
        f"median of {args.runs} fresh interpreters, bytecode cached ({machine()})"
    )
    print(f"import usagetap: {statistics.median(totals) / 1000:.1f} ms (min {min(totals) / 1000:.1f} ms)")
    own = [sum(v[0] for m, v in run.items() if m.split(".")[0] == "usagetap") for run in runs]
    print(f"of which usagetap's own modules (self time): {statistics.median(own) / 1000:.1f} ms")
    print("heaviest imports (median cumulative ms): " + ", ".join(f"{m} {us / 1000:.1f}" for us, m in heavy))
    print(f"imported eagerly: {', '.join(m for m in LAZY if m in loaded) or 'none'} of {', '.join(LAZY)}")
    print(f"sink modules imported eagerly: {', '.join(eager_sinks) or 'none'}")
    if importlib.util.find_spec("openai") is None:
        print("import usagetap after import openai: openai not installed here")
        return
    after = [one_run("import openai; import usagetap")["usagetap"][1] for _ in range(args.runs)]
    print(
        f"import usagetap after import openai: {statistics.median(after) / 1000:.1f} ms "
        f"(min {min(after) / 1000:.1f} ms)"
    )


if __name__ == "__main__":
    main()
