"""Real processes metering calls in a loop, stopped from outside, and what they left behind."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from collections.abc import Mapping
from pathlib import Path
from typing import Optional

from usagetap.sinks import Ledger
from usagetap.testing.backends import SpaireBackend

# Each completed call's event id, with the time it completed, on its own flushed line.
WORKLOAD = """
import os, sys, time
import openai, usagetap
from usagetap._record import derive_event_id

client = usagetap.wrap(
    openai.OpenAI(base_url=os.environ["PROVIDER_URL"], api_key="k"), customer="org_1", provider="openai"
)
out = os.fdopen(int(os.environ["REPORT_FD"]), "w", buffering=1)
out.write("ready\\n")
for i in range(int(os.environ.get("CALLS", "1000000"))):
    response = client.chat.completions.create(model="gpt-4.1", messages=[{"role": "user", "content": "hi"}])
    out.write(f"{derive_event_id('openai', 'chat', response.id)} {time.time()}\\n")
    time.sleep(float(os.environ.get("PAUSE", "0")))
time.sleep(float(os.environ.get("HOLD", "0")))  # a server idle after its calls, until it is stopped
"""


def environment(extra: Mapping[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("USAGETAP_")}
    env.update(extra)
    return env


def remote(backend: SpaireBackend) -> dict[str, str]:
    """The variables that configure the Spaire sink against ``backend``."""
    return {
        "USAGETAP_SINK": "spaire",
        "USAGETAP_API_KEY": backend.api_key,
        "USAGETAP_BASE_URL": backend.url,
    }


class Workload:
    """A child running :data:`WORKLOAD`; ``completed()`` reads what it reported."""

    def __init__(self, cwd: Path, provider_url: str, env: Mapping[str, str], **knobs: str) -> None:
        read, write = os.pipe()
        self._read = os.fdopen(read, "r")
        self.proc = subprocess.Popen(
            [sys.executable, "-c", textwrap.dedent(WORKLOAD)],
            cwd=cwd,
            env=environment({**env, "PROVIDER_URL": provider_url, "REPORT_FD": str(write), **knobs}),
            pass_fds=(write,),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        os.close(write)
        assert self._read.readline() == "ready\n", self.stop()
        self.lines: list[str] = []

    def first_call(self) -> float:
        """Wait for the first completed call; its completion time."""
        line = self._read.readline()
        self.lines.append(line)
        return float(line.split()[1])

    def stop(self, signum: Optional[int] = None, timeout: float = 30) -> str:
        if signum is not None:
            self.proc.send_signal(signum)
        _, err = self.proc.communicate(timeout=timeout)
        self.lines += self._read.read().splitlines()
        self._read.close()
        return err

    def completed(self) -> dict[str, float]:
        """Event id -> completion time of every call the child saw complete."""
        out: dict[str, float] = {}
        for line in self.lines:
            parts = line.split()
            if len(parts) == 2:
                out[parts[0]] = float(parts[1])
        return out


def drain(cwd: Path, env: Mapping[str, str], timeout: float = 60) -> str:
    """A second process on the same directory delivers what the first left in the spool."""
    code = "import sys, usagetap\nr = usagetap.flush(timeout=20)\nsys.exit(r.pending != 0)"
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=cwd,
        env=environment(env),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def ledger_ids(cwd: Path) -> list[str]:
    path = cwd / ".usagetap" / "ledger.db"
    if not path.exists():
        return []
    ledger = Ledger(path)
    try:
        return [r.event_id for r in ledger.records()]
    finally:
        ledger.close()
