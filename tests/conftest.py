from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

from usagetap import _log, _state, _stats
from usagetap.sinks import Memory
from usagetap.testing import ProviderServer, recording


@pytest.fixture(autouse=True)
def _isolated(tmp_path, monkeypatch) -> Iterator[None]:
    """Each test starts with fresh counters, no once-only memory and a ledger path of its own."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("USAGETAP_DB", str(tmp_path / "ledger.db"))
    monkeypatch.setenv("USAGETAP_SPOOL", str(tmp_path / "spool.db"))
    _stats.reset()
    _log.reset_once()
    yield
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
