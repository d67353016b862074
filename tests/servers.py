"""Real PostgreSQL and Redis servers on loopback, started from the distribution's binaries.

Session fixtures ``postgres_server`` and ``redis_server`` start one server each for the whole
run (only when a test asks for it) and stop it at the end; ``postgres_url`` gives each test a
fresh database and ``redis_url`` an emptied server. Outside CI a missing binary skips the test
with the reason; with ``USAGETAP_REQUIRE_SERVERS=1`` (set by ``.ci/run``) it fails it.
"""

from __future__ import annotations

import glob
import itertools
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn

import pytest

REQUIRE = "USAGETAP_REQUIRE_SERVERS"
_STARTUP_SECONDS = 30.0
_databases = itertools.count(1)


@dataclass(frozen=True)
class Server:
    """A running server: where it listens and the URL of its default database."""

    host: str
    port: int
    url: str


def unavailable(reason: str) -> NoReturn:
    """Skip the test (with the reason), or fail it when CI requires the servers."""
    if os.environ.get(REQUIRE) == "1":
        pytest.fail(f"{reason} ({REQUIRE}=1)")
    pytest.skip(reason)


def free_port() -> int:
    """A TCP port on loopback that nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _wait_for_port(port: int, process: subprocess.Popen[bytes], name: str) -> None:
    deadline = time.monotonic() + _STARTUP_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{name} exited with status {process.returncode} while starting")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"{name} did not listen on port {port} within {_STARTUP_SECONDS} s")


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _postgres_bindir() -> Path | None:
    for candidate in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True):
        if Path(candidate, "postgres").exists() and Path(candidate, "initdb").exists():
            return Path(candidate)
    initdb = shutil.which("initdb")
    if initdb and Path(initdb).with_name("postgres").exists():
        return Path(initdb).parent
    return None


def _as_postgres_user() -> list[str]:
    """PostgreSQL refuses to run as root: run its binaries as the ``postgres`` user then."""
    if os.geteuid() != 0:
        return []
    runuser = shutil.which("runuser")
    if runuser is None:
        unavailable("running as root without runuser: cannot start PostgreSQL as another user")
    return [runuser, "-u", "postgres", "--"]


def _psql(bindir: Path, server: Server, sql: str) -> None:
    subprocess.run(
        [str(bindir / "psql"), "-q", "-v", "ON_ERROR_STOP=1", "-d", server.url, "-c", sql],
        check=True,
        capture_output=True,
        timeout=30,
    )


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[Server]:
    """A PostgreSQL server on loopback for the session (trust auth, no fsync), user ``postgres``."""
    bindir = _postgres_bindir()
    if bindir is None:
        unavailable("PostgreSQL server binaries not found (Debian package postgresql)")
    prefix = _as_postgres_user()
    root = Path(tempfile.mkdtemp(prefix="usagetap-pg-"))
    root.chmod(0o755)
    data = root / "data"
    if prefix:
        shutil.chown(root, user="postgres", group="postgres")
    subprocess.run(
        [*prefix, str(bindir / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres", "-N"],
        check=True,
        capture_output=True,
        timeout=120,
    )
    port = free_port()
    process = subprocess.Popen(
        [
            *prefix,
            str(bindir / "postgres"),
            "-D", str(data),
            "-p", str(port),
            "-k", str(root),
            "-c", "listen_addresses=127.0.0.1",
            "-c", "fsync=off",
            "-c", "synchronous_commit=off",
            "-c", "full_page_writes=off",
            "-c", "max_connections=200",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        _wait_for_port(port, process, "postgres")
        server = Server("127.0.0.1", port, f"postgresql://postgres@127.0.0.1:{port}/postgres")
        deadline = time.monotonic() + _STARTUP_SECONDS
        while True:
            try:
                _psql(bindir, server, "SELECT 1")
                break
            except subprocess.CalledProcessError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        yield server
    finally:
        _stop(process)
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def postgres_url(postgres_server: Server) -> str:
    """The URL of a fresh, empty database on the session's PostgreSQL server."""
    bindir = _postgres_bindir()
    assert bindir is not None
    name = f"usagetap_test_{os.getpid()}_{next(_databases)}"
    _psql(bindir, postgres_server, f'CREATE DATABASE "{name}"')
    return f"postgresql://postgres@{postgres_server.host}:{postgres_server.port}/{name}"


def _redis_command(port: int, *words: str) -> bytes:
    request = f"*{len(words)}\r\n".encode() + b"".join(
        f"${len(word.encode())}\r\n{word}\r\n".encode() for word in words
    )
    with socket.create_connection(("127.0.0.1", port), timeout=5) as conn:
        conn.sendall(request)
        return conn.recv(65536)


@pytest.fixture(scope="session")
def redis_server() -> Iterator[Server]:
    """A Redis server on loopback for the session, with no persistence."""
    binary = shutil.which("redis-server")
    if binary is None:
        unavailable("redis-server not found (Debian package redis-server)")
    root = Path(tempfile.mkdtemp(prefix="usagetap-redis-"))
    port = free_port()
    process = subprocess.Popen(
        [
            binary,
            "--port", str(port),
            "--bind", "127.0.0.1",
            "--save", "",
            "--appendonly", "no",
            "--dir", str(root),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        _wait_for_port(port, process, "redis-server")
        deadline = time.monotonic() + _STARTUP_SECONDS
        while not _redis_command(port, "PING").startswith(b"+PONG"):
            if time.monotonic() > deadline:
                raise RuntimeError("redis-server did not answer PING")
            time.sleep(0.05)
        yield Server("127.0.0.1", port, f"redis://127.0.0.1:{port}/0")
    finally:
        _stop(process)
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def redis_url(redis_server: Server) -> str:
    """The URL of the session's Redis server, emptied for this test."""
    reply = _redis_command(redis_server.port, "FLUSHALL")
    assert reply.startswith(b"+OK"), reply
    return redis_server.url
