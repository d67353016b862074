"""Spaire and Polar sinks against loopback backends that keep the events-ingest contract."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest

import usagetap
from tests.helpers import make_record
from tests.sinks.contract import drive
from tests.sinks.workload import TOKEN_KEYS, run_workload
from usagetap import ConfigurationError
from usagetap.sinks import Polar, Spaire
from usagetap.sinks.spaire import cost_cents
from usagetap.testing import ProviderServer
from usagetap.testing.backends import PolarBackend, SpaireBackend


@pytest.fixture
def backend() -> Iterator[SpaireBackend]:
    with SpaireBackend() as server:
        yield server


@pytest.fixture
def sink(backend: SpaireBackend) -> Iterator[Spaire]:
    spaire = Spaire(api_key=backend.api_key, base_url=backend.url)
    yield spaire
    spaire.close()


def sent_events(backend: SpaireBackend) -> list[dict]:
    return [e for r in backend.requests for e in r.json()["events"]]


def test_a_record_becomes_one_event_with_flat_metadata_llm_and_cost_in_cents(
    backend: SpaireBackend, sink: Spaire
) -> None:
    record = make_record(
        customer="org_7",
        input_tokens=300,
        cache_read_tokens=128,
        cache_write_tokens=16,
        output_tokens=50,
        reasoning_tokens=10,
        cost=Decimal("0.0012345"),
        dimensions={"feature": "chat", "tier": 2},
    )
    outcomes = sink.send([record])
    assert outcomes.delivered == [record.event_id] and not outcomes.dead and not outcomes.retry
    [event] = sent_events(backend)
    assert event["name"] == "llm.usage"
    assert event["external_customer_id"] == "org_7"
    assert event["external_id"] == record.event_id
    assert datetime.fromisoformat(event["timestamp"].replace("Z", "+00:00")) == record.timestamp
    metadata = event["metadata"]
    assert (
        metadata["model"] == "gpt-4.1"
        and metadata["provider"] == "openai"
        and metadata["operation"] == "chat"
    )
    assert [metadata[k] for k in TOKEN_KEYS] == [300, 50, 128, 16, 10]
    assert metadata["total_tokens"] == 350
    assert (metadata["feature"], metadata["tier"]) == ("chat", 2)
    assert metadata["_llm"] == {
        "vendor": "openai",
        "model": "gpt-4.1",
        "input_tokens": 300,
        "cached_input_tokens": 128,
        "output_tokens": 50,
        "total_tokens": 350,
    }
    assert metadata["_cost"] == {"amount": "0.12345", "currency": "usd"}
    assert backend.events[record.event_id] == event


def test_cost_in_cents_fits_the_api_decimal_bounds() -> None:
    assert cost_cents(Decimal("0.000000000001234567")) == "0.000000000123"
    assert cost_cents(Decimal("12.5")) == "1250"
    assert cost_cents(Decimal("123456.789")) == "12345678.9"
    assert cost_cents(None) is None
    assert cost_cents(Decimal("1e20")) is None


def test_unpriced_records_carry_no_cost(backend: SpaireBackend, sink: Spaire) -> None:
    sink.send([make_record(cost=None)])
    assert "_cost" not in sent_events(backend)[0]["metadata"]


def test_a_resent_event_is_a_duplicate_and_counts_as_delivered(backend: SpaireBackend, sink: Spaire) -> None:
    records = [make_record() for _ in range(3)]
    assert sink.send(records).duplicates == 0
    again = sink.send(records)
    assert again.delivered == [r.event_id for r in records]
    assert again.duplicates == 3
    assert backend.totals()["org_1"]["events"] == 3


def test_customer_id_mode_sends_the_backend_uuid_and_dead_letters_other_ids(backend: SpaireBackend) -> None:
    sink = Spaire(api_key=backend.api_key, base_url=backend.url, customer_field="customer_id")
    good = make_record(customer=str(uuid.uuid4()))
    bad = make_record(customer="org_1")
    outcomes = sink.send([good, bad])
    assert outcomes.delivered == [good.event_id]
    assert "not a spaire customer UUID" in outcomes.dead[bad.event_id]
    [event] = sent_events(backend)
    assert event["customer_id"] == good.customer and "external_customer_id" not in event


def test_a_record_without_customer_is_dead_lettered_and_never_blocks_the_batch(
    backend: SpaireBackend, sink: Spaire
) -> None:
    lost, good = make_record(customer=None), make_record()
    outcomes = sink.send([lost, good])
    assert outcomes.dead == {lost.event_id: "no customer"}
    assert outcomes.delivered == [good.event_id]
    assert [e["external_id"] for e in sent_events(backend)] == [good.event_id]


def test_hostile_dimensions_are_sanitized_so_the_batch_is_accepted(
    backend: SpaireBackend, sink: Spaire
) -> None:
    hostile = {f"dim_{i:02d}": i for i in range(70)}
    hostile.update(
        {
            "k" * 90: "long key",
            "long_value": "v" * 5000,
            "empty": "",
            "nan": float("nan"),
            "inf": float("inf"),
            "nul": "a\x00b",
            "model": "spoofed",
            "_llm": "spoofed",
            "_cost": "spoofed",
            "emoji 🧾": "ünïcode ✓",
        }
    )
    records = [make_record(dimensions=dict(hostile)) for _ in range(5)] + [make_record()]
    outcomes = sink.send(records)
    assert sorted(outcomes.delivered) == sorted(r.event_id for r in records)
    for event in sent_events(backend):
        metadata = event["metadata"]
        assert len(metadata) <= 50
        assert all(1 <= len(k) <= 40 for k in metadata)
        assert all(len(v) <= 500 for v in metadata.values() if isinstance(v, str))
        assert metadata["model"] == "gpt-4.1" and isinstance(metadata["_llm"], dict)
    assert backend.totals()["org_1"]["total_tokens"] == 6 * 120


def test_a_future_timestamp_is_clamped_to_now(backend: SpaireBackend, sink: Spaire) -> None:
    ahead = make_record(timestamp=datetime.now(timezone.utc) + timedelta(hours=2))
    assert sink.send([ahead]).delivered == [ahead.event_id]
    sent = datetime.fromisoformat(sent_events(backend)[0]["timestamp"].replace("Z", "+00:00"))
    assert sent <= datetime.now(timezone.utc)


def test_a_client_clock_ahead_of_the_backend_is_corrected_from_its_date_header(
    backend: SpaireBackend, sink: Spaire
) -> None:
    backend.clock_offset = -600  # the backend's clock is 10 minutes behind ours
    record = make_record()
    first = sink.send([record])
    assert first.retry == [record.event_id] and not first.dead  # refused as "in the future": not dead
    second = sink.send([record])
    assert second.delivered == [record.event_id]


def test_a_422_naming_events_dead_letters_them_and_retries_the_rest(backend: SpaireBackend) -> None:
    # A UUID that is not version 4 passes the sink's check but not the API's.
    sink = Spaire(api_key=backend.api_key, base_url=backend.url, customer_field="customer_id")
    bad = make_record(customer=str(uuid.uuid1()))
    good = [make_record(customer=str(uuid.uuid4())) for _ in range(3)]
    first = sink.send([good[0], bad, *good[1:]])
    assert list(first.dead) == [bad.event_id]
    assert "customer_id" in first.dead[bad.event_id] and "UUID" in first.dead[bad.event_id]
    assert sorted(first.retry) == sorted(r.event_id for r in good)
    assert backend.events == {}  # the whole batch was refused
    assert sorted(sink.send(good).delivered) == sorted(r.event_id for r in good)


def test_a_422_naming_no_event_splits_the_batch_down_to_the_culprit() -> None:
    with SpaireBackend(pinpoint=False) as backend:
        sink = Spaire(api_key=backend.api_key, base_url=backend.url, customer_field="customer_id")
        bad = make_record(customer=str(uuid.uuid1()))
        good = [make_record(customer=str(uuid.uuid4())) for _ in range(6)]
        first = sink.send([*good[:4], bad, *good[4:]])
        assert first.split and not first.dead and len(first.retry) == 7
        result = drive(sink, [*good[:4], bad, *good[4:]])
        assert sorted(result.delivered) == sorted(r.event_id for r in good)
        assert list(result.dead) == [bad.event_id]
        assert "HTTP 422" in result.dead[bad.event_id]
        assert len(backend.events) == 6


@pytest.mark.parametrize("status", [401, 403])
def test_a_refused_key_halts_delivery_and_dead_letters_nothing(
    backend: SpaireBackend, sink: Spaire, status: int
) -> None:
    backend.fail_next(status)
    records = [make_record(), make_record()]
    outcomes = sink.send(records)
    assert outcomes.halt and f"HTTP {status}" in outcomes.halt
    assert outcomes.retry == [r.event_id for r in records] and not outcomes.dead and not outcomes.delivered


def test_a_wrong_key_halts_and_the_key_never_appears_in_reasons_or_repr(backend: SpaireBackend) -> None:
    secret = "spaire_sk_live_do_not_leak_123456"
    sink = Spaire(api_key=secret, base_url=backend.url)
    outcomes = sink.send([make_record()])
    assert outcomes.halt is not None and "401" in outcomes.halt
    assert secret not in outcomes.halt and secret not in repr(sink)


def test_rate_limits_and_server_errors_are_retried_with_retry_after(
    backend: SpaireBackend, sink: Spaire
) -> None:
    records = [make_record()]
    backend.rate_limit_next(retry_after=7)
    limited = sink.send(records)
    assert limited.retry == [records[0].event_id] and limited.retry_after == 7.0
    backend.fail_next(503, headers={"Retry-After": "2"})
    assert sink.send(records).retry_after == 2.0
    backend.fail_next(500)
    failed = sink.send(records)
    assert failed.retry == [records[0].event_id] and failed.retry_after is None and not failed.dead
    assert sink.send(records).delivered == [records[0].event_id]


def test_a_413_splits_the_batch_and_a_single_event_too_large_is_dead(
    backend: SpaireBackend, sink: Spaire
) -> None:
    backend.max_events = 2
    records = [make_record() for _ in range(5)]
    first = sink.send(records)
    assert first.split and "413" in first.split
    assert sorted(drive(sink, records).delivered) == sorted(r.event_id for r in records)
    backend.fail_next(413)
    lone = make_record()
    assert "413" in sink.send([lone]).dead[lone.event_id]


def test_connection_errors_retry_and_a_lost_answer_never_double_counts(
    backend: SpaireBackend, sink: Spaire
) -> None:
    records = [make_record() for _ in range(4)]
    backend.drop_next()
    assert sink.send(records).retry == [r.event_id for r in records]
    backend.lose_response_next()  # stored, but the answer never arrives
    assert sink.send(records).retry == [r.event_id for r in records]
    final = sink.send(records)
    assert final.delivered == [r.event_id for r in records] and final.duplicates == 4
    assert backend.totals()["org_1"]["events"] == 4


def test_polar_uses_the_same_api_on_its_own_hosts() -> None:
    assert Polar(api_key="polar_oat_x").base_url == "https://api.polar.sh"
    assert Polar(api_key="polar_oat_x", sandbox=True).base_url == "https://sandbox-api.polar.sh"
    assert Spaire(api_key="k").base_url == "https://api.spairehq.com"
    with PolarBackend() as backend:
        sink = Polar(
            api_key=backend.api_key, base_url=backend.url, event_name="ai_usage", organization_id="o1"
        )
        record = make_record()
        assert sink.send([record]).delivered == [record.event_id]
        [event] = sent_events(backend)
        assert event["name"] == "ai_usage" and event["organization_id"] == "o1"


def test_bad_configuration_is_refused_without_echoing_the_key() -> None:
    with pytest.raises(ConfigurationError, match="API key is required"):
        Spaire(api_key="")
    with pytest.raises(ConfigurationError, match="whitespace") as caught:
        Spaire(api_key="secret-key-value\n")
    assert "secret-key-value" not in str(caught.value)
    with pytest.raises(ConfigurationError, match="customer_field"):
        Spaire(api_key="k", customer_field="email")
    with pytest.raises(ConfigurationError, match="base URL"):
        Spaire(api_key="k", base_url="api.spairehq.com")


@pytest.mark.parametrize("backend_type", [SpaireBackend, PolarBackend])
def test_a_mixed_workload_through_the_pipeline_with_faults_lands_exactly_once(
    server: ProviderServer, backend_type: type[SpaireBackend]
) -> None:
    with backend_type() as backend:
        sink_type = Polar if backend_type is PolarBackend else Spaire
        usagetap.configure(sink=sink_type(api_key=backend.api_key, base_url=backend.url), flush_interval=0.05)
        backend.fail_next(500)
        backend.rate_limit_next(retry_after=1)
        backend.lose_response_next()
        backend.drop_next()
        issued = run_workload(server, ["org_a", "org_b", "org_c"], dimensions={"feature": "x" * 800})
        assert usagetap.flush(timeout=30).pending == 0
        totals = backend.totals()
        assert set(totals) == set(issued)
        for customer, expected in issued.items():
            assert totals[customer]["events"] == expected["calls"]
            for key in TOKEN_KEYS:
                assert totals[customer][key] == expected[key], (customer, key)
        assert sum(t["events"] for t in totals.values()) == len(backend.events) == 9
        assert all(t["cost_cents"] > 0 for t in totals.values())
        assert backend.duplicates > 0  # the lost answer's events came again and were deduplicated
        assert len(backend.requests) >= 5
