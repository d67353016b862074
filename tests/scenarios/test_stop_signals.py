"""SIGTERM, SIGINT and SIGKILL at random points under load, for each default configuration.

A child meters calls against the loopback provider in a loop and reports each
completed call; it is stopped from outside, a second process delivers what it
left in the spool, and the records delivered are counted against the calls.
SIGTERM and SIGINT lose nothing; SIGKILL loses at most the calls that completed
within the last commit interval (0.1 s) before it, plus :data:`SLACK`.
"""

from __future__ import annotations

import random
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from usagetap._record import derive_event_id
from usagetap.testing import ProviderServer
from usagetap.testing.backends import SpaireBackend

from ._load import Workload, drain, ledger_ids, remote

COMMIT_INTERVAL = 0.1
# a group commit takes a few ms, more on a loaded 2-core machine; the child's report of a call is
# written just after the call returns
SLACK = 0.15


@pytest.fixture(scope="module")
def provider() -> Iterator[ProviderServer]:
    with ProviderServer() as server:
        yield server


@pytest.fixture
def spaire() -> Iterator[SpaireBackend]:
    with SpaireBackend() as backend:
        yield backend


def test_sigterm_shortly_after_five_calls_keeps_them_in_the_default_ledger(
    tmp_path: Path, provider: ProviderServer
) -> None:
    child = Workload(tmp_path, provider.openai_url, {}, CALLS="5", HOLD="60")
    child.first_call()
    time.sleep(0.3)
    child.stop(signal.SIGTERM)
    assert child.proc.returncode == -signal.SIGTERM, "the exit status is the default action's"
    assert sorted(ledger_ids(tmp_path)) == sorted(child.completed())
    assert len(child.completed()) == 5


def _run(
    tmp_path: Path, provider: ProviderServer, env: dict[str, str], signum: int, seed: int
) -> dict[str, float]:
    child = Workload(tmp_path, provider.openai_url, env)
    child.first_call()
    time.sleep(random.Random(seed).uniform(0.2, 1.2))
    killed_at = time.time()
    err = child.stop(signum)
    assert child.proc.returncode in (-signum, 1 if signum == signal.SIGINT else -signum), err
    drain(tmp_path, env)
    completed = child.completed()
    assert len(completed) > 20, "the child was under load"
    completed["__killed_at__"] = killed_at
    return completed


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_signal_under_load_loses_nothing_with_the_default_ledger(
    tmp_path: Path, provider: ProviderServer, signum: int
) -> None:
    completed = _run(tmp_path, provider, {}, signum, seed=signum)
    del completed["__killed_at__"]
    _every_completed_call_and_at_most_the_one_in_flight(ledger_ids(tmp_path), completed, provider)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_signal_under_load_loses_nothing_with_a_remote_sink_from_the_environment(
    tmp_path: Path, provider: ProviderServer, spaire: SpaireBackend, signum: int
) -> None:
    completed = _run(tmp_path, provider, remote(spaire), signum, seed=signum)
    del completed["__killed_at__"]
    _every_completed_call_and_at_most_the_one_in_flight(list(spaire.events), completed, provider)
    assert spaire.inserted == len(spaire.events), "nothing stored twice"


def _every_completed_call_and_at_most_the_one_in_flight(
    delivered: list[str], completed: dict[str, float], provider: ProviderServer
) -> None:
    """Nothing lost; a record beyond the calls the child reported is the call the signal interrupted
    between the provider's answer and the child's report: billed, so metered, and at most one."""
    assert len(delivered) == len(set(delivered))
    assert sorted(set(completed) - set(delivered)) == [], "a completed call lost"
    extra = set(delivered) - set(completed)
    billed = {derive_event_id("openai", "chat", response_id) for response_id in provider.issued}
    assert extra <= billed and len(extra) <= 1, f"records of calls never made: {sorted(extra - billed)}"


def _lost_only_the_last_interval(delivered: list[str], completed: dict[str, float]) -> None:
    killed_at = completed.pop("__killed_at__")
    lost = {i: t for i, t in completed.items() if i not in set(delivered)}
    old = {i: round(killed_at - t, 3) for i, t in lost.items() if killed_at - t > COMMIT_INTERVAL + SLACK}
    assert not old, (
        f"{len(old)} records older than the commit interval lost, up to {max(old.values(), default=0)} s old"
    )
    assert len(set(delivered) - set(completed)) <= 1, "only the call in flight at the kill is unreported"
    assert len(delivered) == len(set(delivered))


def test_sigkill_under_load_loses_at_most_the_commit_interval_with_the_default_ledger(
    tmp_path: Path, provider: ProviderServer
) -> None:
    completed = _run(tmp_path, provider, {}, signal.SIGKILL, seed=9)
    _lost_only_the_last_interval(ledger_ids(tmp_path), completed)


def test_sigkill_under_load_loses_at_most_the_commit_interval_with_a_remote_sink(
    tmp_path: Path, provider: ProviderServer, spaire: SpaireBackend
) -> None:
    completed = _run(tmp_path, provider, remote(spaire), signal.SIGKILL, seed=10)
    _lost_only_the_last_interval(list(spaire.events), completed)


CHAINED = """
import os, signal, sys, time
import openai, usagetap

signal.signal(signal.SIGTERM, lambda *_: os._exit(7))  # the application's own handler: no atexit
usagetap.configure(commit_interval=60.0)  # no group commit before the signal
client = usagetap.wrap(openai.OpenAI(base_url=os.environ["PROVIDER_URL"], api_key="k"))
for _ in range(5):
    client.chat.completions.create(model="gpt-4.1", messages=[{"role": "user", "content": "hi"}])
print("done", flush=True)
time.sleep(60)
"""


def test_an_application_sigterm_handler_runs_after_the_buffered_records_are_committed(
    tmp_path: Path, provider: ProviderServer
) -> None:
    import subprocess
    import sys

    from ._load import environment

    proc = subprocess.Popen(
        [sys.executable, "-c", CHAINED],
        cwd=tmp_path,
        env=environment({"PROVIDER_URL": provider.openai_url}),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    assert proc.stdout.readline() == "done\n"
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 7, err
    drain(tmp_path, {})
    assert len(ledger_ids(tmp_path)) == 5
