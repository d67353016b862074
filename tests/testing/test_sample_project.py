"""A user's project (sample_project/) tested with usagetap's pytest plugin, in a session of its own."""

from __future__ import annotations

import os
import re
import shutil
import site
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[2]
SAMPLE = Path(__file__).parent / "sample_project"


def make_venv(where: Path) -> Path:
    """A venv whose own site-packages comes first, then this environment's (the SDKs, pytest, hatchling):
    what is installed into it (usagetap, the app) is found there, not in this checkout."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(where)], check=True)
    python = where / ("Scripts" if os.name == "nt" else "bin") / "python"
    own = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    Path(own, "_outer_environment.pth").write_text("\n".join(site.getsitepackages()) + "\n")
    return python


@pytest.fixture(scope="module")
def session(tmp_path_factory: pytest.TempPathFactory) -> subprocess.CompletedProcess[str]:
    """The sample project's pytest run, usagetap and the app installed (the plugin by its entry point)."""
    base = tmp_path_factory.mktemp("sample")
    project = base / "project"
    shutil.copytree(SAMPLE, project)
    python = make_venv(base / "venv")
    install = [python, "-m", "pip", "install", "-q", "--no-index", "--no-build-isolation", "--no-deps"]
    subprocess.run([*map(str, install), "--ignore-installed", str(ROOT), str(project)], check=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("USAGETAP_", "PYTEST_", "PYTHON"))}
    env.update(USAGETAP_DB=str(base / "ledger.db"), USAGETAP_SPOOL=str(base / "spool.db"))
    return subprocess.run(
        [str(python), "-m", "pytest", "-p", "no:cacheprovider", "-rA", "-W", "ignore::DeprecationWarning"],
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


def test_the_plugin_is_loaded_through_the_installed_usagetaps_entry_point(
    session: subprocess.CompletedProcess[str],
) -> None:
    [plugins] = re.findall(r"^plugins: (.*)$", session.stdout, re.MULTILINE)
    assert re.search(r"\busagetap-\d", plugins), session.stdout
    [tested] = re.findall(r"^usagetap under test: (.*)$", session.stdout, re.MULTILINE)
    assert "site-packages" in tested and not tested.startswith(str(ROOT))


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
