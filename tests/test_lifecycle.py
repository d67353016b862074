"""Exit behaviour, in real child processes."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest

from tests.helpers import run_script
from usagetap.sinks import Ledger


def run(code: str, cwd: Path, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return run_script(code, cwd, timeout=timeout)


def test_records_are_flushed_to_the_default_ledger_at_exit(tmp_path: Path) -> None:
    result = run(
        """
        import openai, usagetap
        from usagetap.testing import ProviderServer
        with ProviderServer() as server:
            client = usagetap.wrap(openai.OpenAI(base_url=server.openai_url, api_key="k"))
            for customer in ("a", "b", "c"):
                with usagetap.customer(customer):
                    client.chat.completions.create(
                        model="gpt-4.1", messages=[{"role": "user", "content": "hi"}]
                    )
        """,
        tmp_path,
    )
    assert result.returncode == 0, result.stderr
    records = Ledger(tmp_path / ".usagetap" / "ledger.db").records()
    assert sorted(r.customer for r in records) == ["a", "b", "c"]  # type: ignore[type-var]


def test_exit_never_hangs_on_a_sink_that_never_answers(tmp_path: Path) -> None:
    started = time.monotonic()
    result = run(
        """
        import threading, usagetap
        from usagetap.sinks import Outcomes
        from usagetap._record import UsageRecord
        from datetime import datetime, timezone

        class BlackHole:
            name, max_batch = "black-hole", 100
            def send(self, records):
                threading.Event().wait()
            def close(self):
                pass

        usagetap.configure(sink=BlackHole(), flush_interval=0.01)
        from usagetap.delivery.intake import Capture
        from usagetap.publish import publish
        publish(Capture.of(UsageRecord(event_id="e1", timestamp=datetime.now(timezone.utc), customer="a",
                            provider="openai", model="gpt-4.1", request_model=None, operation="chat")))
        print("done")
        """,
        tmp_path,
    )
    elapsed = time.monotonic() - started
    assert result.returncode == 0, result.stderr
    assert "done" in result.stdout
    assert "1 usage records not yet delivered are kept in .usagetap/spool.db" in result.stderr
    assert elapsed < 15
    from usagetap.delivery.spool import open_spool

    kept = open_spool(str(tmp_path / ".usagetap" / "spool.db"), max_bytes=0, lease_seconds=60)
    assert kept.pending() == 1


_OPEN_AT_EXIT = """
import openai, usagetap
from usagetap.testing import ProviderServer
with ProviderServer() as server:
    client = openai.OpenAI(base_url=server.openai_url, api_key="k")
    if WRAP:
        client = usagetap.wrap(client)
    with usagetap.customer("open-at-exit"):
        stream = client.chat.completions.create(
            model="gpt-4.1", messages=[{"role": "user", "content": "hi"}], stream=True
        )
        first = next(iter(stream))
print(type(stream).__name__, first.model)
"""


def test_a_stream_still_open_at_exit_is_recorded_before_the_final_flush(tmp_path: Path) -> None:
    bare = run("WRAP = False\n" + _OPEN_AT_EXIT, tmp_path)
    result = run("WRAP = True\n" + _OPEN_AT_EXIT, tmp_path)
    # the same exit as the bare SDK's: 0, or the crash CPython 3.13.0 has finalizing an open stream
    assert result.returncode == bare.returncode and result.returncode in (0, -11), result.stderr
    assert result.stdout.split() == ["Stream", "gpt-4.1"]
    [record] = Ledger(tmp_path / ".usagetap" / "ledger.db").records()
    assert (record.customer, record.model, record.status) == ("open-at-exit", "gpt-4.1", "partial")


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork()")
def test_a_child_forked_mid_stream_leaves_the_stream_to_the_parent(tmp_path: Path) -> None:
    result = run(
        """
        import atexit, os, openai, usagetap
        from usagetap.testing import ProviderServer
        with ProviderServer() as server:
            client = usagetap.wrap(openai.OpenAI(base_url=server.openai_url, api_key="k"))
            with usagetap.customer("parent"):
                stream = client.chat.completions.create(
                    model="gpt-4.1", messages=[{"role": "user", "content": "hi"}], stream=True
                )
                chunks = iter(stream)
                next(chunks)
                child = os.fork()
                if child == 0:  # a worker that exits normally: its atexit hooks run
                    atexit._run_exitfuncs()
                    os._exit(0)
                os.waitpid(child, 0)
                rest = sum(1 for _ in chunks)
        print(rest)
        """,
        tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert int(result.stdout) > 10
    [record] = Ledger(tmp_path / ".usagetap" / "ledger.db").records()
    assert (record.customer, record.status) == ("parent", "ok")
    assert record.output_tokens > 0


_THREE_CALLS = """
import openai, usagetap
from usagetap.testing import ProviderServer
with ProviderServer() as server:
    client = usagetap.wrap(openai.OpenAI(base_url=server.openai_url, api_key="k"))
    for customer in ("a", "b", "c"):
        with usagetap.customer(customer):
            client.chat.completions.create(model="gpt-4.1", messages=[{"role": "user", "content": "hi"}])
result = usagetap.flush(5.0)
print(result.sent, result.pending, usagetap.stats()["misconfigured"])
"""


def test_a_broken_environment_keeps_records_for_the_process_that_fixes_it(tmp_path: Path) -> None:
    from usagetap.testing.backends import SpaireBackend

    broken = run_script(_THREE_CALLS, tmp_path, {"USAGETAP_SINK": "spaire"})
    assert broken.returncode == 0, broken.stderr
    assert broken.stdout.split() == ["0", "3", "1"]
    assert "USAGETAP_SINK=spaire needs USAGETAP_API_KEY" in broken.stderr
    assert not (tmp_path / ".usagetap" / "ledger.db").exists()
    with SpaireBackend() as backend:
        fixed = run_script(
            """
            import usagetap
            usagetap.configure()
            result = usagetap.flush(10.0)
            print(result.sent, result.pending)
            """,
            tmp_path,
            {
                "USAGETAP_SINK": "spaire",
                "USAGETAP_API_KEY": backend.api_key,
                "USAGETAP_BASE_URL": backend.url,
            },
        )
        assert fixed.returncode == 0, fixed.stderr
        assert fixed.stdout.split() == ["3", "0"]
        customers = sorted(e["external_customer_id"] for e in backend.events.values())
    assert customers == ["a", "b", "c"]


def test_usagetap_status_shows_the_unbuildable_sink_paused_with_its_reason(tmp_path: Path) -> None:
    secret = "os_secret_0123456789"
    env = {"USAGETAP_SINK": "open_spanner", "USAGETAP_API_KEY": secret}
    assert run_script(_THREE_CALLS, tmp_path, env).returncode == 0
    status = run_script("from usagetap.cli import main; main(['status'])", tmp_path, {})
    assert status.returncode == 0, status.stderr
    assert "Paused" in status.stdout
    assert (
        "open_spanner: paused, 3 waiting: USAGETAP_SINK=open_spanner needs USAGETAP_BASE_URL" in status.stdout
    )
    assert secret not in status.stdout


def _left_by_an_earlier_process(n: int) -> list[str]:
    """Records in the default spool for the default ledger, as a process that died would leave them."""
    from tests.helpers import make_record
    from usagetap.delivery.settings import default_spool_path
    from usagetap.delivery.spool import open_spool

    records = [make_record() for _ in range(n)]
    spool = open_spool(default_spool_path(), max_bytes=0, lease_seconds=120)
    spool.add(["ledger"], records)
    spool.close()
    return sorted(r.event_id for r in records)


@pytest.fixture
def fresh_start(monkeypatch: pytest.MonkeyPatch) -> None:
    """This process has not started usagetap yet (no configure(), no capture)."""
    from usagetap import _runtime

    monkeypatch.setattr(_runtime.STATE, "pipeline", None)
    monkeypatch.setattr(_runtime.STATE, "started", False)


def _ledger_ids() -> list[str]:
    ledger = Ledger(os.environ["USAGETAP_DB"])
    try:
        return sorted(r.event_id for r in ledger.records()) if Path(ledger.path).exists() else []
    finally:
        ledger.close()


@pytest.mark.usefixtures("fresh_start")
def test_stats_counts_what_an_earlier_process_left_in_the_spool_as_pending() -> None:
    import usagetap
    from tests.helpers import make_record
    from usagetap.delivery.settings import default_spool_path
    from usagetap.delivery.spool import open_spool
    from usagetap.delivery.store import Entry

    spool = open_spool(default_spool_path(), max_bytes=0, lease_seconds=120)
    later = time.time() + 3600  # waiting for a retry: not delivered while the test looks
    spool.keep_entries([("ledger", Entry(0, make_record(), 1, later)) for _ in range(3)])
    spool.close()
    assert usagetap.stats()["pending"] == 3
    usagetap.shutdown(timeout=0.1)


@pytest.mark.usefixtures("fresh_start")
def test_flush_delivers_what_an_earlier_process_left_in_the_spool() -> None:
    import usagetap

    left = _left_by_an_earlier_process(3)
    result = usagetap.flush(timeout=10)
    assert (result.sent, result.pending) == (3, 0)
    assert _ledger_ids() == left


@pytest.mark.usefixtures("fresh_start")
def test_wrap_resumes_delivery_of_what_an_earlier_process_left_without_a_call() -> None:
    import openai

    import usagetap

    left = _left_by_an_earlier_process(3)
    usagetap.wrap(openai.OpenAI(base_url="http://127.0.0.1:9/v1", api_key="k"))
    deadline = time.monotonic() + 15
    while _ledger_ids() != left and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _ledger_ids() == left


def test_import_alone_leaves_the_spool_untouched(tmp_path: Path) -> None:
    from usagetap.delivery.spool import open_spool

    spool = open_spool(str(tmp_path / ".usagetap" / "spool.db"), max_bytes=0, lease_seconds=120)
    from tests.helpers import make_record

    spool.add(["ledger"], [make_record()])
    spool.close()
    result = run("import usagetap, time; time.sleep(1.5)", tmp_path)
    assert result.returncode == 0, result.stderr
    assert not (tmp_path / ".usagetap" / "ledger.db").exists()
