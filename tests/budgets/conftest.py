"""Budget stores under test: SQLite (a file), Redis and PostgreSQL (real servers, tests/servers.py)."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(params=["sqlite", "redis", "postgres"])
def store_target(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Where a budget store lives: a SQLite path, a ``redis://`` or a ``postgresql://`` URL."""
    if request.param == "redis":
        return str(request.getfixturevalue("redis_url"))
    if request.param == "postgres":
        return str(request.getfixturevalue("postgres_url"))
    return str(tmp_path / "budgets.db")
