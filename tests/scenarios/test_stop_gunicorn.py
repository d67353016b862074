"""gunicorn with 3 workers metering calls, stopped by SIGTERM under load: nothing lost, nothing twice.

Each request makes one call to the loopback provider through a wrapped client
and appends the call's event id to a file (the calls made). After the stop, a
second process delivers what the spool kept; the records delivered (to the
default ledger, or to a Spaire backend configured by environment variables)
are exactly the calls made.
"""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from usagetap.testing import ProviderServer
from usagetap.testing.backends import SpaireBackend

from ._load import drain, environment, ledger_ids, remote

pytest.importorskip("gunicorn")

APP = """
import os
import openai, usagetap
from usagetap._record import derive_event_id

client = usagetap.wrap(
    openai.OpenAI(base_url=os.environ["PROVIDER_URL"], api_key="k"), customer="org_1", provider="openai"
)
calls = os.open("calls.txt", os.O_WRONLY | os.O_APPEND | os.O_CREAT)

def app(environ, start_response):
    response = client.chat.completions.create(model="gpt-4.1", messages=[{"role": "user", "content": "hi"}])
    os.write(calls, (derive_event_id("openai", "chat", response.id) + "\\n").encode())
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"ok"]
"""


@pytest.fixture(scope="module")
def provider() -> Iterator[ProviderServer]:
    with ProviderServer() as server:
        yield server


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _serve_under_load(cwd: Path, provider: ProviderServer, env: dict[str, str]) -> int:
    """Run gunicorn, load it from 4 threads, SIGTERM it mid-load; the responses received."""
    (cwd / "app.py").write_text(textwrap.dedent(APP))
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "-w", "3", "-b", f"127.0.0.1:{port}", "app:app"],
        cwd=cwd,
        env=environment({**env, "PROVIDER_URL": provider.openai_url}),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    url = f"http://127.0.0.1:{port}/"
    deadline = time.monotonic() + 30
    while True:
        try:
            httpx.get(url, timeout=5)
            break
        except httpx.TransportError:
            assert time.monotonic() < deadline and proc.poll() is None, "gunicorn did not start"
            time.sleep(0.1)
    ok = [1]
    stop = threading.Event()

    def load() -> None:
        with httpx.Client(timeout=10) as http:
            while not stop.is_set():
                try:
                    if http.get(url).status_code == 200:
                        ok.append(1)
                except httpx.TransportError:
                    return

    threads = [threading.Thread(target=load) for _ in range(4)]
    for thread in threads:
        thread.start()
    time.sleep(1.5)
    proc.send_signal(signal.SIGTERM)
    try:
        _, err = proc.communicate(timeout=40)
    finally:
        stop.set()
        for thread in threads:
            thread.join(15)
    assert proc.returncode == 0, err
    return len(ok)


def _calls(cwd: Path) -> list[str]:
    return (cwd / "calls.txt").read_text().split()


def test_sigterm_under_load_loses_nothing_in_the_default_ledger(
    tmp_path: Path, provider: ProviderServer
) -> None:
    served = _serve_under_load(tmp_path, provider, {})
    drain(tmp_path, {})
    calls = _calls(tmp_path)
    assert len(calls) >= served > 20
    assert sorted(ledger_ids(tmp_path)) == sorted(calls)
    assert len(set(calls)) == len(calls)


def test_sigterm_under_load_loses_nothing_at_a_remote_sink(tmp_path: Path, provider: ProviderServer) -> None:
    with SpaireBackend() as spaire:
        served = _serve_under_load(tmp_path, provider, remote(spaire))
        drain(tmp_path, remote(spaire))
        calls = _calls(tmp_path)
        assert len(calls) >= served > 20
        assert sorted(spaire.events) == sorted(calls)
        assert spaire.inserted == len(calls), "each event stored once"
