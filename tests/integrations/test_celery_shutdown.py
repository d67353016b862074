"""Celery workers flush usagetap when they stop: the main process, and prefork children that skip atexit."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from celery.contrib.testing.worker import start_worker

import usagetap
from tests.integrations.celery_app import app, summarize
from usagetap.integrations import celery as usagetap_celery
from usagetap.sinks import Ledger
from usagetap.testing import ProviderServer, recording


@pytest.fixture
def installed() -> Iterator[None]:
    usagetap_celery.install(flush_timeout=5.0)
    yield
    usagetap_celery.uninstall()


def test_worker_shutdown_flushes(server: ProviderServer, installed: None) -> None:
    """Records captured in a task are delivered when the worker stops, not an hour later."""
    with recording(flush_interval=3600) as sink:
        with start_worker(app, pool="solo", perform_ping_check=False, shutdown_timeout=30.0) as running:
            with usagetap.customer("org_late"):
                result = summarize.delay(server.openai_url).get(timeout=30)
            assert sink.records == [], "nothing is delivered before the flush interval"
            running.stop()
        assert [(r.response_id, r.customer) for r in sink.records] == [(result["id"], "org_late")]


@pytest.mark.parametrize("install", [True, False], ids=["installed", "not-installed"])
def test_prefork_child_flushes_when_it_exits(tmp_path: Path, server: ProviderServer, install: bool) -> None:
    """The task runs in a forked pool process; its record reaches the ledger only through the flush on
    ``worker_process_shutdown`` (billiard children end with ``os._exit``, so ``atexit`` never runs)."""
    ledger = tmp_path / "worker-ledger.db"
    usagetap.configure(sink=Ledger(ledger), flush_interval=3600)
    if install:
        usagetap_celery.install(flush_timeout=5.0)
    try:
        with start_worker(
            app, pool="prefork", concurrency=1, perform_ping_check=False, shutdown_timeout=60.0
        ) as running:
            with usagetap.customer("org_fork"):
                summarize.delay(server.openai_url)
            for _ in range(1200):  # the result backend lives in the child: watch the provider instead
                if server.issued:
                    break
                time.sleep(0.05)
            assert len(server.issued) == 1
            running.stop()  # warm shutdown: the task finishes, then the pool process exits
    finally:
        usagetap_celery.uninstall()
    [response_id] = server.issued
    if install:
        rows = sqlite3.connect(ledger).execute("SELECT response_id, customer FROM usage").fetchall()
        assert rows == [(response_id, "org_fork")]
    else:
        assert not ledger.exists(), "without the integration the child's record is lost"
