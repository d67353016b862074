"""The suite's real servers (``tests/servers.py``): PostgreSQL and Redis answer on loopback."""

from __future__ import annotations

import subprocess

import pytest

from tests.servers import Server, _postgres_bindir, _redis_command, unavailable


def _psql(url: str, sql: str) -> str:
    bindir = _postgres_bindir()
    assert bindir is not None
    done = subprocess.run(
        [str(bindir / "psql"), "-qAt", "-v", "ON_ERROR_STOP=1", "-d", url, "-c", sql],
        check=True,
        capture_output=True,
        text=True,
        timeout=30,
    )
    return done.stdout.strip()


def test_each_test_gets_its_own_empty_postgres_database(postgres_url: str) -> None:
    assert _psql(postgres_url, "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'") == "0"
    _psql(postgres_url, "CREATE TABLE t (n int); INSERT INTO t VALUES (41), (1)")
    assert _psql(postgres_url, "SELECT sum(n) FROM t") == "42"


def test_a_second_test_does_not_see_the_first_tests_tables(postgres_url: str) -> None:
    assert _psql(postgres_url, "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'") == "0"


@pytest.mark.parametrize("round_", [1, 2])
def test_redis_is_emptied_for_each_test(redis_url: str, redis_server: Server, round_: int) -> None:
    port = redis_server.port
    assert redis_url == f"redis://127.0.0.1:{port}/0"
    assert _redis_command(port, "DBSIZE") == b":0\r\n"
    assert _redis_command(port, "SET", "usagetap:k", str(round_)).startswith(b"+OK")


def test_a_missing_server_fails_the_test_when_ci_requires_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("USAGETAP_REQUIRE_SERVERS", "1")
    with pytest.raises(pytest.fail.Exception, match="USAGETAP_REQUIRE_SERVERS"):
        unavailable("no server")


def test_a_missing_server_skips_outside_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("USAGETAP_REQUIRE_SERVERS", raising=False)
    with pytest.raises(pytest.skip.Exception, match="no server"):
        unavailable("no server")
