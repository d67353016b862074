"""A user's project (sample_project/) tested with usagetap's pytest plugin, in a session of its own."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

SAMPLE = Path(__file__).parent / "sample_project"


@pytest.fixture(scope="module")
def session(tmp_path_factory: pytest.TempPathFactory) -> subprocess.CompletedProcess[str]:
    """The sample project's pytest run: the plugin found through its ``pytest11`` entry point."""
    project = tmp_path_factory.mktemp("sample") / "project"
    shutil.copytree(SAMPLE, project)
    data = project / "data"
    data.mkdir()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("USAGETAP_", "PYTEST_"))},
        "USAGETAP_DB": str(data / "ledger.db"),
        "USAGETAP_SPOOL": str(data / "spool.db"),
    }
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-rA", "-W", "ignore::DeprecationWarning"],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def outcomes(run: subprocess.CompletedProcess[str]) -> dict[str, str]:
    """Test name -> PASSED / FAILED, from the ``-rA`` summary."""
    found = re.findall(r"^(PASSED|FAILED) tests/test_billing\.py::(\w+)", run.stdout, re.MULTILINE)
    return {name: outcome for outcome, name in found}


def test_the_plugin_is_loaded_through_its_entry_point(session: subprocess.CompletedProcess[str]) -> None:
    [plugins] = re.findall(r"^plugins: (.*)$", session.stdout, re.MULTILINE)
    assert re.search(r"\busagetap-\d", plugins), session.stdout


def test_the_fixtures_serve_the_projects_own_tests(session: subprocess.CompletedProcess[str]) -> None:
    assert outcomes(session) == {
        "test_a_summary_is_billed_to_its_customer": "PASSED",
        "test_a_translation_is_billed_as_anthropic_usage": "PASSED",
        "test_usage_reaches_the_billing_backend": "PASSED",
        "test_backends_are_made_by_name": "PASSED",
        "test_attributed_usage_passes_the_marker": "PASSED",
        "test_usage_escaping_unattributed_fails_on_purpose": "FAILED",
    }, session.stdout + session.stderr


def test_usage_escaping_unattributed_fails_the_marked_test_with_the_call_named(
    session: subprocess.CompletedProcess[str],
) -> None:
    assert session.returncode == 1
    assert "usagetap: 1 call(s) metered with no customer in scope: openai gpt-4.1-mini" in session.stdout
