"""A new process's first moments are as durable as the rest: SIGKILL within 200 ms of its first call.

The child wraps its client and starts calling at once, so the first records
are captured while genai-prices is still being imported. Each run is killed at
a random point within 200 ms of the first completed call; a second process
delivers what the spool kept, and no call that completed more than the commit
interval (0.1 s) plus :data:`SLACK` before the kill may be missing.
"""

from __future__ import annotations

import random
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from usagetap.testing import ProviderServer
from usagetap.testing.backends import SpaireBackend

from ._load import Workload, drain, ledger_ids, remote

COMMIT_INTERVAL = 0.1
SLACK = 0.05  # a group commit's own time on a loaded machine, and the write of the report line
RUNS = 6


@pytest.fixture(scope="module")
def provider() -> Iterator[ProviderServer]:
    with ProviderServer() as server:
        yield server


@pytest.fixture(scope="module")
def spaire() -> Iterator[SpaireBackend]:
    with SpaireBackend() as backend:
        yield backend


@pytest.mark.parametrize("sink", ["ledger", "remote"])
def test_sigkill_in_the_first_200_ms_after_the_first_call_loses_at_most_the_commit_interval(
    tmp_path: Path, provider: ProviderServer, spaire: SpaireBackend, sink: str
) -> None:
    env = remote(spaire) if sink == "remote" else {}
    rng = random.Random(18)
    old: list[float] = []
    kept = 0
    for run in range(RUNS):
        cwd = tmp_path / f"run{run}"
        cwd.mkdir()
        child = Workload(cwd, provider.openai_url, env)
        first = child.first_call()
        time.sleep(max(0.0, first + rng.uniform(0.05, 0.2) - time.time()))
        killed_at = time.time()
        child.stop(signal.SIGKILL)
        drain(cwd, env)
        delivered = set(spaire.events) if sink == "remote" else set(ledger_ids(cwd))
        completed = child.completed()
        kept += len(delivered & completed.keys())
        old += [
            killed_at - t
            for i, t in completed.items()
            if i not in delivered and killed_at - t > COMMIT_INTERVAL + SLACK
        ]
    assert not old, f"{len(old)} records older than the commit interval lost, the oldest {max(old):.3f} s old"
    assert kept > 0
