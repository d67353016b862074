"""OpenMeter sink against a loopback CloudEvents ingest endpoint."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal

import pytest

import usagetap
from tests.helpers import make_record
from tests.sinks.contract import drive
from tests.sinks.workload import TOKEN_KEYS, run_workload
from usagetap import ConfigurationError
from usagetap.sinks import OpenMeter
from usagetap.testing import ProviderServer
from usagetap.testing.backends import OpenMeterBackend


@pytest.fixture
def backend() -> Iterator[OpenMeterBackend]:
    with OpenMeterBackend() as server:
        yield server


@pytest.fixture
def sink(backend: OpenMeterBackend) -> OpenMeter:
    return OpenMeter(api_key=backend.api_key, base_url=backend.url, source="svc-1")


def test_records_are_posted_as_a_cloudevents_batch(backend: OpenMeterBackend, sink: OpenMeter) -> None:
    record = make_record(cost=Decimal("0.0042"), cache_read_tokens=64, dimensions={"feature": "chat"})
    assert sink.send([record]).delivered == [record.event_id]
    [request] = backend.requests
    assert request.path == "/api/v1/events"
    assert request.headers["content-type"] == "application/cloudevents-batch+json"
    [event] = request.json()
    assert {k: event[k] for k in ("specversion", "id", "source", "type", "subject")} == {
        "specversion": "1.0",
        "id": record.event_id,
        "source": "svc-1",
        "type": "llm.usage",
        "subject": "org_1",
    }
    assert event["time"].endswith("Z")
    assert event["data"] == {
        "tokens": 120,
        "input_tokens": 100,
        "output_tokens": 20,
        "cache_read_tokens": 64,
        "cache_write_tokens": 0,
        "reasoning_tokens": 0,
        "model": "gpt-4.1",
        "provider": "openai",
        "operation": "chat",
        "cost_usd": "0.0042",
        "feature": "chat",
    }


def test_duplicates_are_dropped_by_id_and_source(backend: OpenMeterBackend, sink: OpenMeter) -> None:
    records = [make_record() for _ in range(3)]
    sink.send(records)
    assert sink.send(records).delivered == [r.event_id for r in records]
    assert backend.duplicates == 3 and backend.totals()["org_1"]["tokens"] == 360


def test_hostile_dimensions_cannot_shadow_the_token_fields(
    backend: OpenMeterBackend, sink: OpenMeter
) -> None:
    record = make_record(dimensions={"tokens": 10**9, "nan": float("nan"), "big": "x" * 10_000})
    assert sink.send([record]).delivered == [record.event_id]
    data = backend.requests[0].json()[0]["data"]
    assert data["tokens"] == 120 and "nan" not in data and len(data["big"]) == 1000


def test_records_without_a_subject_are_dead_lettered_before_sending(
    backend: OpenMeterBackend, sink: OpenMeter
) -> None:
    good, empty, lost = make_record(), make_record(customer=""), make_record(customer=None)
    outcomes = sink.send([good, empty, lost])
    assert outcomes.delivered == [good.event_id]
    assert outcomes.dead == {empty.event_id: "empty customer id", lost.event_id: "no customer"}
    assert [e["id"] for e in backend.requests[0].json()] == [good.event_id]


def test_a_refused_batch_asks_the_pipeline_to_split_it(backend: OpenMeterBackend, sink: OpenMeter) -> None:
    good = [make_record() for _ in range(4)]
    backend.fail_next(400)
    first = sink.send(good)
    assert first.split and "400" in first.split and "injected 400" in first.split
    assert sorted(drive(sink, good).delivered) == sorted(r.event_id for r in good)


def test_errors_map_to_halt_and_retry(backend: OpenMeterBackend, sink: OpenMeter) -> None:
    record = make_record()
    backend.fail_next(401)
    assert sink.send([record]).halt
    backend.rate_limit_next(retry_after=2)
    assert sink.send([record]).retry_after == 2.0
    backend.drop_next()
    assert sink.send([record]).retry == [record.event_id]


def test_a_cloud_sink_needs_a_key_and_a_self_hosted_one_may_not(backend: OpenMeterBackend) -> None:
    with pytest.raises(ConfigurationError, match="API key"):
        OpenMeter()
    assert OpenMeter(api_key="om_x").base_url == "https://openmeter.cloud"
    keyless = OpenMeter(base_url=backend.url)
    assert keyless.send([make_record()]).halt  # this backend wants auth: a 401 pauses delivery


def test_a_mixed_workload_through_the_pipeline_with_faults_lands_exactly_once(
    server: ProviderServer, backend: OpenMeterBackend, sink: OpenMeter
) -> None:
    usagetap.configure(sink=sink, flush_interval=0.05)
    backend.fail_next(500)
    backend.rate_limit_next(retry_after=1)
    backend.lose_response_next()
    backend.drop_next()
    issued = run_workload(server, ["org_a", "org_b", "org_c"])
    assert usagetap.flush(timeout=30).pending == 0
    totals = backend.totals()
    for customer, expected in issued.items():
        assert totals[customer]["events"] == expected["calls"]
        for key in TOKEN_KEYS:
            assert totals[customer][key] == expected[key]
    assert len(backend.events) == 9
