"""Sinks' whole-batch refusals, auth failures and per-item failures, handled by the real delivery pipeline."""

from __future__ import annotations

import logging
import uuid
from pathlib import Path

import pytest

import usagetap
from tests.helpers import deliver, make_record
from usagetap.delivery.spool import open_spool
from usagetap.sinks import Ledger, OpenSpanner, SolvaPay, Spaire
from usagetap.testing import ProviderServer
from usagetap.testing.backends import OpenSpannerBackend, SolvaPayBackend, SpaireBackend


def test_a_whole_batch_422_is_bisected_to_the_culprit_which_becomes_a_dead_letter(tmp_path: Path) -> None:
    spool = str(tmp_path / "spool.db")
    with SpaireBackend(pinpoint=False) as backend:
        sink = Spaire(api_key=backend.api_key, base_url=backend.url, customer_field="customer_id")
        usagetap.configure(sink=sink, spool_path=spool, flush_interval=0.05, batch_size=100)
        good = [make_record(customer=str(uuid.uuid4())) for _ in range(9)]
        bad = make_record(customer=str(uuid.uuid1()))  # not a v4 UUID: the API refuses the whole batch
        for record in [*good[:5], bad, *good[5:]]:
            deliver(record)
        result = usagetap.flush(timeout=30)
        assert (result.sent, result.dead, result.pending) == (9, 1, 0)
        assert sorted(backend.events) == sorted(r.event_id for r in good)
    [letter] = open_spool(spool, max_bytes=0, lease_seconds=60).dead_letters()
    assert letter.record.event_id == bad.event_id and "422" in letter.reason


def test_a_refused_key_pauses_delivery_keeps_the_spool_and_a_good_key_delivers_it(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="usagetap")
    spool = str(tmp_path / "spool.db")
    with SpaireBackend() as backend:
        wrong = "spaire_sk_wrong_key_1234"
        usagetap.configure(
            sink=Spaire(api_key=wrong, base_url=backend.url), spool_path=spool, flush_interval=0.05
        )
        records = [make_record() for _ in range(4)]
        for record in records:
            deliver(record)
        result = usagetap.flush(timeout=1.0)
        assert (result.sent, result.dead, result.pending) == (0, 0, 4)
        assert len(backend.requests) == 1, "delivery paused after the 401"
        assert sum("cannot deliver" in r.getMessage() for r in caplog.records) == 1
        assert wrong not in caplog.text
        usagetap.configure(sink=Spaire(api_key=backend.api_key, base_url=backend.url), spool_path=spool)
        assert usagetap.flush(timeout=30).pending == 0
        assert sorted(backend.events) == sorted(r.event_id for r in records)


def test_open_spanner_per_item_failures_dead_letter_those_items_only(tmp_path: Path) -> None:
    with OpenSpannerBackend() as backend:
        sink = OpenSpanner(api_key=backend.api_key, base_url=backend.url)
        sink.ensure_meter()
        backend.reject(lambda item: "subject is blocked" if item["subject"] == "org_blocked" else None)
        usagetap.configure(sink=sink, spool_path=str(tmp_path / "spool.db"), flush_interval=0.05)
        records = [make_record(customer="org_blocked" if i == 3 else "org_ok") for i in range(8)]
        for record in records:
            deliver(record)
        result = usagetap.flush(timeout=30)
        assert (result.sent, result.dead, result.pending) == (7, 1, 0)
        assert len(backend.events) == 7
        assert backend.contract_violations == []


def test_open_spanner_keeps_delivering_when_an_event_names_a_missing_meter(tmp_path: Path) -> None:
    with OpenSpannerBackend() as backend:
        sink = OpenSpanner(api_key=backend.api_key, base_url=backend.url)
        sink.ensure_meter()
        usagetap.configure(sink=sink, spool_path=str(tmp_path / "spool.db"), flush_interval=0.05)
        records = [make_record(dimensions={"meter": "gone"} if i == 2 else {}) for i in range(6)]
        for record in records:
            deliver(record)
        result = usagetap.flush(timeout=10)
        assert (result.sent, result.dead, result.pending) == (5, 1, 0)
        assert len(backend.events) == 5
    [letter] = open_spool(str(tmp_path / "spool.db"), max_bytes=0, lease_seconds=60).dead_letters()
    assert letter.record.event_id == records[2].event_id and "meter 'gone'" in letter.reason


def test_counts_beyond_64_bits_are_dead_lettered_and_every_other_record_delivered(tmp_path: Path) -> None:
    with SolvaPayBackend() as backend:
        ledger = Ledger(tmp_path / "ledger.db")
        solvapay = SolvaPay(api_key=backend.api_key, base_url=backend.url)
        spool = str(tmp_path / "spool.db")
        usagetap.configure(sink=[ledger, solvapay], spool_path=spool, flush_interval=0.05)
        good = [make_record() for _ in range(8)]
        bad = [make_record(input_tokens=2**63), make_record(output_tokens=2**64)]
        for record in [*good[:4], bad[0], *good[4:], bad[1]]:
            usagetap._runtime.submit(record)  # past validation, as an older version's spool rows may be
        result = usagetap.flush(timeout=10)
        assert (result.sent, result.dead, result.pending) == (16, 4, 0)
        assert sorted(r.event_id for r in ledger.records()) == sorted(r.event_id for r in good)
        assert backend.totals()["org_1"]["units"] == sum(r.total_tokens for r in good)
    letters = open_spool(spool, max_bytes=0, lease_seconds=60).dead_letters()
    assert sorted((d.sink, d.record.event_id) for d in letters) == sorted(
        (sink, r.event_id) for sink in ("ledger", "solvapay") for r in bad
    )
    assert all("is outside 0..1000000000000; no backend bills it" in d.reason for d in letters)


def test_a_client_wrapped_with_a_meter_reports_to_that_meter(tmp_path: Path, server: ProviderServer) -> None:
    import openai

    with OpenSpannerBackend() as backend:
        sink = OpenSpanner(api_key=backend.api_key, base_url=backend.url)
        sink.ensure_meter()
        backend.create_meter({**sink.meter_definition(), "name": "premium_tokens"})
        usagetap.configure(sink=sink, spool_path=str(tmp_path / "spool.db"), flush_interval=0.05)
        standard = usagetap.wrap(openai.OpenAI(base_url=server.openai_url, api_key="k"), customer="org_1")
        premium = usagetap.wrap(
            openai.OpenAI(base_url=server.openai_url, api_key="k"), customer="org_1", meter="premium_tokens"
        )
        for client in (standard, premium):
            client.chat.completions.create(model="gpt-4.1", messages=[{"role": "user", "content": "hi"}])
        assert usagetap.flush(timeout=30).pending == 0
        assert sorted(e["meter"] for e in backend.events.values()) == ["ai_tokens", "premium_tokens"]
        assert backend.contract_violations == []
