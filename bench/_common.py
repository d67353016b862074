"""Helpers shared by the benchmarks: a loopback provider in its own process, and median ratios."""

from __future__ import annotations

import contextlib
import os
import platform
import statistics
import subprocess
import sys
from collections.abc import Iterator


@contextlib.contextmanager
def provider_process() -> Iterator[str]:
    """Start ``python -m usagetap.testing`` in a child process; yield its base URL."""
    proc = subprocess.Popen([sys.executable, "-m", "usagetap.testing"], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        url = proc.stdout.readline().strip()
        if not url.startswith("http"):
            raise RuntimeError("loopback provider did not start")
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def median_ratio(wrapped: list[float], bare: list[float]) -> float:
    return statistics.median(wrapped) / statistics.median(bare)


def machine() -> str:
    return f"{os.cpu_count()} cores, Python {platform.python_version()}, {platform.machine()}"
