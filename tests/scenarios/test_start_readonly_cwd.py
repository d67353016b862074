"""A read-only working directory: the default ledger and spool move to the per-user data directory.

The child runs in a private mount namespace (``unshare -rm``) where its working
directory is bind-mounted read-only, which stops writes even for root.
"""

from __future__ import annotations

import shlex
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from usagetap.sinks import Ledger
from usagetap.testing import ProviderServer

from ._load import environment

CALLS = """
import os, openai, usagetap
client = usagetap.wrap(openai.OpenAI(base_url=os.environ["PROVIDER_URL"], api_key="k"))
for customer in ("a", "b", "c"):
    with usagetap.customer(customer):
        client.chat.completions.create(model="gpt-4.1", messages=[{"role": "user", "content": "hi"}])
"""


@pytest.fixture(scope="module")
def provider() -> Iterator[ProviderServer]:
    with ProviderServer() as server:
        yield server


def run_read_only(cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """Run :data:`CALLS` with ``cwd`` mounted read-only."""
    d = shlex.quote(str(cwd))
    script = (
        f"mount --bind {d} {d} && mount -o remount,bind,ro {d} && cd {d} && "
        f"exec {shlex.quote(sys.executable)} -c {shlex.quote(textwrap.dedent(CALLS))}"
    )
    return subprocess.run(
        ["unshare", "-rm", "sh", "-c", script],
        env=environment(env),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_a_read_only_working_directory_keeps_the_default_ledger_in_the_user_data_directory(
    tmp_path: Path, provider: ProviderServer
) -> None:
    cwd, data = tmp_path / "app", tmp_path / "data"
    cwd.mkdir()
    result = run_read_only(cwd, {"PROVIDER_URL": provider.openai_url, "XDG_DATA_HOME": str(data)})
    assert result.returncode == 0, result.stderr
    assert "not writable" in result.stderr and str(data / "usagetap") in result.stderr
    assert "dropped" not in result.stderr
    records = Ledger(data / "usagetap" / "ledger.db").records()
    assert sorted(r.customer for r in records) == ["a", "b", "c"]  # type: ignore[type-var]
    assert not (cwd / ".usagetap").exists()


def test_an_explicit_ledger_path_that_cannot_be_written_is_not_moved(
    tmp_path: Path, provider: ProviderServer
) -> None:
    cwd, data = tmp_path / "app", tmp_path / "data"
    cwd.mkdir()
    explicit = cwd / "billing.db"
    env = {"PROVIDER_URL": provider.openai_url, "XDG_DATA_HOME": str(data), "USAGETAP_DB": str(explicit)}
    result = run_read_only(cwd, env)
    assert result.returncode == 0, result.stderr
    assert "sink ledger" in result.stderr, "the unwritable ledger is reported"
    assert not explicit.exists()
    assert not (data / "usagetap" / "ledger.db").exists(), "never silently moved"
