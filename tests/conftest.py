from __future__ import annotations

import logging
import os
from collections.abc import Iterator

import pytest

import usagetap
from tests.guards import MARKER, InternalErrors, declared
from usagetap import _log, _state, _stats
from usagetap.sinks import Memory
from usagetap.testing import ProviderServer, recording

pytest_plugins = ["tests.servers"]

# LiteLLM (tests/integrations, examples) reads its bundled model map, never fetching one at import
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")


@pytest.fixture(autouse=True)
def _internal_errors(request: pytest.FixtureRequest) -> Iterator[None]:
    """Fail a test that leaves an internal error it did not declare (see ``tests/guards.py``).

    Autouse fixtures of one file set up in name order: this one before ``_isolated``, so it
    checks after ``_isolated`` shut usagetap down, and errors of the shutdown count too.
    """
    with InternalErrors() as errors:
        yield
    kinds, optional = declared(request.node.iter_markers(MARKER))
    problem = errors.problem(kinds, optional, request.node.stash.get(_ERRORS_LEFT, None))
    if problem:
        pytest.fail(problem, pytrace=False)


_ERRORS_LEFT = pytest.StashKey[int]()  # the internal errors a test left, read before reset() clears them


@pytest.fixture(autouse=True)
def _isolated(request: pytest.FixtureRequest, tmp_path, monkeypatch) -> Iterator[None]:
    """Each test starts with fresh counters, no once-only memory and a ledger path of its own."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("USAGETAP_DB", str(tmp_path / "ledger.db"))
    monkeypatch.setenv("USAGETAP_SPOOL", str(tmp_path / "spool.db"))
    _stats.reset()
    _log.reset_once()
    yield
    usagetap.shutdown(timeout=5.0)
    request.node.stash[_ERRORS_LEFT] = _stats.snapshot()["internal_errors"]
    _state.reset()


@pytest.fixture
def sink() -> Iterator[Memory]:
    with recording(flush_interval=0.02) as memory:
        yield memory


@pytest.fixture
def server() -> Iterator[ProviderServer]:
    with ProviderServer() as provider:
        yield provider


@pytest.fixture
def caplog_usagetap(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.DEBUG, logger="usagetap")
    return caplog
