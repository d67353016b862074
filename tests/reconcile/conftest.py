from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

import usagetap
from usagetap.sinks import Ledger


@pytest.fixture
def ledger(tmp_path: Path) -> Iterator[Path]:
    """A ledger the wrapped clients' records go to."""
    path = tmp_path / "ledger.db"
    usagetap.configure(sink=Ledger(path), flush_interval=0.02)
    yield path
