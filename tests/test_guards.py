"""The suite's self-guard (``tests/guards.py``): a test leaving an undeclared internal error fails."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.guards import InternalErrors
from usagetap._log import internal_error

PROJECT = Path(__file__).resolve().parent.parent

_SAMPLE = """
import pytest
from usagetap._log import internal_error


def test_undeclared():
    internal_error("extract", ValueError("boom"))


@pytest.mark.internal_error("extract")
def test_declared():
    internal_error("extract", ValueError("boom"))


@pytest.mark.internal_error("worker")
def test_declared_prefix():
    internal_error("worker:ledger", ValueError("boom"))


@pytest.mark.internal_error("pricing")
def test_other_kind():
    internal_error("extract", ValueError("boom"))


@pytest.mark.internal_error("extract")
def test_stale():
    pass


@pytest.mark.internal_error("extract", "usage", optional=True)
def test_optional():
    internal_error("extract", ValueError("boom"))


def test_clean():
    pass
"""


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Each sample test's outcome, run by pytest with the suite's conftest as a plugin."""
    folder = tmp_path_factory.mktemp("guarded")
    (folder / "test_sample.py").write_text(textwrap.dedent(_SAMPLE))
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-p",
            "tests.conftest",
            "-p",
            "no:cacheprovider",
            "-rA",
            str(folder),
        ],
        cwd=PROJECT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    found: dict[str, str] = {}
    for line in done.stdout.splitlines():
        outcome, _, rest = line.partition(" ")
        if outcome in ("PASSED", "ERROR", "FAILED") and "::" in rest:
            name = rest.split("::")[1].split(" ")[0]
            if found.get(name) != "ERROR":  # an error at teardown follows the call's PASSED
                found[name] = outcome
    assert found, done.stdout + done.stderr
    return found


def test_an_undeclared_internal_error_fails_the_test(outcomes: dict[str, str]) -> None:
    assert outcomes["test_undeclared"] == "ERROR"


def test_a_declared_internal_error_passes(outcomes: dict[str, str]) -> None:
    assert outcomes["test_declared"] == "PASSED"


def test_a_declared_kind_covers_the_places_under_it(outcomes: dict[str, str]) -> None:
    assert outcomes["test_declared_prefix"] == "PASSED"


def test_an_internal_error_of_another_kind_than_declared_fails(outcomes: dict[str, str]) -> None:
    assert outcomes["test_other_kind"] == "ERROR"


def test_a_declared_internal_error_that_does_not_happen_fails(outcomes: dict[str, str]) -> None:
    assert outcomes["test_stale"] == "ERROR"


def test_optional_kinds_need_not_all_happen(outcomes: dict[str, str]) -> None:
    assert outcomes["test_optional"] == "PASSED"


def test_a_test_without_internal_errors_passes(outcomes: dict[str, str]) -> None:
    assert outcomes["test_clean"] == "PASSED"


@pytest.mark.internal_error("extract")
def test_the_failure_names_the_place_and_the_marker_to_declare_it() -> None:
    with InternalErrors() as errors:
        internal_error("extract", ValueError("boom"))
    problem = errors.problem([])
    assert problem is not None
    assert "in extract" in problem and "@pytest.mark.internal_error('extract')" in problem


def test_internal_errors_the_log_did_not_show_still_fail_the_test() -> None:
    problem = InternalErrors().problem([], count=2)
    assert problem is not None and "2 internal error(s) of unknown kind" in problem
