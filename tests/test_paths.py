"""Where the default ledger and spool live."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest

from usagetap import _paths
from usagetap.delivery.settings import default_spool_path
from usagetap.sinks.ledger import default_path


def test_a_writable_working_directory_keeps_the_default_files_in_dot_usagetap() -> None:
    assert _paths.default_dir() == ".usagetap"


def test_a_read_only_working_directory_moves_the_default_files_to_the_user_data_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog_usagetap: pytest.LogCaptureFixture
) -> None:
    monkeypatch.delenv("USAGETAP_DB")
    monkeypatch.delenv("USAGETAP_SPOOL")
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    monkeypatch.setattr(_paths, "_writable", lambda path: False)
    expected = str(tmp_path / "data" / "usagetap")
    assert default_path() == os.path.join(expected, "ledger.db")
    assert default_spool_path() == os.path.join(expected, "spool.db")
    [warning] = [r for r in caplog_usagetap.records if r.levelno == logging.WARNING]
    assert expected in warning.getMessage()


def test_an_explicit_path_is_kept_even_in_a_read_only_working_directory(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("USAGETAP_DB", "/srv/billing/ledger.db")
    monkeypatch.setattr(_paths, "_writable", lambda path: False)
    assert default_path() == "/srv/billing/ledger.db"


def test_without_xdg_data_home_the_user_data_directory_is_under_home(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("XDG_DATA_HOME", raising=False)
    monkeypatch.setenv("HOME", "/home/someone")
    assert _paths.user_data_dir() == "/home/someone/.local/share/usagetap"
