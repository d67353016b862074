"""Celery: the customer scope travels in a message header into a real worker (an embedded solo worker)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from celery.contrib.testing.worker import start_worker

import usagetap
from tests.integrations.celery_app import app, fan_out, summarize
from tests.integrations.conftest import delivered
from usagetap import _stats
from usagetap.integrations import celery as usagetap_celery
from usagetap.testing import ProviderServer


@pytest.fixture(scope="module")
def installed() -> Iterator[None]:
    usagetap_celery.install(flush_timeout=5.0)
    yield
    usagetap_celery.uninstall()


@pytest.fixture(scope="module")
def worker(installed: None) -> Iterator[Any]:
    """One embedded worker (a thread, solo pool) for the module: starting and stopping one takes seconds."""
    with start_worker(app, pool="solo", perform_ping_check=False, shutdown_timeout=30.0) as running:
        yield running


def test_task_runs_in_the_scope_it_was_queued_in(sink, server: ProviderServer, worker: Any) -> None:  # type: ignore[no-untyped-def]
    with usagetap.customer("org_7", feature="digest"):
        queued = summarize.delay(server.openai_url)
    unscoped = summarize.delay(server.openai_url)
    first, second = queued.get(timeout=30), unscoped.get(timeout=30)
    assert (first["customer"], first["dimensions"]) == ("org_7", {"feature": "digest"})
    assert (second["customer"], second["dimensions"]) == (None, {}), "the first task's scope was closed"
    billed = {r.response_id: (r.customer, r.dimensions.get("feature")) for r in delivered(sink)}
    assert billed == {first["id"]: ("org_7", "digest"), second["id"]: (None, None)}


def test_tasks_queued_by_a_task_inherit_its_scope(sink, server: ProviderServer, worker: Any) -> None:  # type: ignore[no-untyped-def]
    with usagetap.customer("org_parent", product="batch"):
        child_id = fan_out.delay(server.openai_url).get(timeout=30)
    child = app.AsyncResult(child_id).get(timeout=30)
    assert (child["customer"], child["dimensions"]) == ("org_parent", {"product": "batch"})
    assert [r.customer for r in delivered(sink)] == ["org_parent"]


def test_explicit_header_wins_and_a_bad_one_is_ignored(sink, server: ProviderServer, worker: Any) -> None:  # type: ignore[no-untyped-def]
    with usagetap.customer("org_ambient"):
        explicit = summarize.apply_async(
            (server.openai_url,), headers={"usagetap": {"customer": "org_explicit", "dimensions": {"k": 1}}}
        ).get(timeout=30)
        garbage = summarize.apply_async((server.openai_url,), headers={"usagetap": "org_x"}).get(timeout=30)
    assert (explicit["customer"], explicit["dimensions"]) == ("org_explicit", {"k": 1})
    assert garbage["customer"] is None
    assert _stats.snapshot()["celery.bad_header"] == 1


def test_eager_tasks_keep_the_callers_scope(sink, server: ProviderServer, installed: None) -> None:  # type: ignore[no-untyped-def]
    app.conf.task_always_eager = True
    try:
        with usagetap.customer("org_eager", feature="inline"):
            result = summarize.delay(server.openai_url).get()
        after = summarize.delay(server.openai_url).get()
    finally:
        app.conf.task_always_eager = False
    assert (result["customer"], after["customer"]) == ("org_eager", None)
    assert [r.customer for r in delivered(sink)] == ["org_eager", None]


def test_uninstalled_means_no_header(sink, server: ProviderServer, worker: Any) -> None:  # type: ignore[no-untyped-def]
    usagetap_celery.uninstall()
    try:
        with usagetap.customer("org_7"):
            result = summarize.delay(server.openai_url).get(timeout=30)
    finally:
        usagetap_celery.install(flush_timeout=5.0)
    assert result["customer"] is None


def test_install_validates_and_is_idempotent(installed: None) -> None:
    from celery import signals

    usagetap_celery.install(flush_timeout=2.0)
    assert sum(1 for r in signals.task_prerun.receivers if "usagetap" in str(r[0])) == 1
    with pytest.raises(ValueError, match="flush_timeout"):
        usagetap_celery.install(flush_timeout=0)


def test_missing_celery_is_one_clear_import_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(__import__("sys").modules, "celery", None)
    with pytest.raises(ImportError, match=r"pip install 'usagetap\[celery\]'"):
        usagetap_celery.install()
