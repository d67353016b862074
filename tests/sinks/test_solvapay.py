"""SolvaPay sink against a loopback usage API that validates like SolvaPay's."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest

import usagetap
from tests.helpers import make_record
from tests.sinks.contract import drive
from tests.sinks.workload import run_workload
from usagetap import ConfigurationError
from usagetap.sinks import SolvaPay
from usagetap.testing import ProviderServer
from usagetap.testing.backends import SolvaPayBackend


@pytest.fixture
def backend() -> Iterator[SolvaPayBackend]:
    with SolvaPayBackend() as server:
        yield server


def make_sink(backend: SolvaPayBackend, **options: object) -> SolvaPay:
    return SolvaPay(api_key=backend.api_key, base_url=backend.url, **options)  # type: ignore[arg-type]


def sent_events(backend: SolvaPayBackend) -> list[dict]:
    return [e for r in backend.requests for e in r.json()["events"]]


def test_a_record_is_a_usage_token_event_on_the_bulk_usage_api(backend: SolvaPayBackend) -> None:
    sink = make_sink(backend, product_ref="prd_42")
    record = make_record(customer="cus_ABC", cost=Decimal("0.0021"), dimensions={"feature": "chat"})
    outcomes = sink.send([record])
    assert outcomes.delivered == [record.event_id]
    assert [r.path for r in backend.requests] == ["/v1/sdk/usages/bulk"]
    [event] = sent_events(backend)
    assert event["customerRef"] == "cus_ABC"
    assert event["units"] == 120
    assert (event["actionType"], event["outcome"], event["productRef"]) == ("custom", "success", "prd_42")
    assert event["idempotencyKey"] == record.event_id
    assert event["timestamp"].endswith("Z")
    assert event["metadata"]["type"] == "usage.token"
    assert event["metadata"]["model"] == "gpt-4.1" and event["metadata"]["feature"] == "chat"
    assert event["metadata"]["cost_usd"] == "0.0021"
    assert backend.totals() == {"cus_ABC": {"units": 120}}


def test_split_by_token_type_keys_each_type_and_sums_to_the_total(backend: SolvaPayBackend) -> None:
    sink = make_sink(backend, split_by_token_type=True)
    record = make_record(input_tokens=500, cache_read_tokens=256, output_tokens=64, reasoning_tokens=32)
    assert sink.send([record]).delivered == [record.event_id]
    assert sorted((e["idempotencyKey"], e["units"]) for e in sent_events(backend)) == [
        (f"{record.event_id}:cache_read", 256),
        (f"{record.event_id}:input", 244),
        (f"{record.event_id}:output", 64),
    ]
    assert backend.totals()["org_1"] == {"units": 564, "input": 244, "cache_read": 256, "output": 64}


def test_units_over_the_api_limit_go_in_parts_that_sum_to_the_total(backend: SolvaPayBackend) -> None:
    sink = make_sink(backend)
    big = make_record(input_tokens=250_000, output_tokens=1_000)
    assert sink.send([big]).delivered == [big.event_id]
    keys = [(e["idempotencyKey"], e["units"]) for e in sent_events(backend)]
    assert keys == [
        (f"{big.event_id}:part1", 100_000),
        (f"{big.event_id}:part2", 100_000),
        (f"{big.event_id}:part3", 51_000),
    ]
    assert backend.totals()["org_1"]["units"] == 251_000


def test_a_record_needing_more_than_a_thousand_parts_is_dead_lettered_not_split(
    backend: SolvaPayBackend,
) -> None:
    sink = make_sink(backend)
    good = make_record()
    bad = make_record(input_tokens=100_000_001, output_tokens=0)
    outcomes = sink.send([good, bad])
    assert outcomes.delivered == [good.event_id]
    assert outcomes.dead == {
        bad.event_id: "100000001 tokens would take 1001 events of at most 100000 units; "
        "more than the 1000 one record may take"
    }
    assert [e["idempotencyKey"] for e in sent_events(backend)] == [good.event_id]


def test_a_count_beyond_64_bits_is_dead_lettered_at_once(backend: SolvaPayBackend) -> None:
    sink = make_sink(backend, split_by_token_type=True)
    good = make_record()
    bad = make_record(input_tokens=2**63, output_tokens=2**64)
    outcomes = sink.send([bad, good])
    assert outcomes.delivered == [good.event_id] and list(outcomes.dead) == [bad.event_id]
    assert "more than the 1000 one record may take" in outcomes.dead[bad.event_id]
    assert backend.totals()["org_1"]["units"] == good.total_tokens


def test_old_events_are_dead_lettered_and_future_ones_clamped(backend: SolvaPayBackend) -> None:
    sink = make_sink(backend)
    old = make_record(timestamp=datetime.now(timezone.utc) - timedelta(days=31))
    ahead = make_record(timestamp=datetime.now(timezone.utc) + timedelta(days=2))
    outcomes = sink.send([old, ahead])
    assert "older than 30 days" in outcomes.dead[old.event_id]
    assert outcomes.delivered == [ahead.event_id]
    [event] = sent_events(backend)
    assert datetime.fromisoformat(event["timestamp"].replace("Z", "+00:00")) <= datetime.now(timezone.utc)


def test_records_without_customer_are_dead_lettered(backend: SolvaPayBackend) -> None:
    sink = make_sink(backend)
    lost, good = make_record(customer=None), make_record()
    outcomes = sink.send([lost, good])
    assert outcomes.dead == {lost.event_id: "no customer"} and outcomes.delivered == [good.event_id]


def test_a_known_idempotency_key_is_a_duplicate_not_an_error(backend: SolvaPayBackend) -> None:
    sink = make_sink(backend)
    records = [make_record() for _ in range(3)]
    sink.send(records)
    again = sink.send(records)
    assert again.delivered == [r.event_id for r in records] and again.duplicates == 3
    assert backend.totals()["org_1"]["units"] == 360


def test_one_invalid_event_refuses_the_bulk_and_the_pipeline_splits_it_out(backend: SolvaPayBackend) -> None:
    backend.customers = {"cus_ok"}
    sink = make_sink(backend)
    good = [make_record(customer="cus_ok") for _ in range(5)]
    stranger = make_record(customer="cus_unknown")
    first = sink.send([*good[:2], stranger, *good[2:]])
    assert first.split and "404" in first.split and not first.dead
    result = drive(sink, [*good[:2], stranger, *good[2:]])
    assert sorted(result.delivered) == sorted(r.event_id for r in good)
    assert list(result.dead) == [stranger.event_id] and "Customer not found" in result.dead[stranger.event_id]


def test_a_wrong_url_pauses_delivery_instead_of_dead_lettering(backend: SolvaPayBackend) -> None:
    sink = SolvaPay(api_key=backend.api_key, base_url=f"{backend.url}/api")
    records = [make_record(), make_record()]
    outcomes = sink.send(records)
    assert outcomes.halt and "Cannot POST" in outcomes.halt and not outcomes.dead


def test_errors_map_to_halt_retry_and_dead(backend: SolvaPayBackend) -> None:
    sink = make_sink(backend)
    record = make_record()
    backend.fail_next(401)
    assert sink.send([record]).halt
    backend.rate_limit_next(retry_after=4)
    assert sink.send([record]).retry_after == 4.0
    backend.fail_next(502)
    assert sink.send([record]).retry == [record.event_id]
    backend.fail_next(400, body={"statusCode": 400, "message": "Validation failed"})
    assert sink.send([record]).dead == {record.event_id: "solvapay: HTTP 400: Validation failed"}


def test_configuration_is_checked() -> None:
    with pytest.raises(ConfigurationError, match="action_type"):
        SolvaPay(api_key="sk_x", action_type="tokens")
    assert SolvaPay(api_key="sk_x").base_url == "https://api.solvapay.com"


@pytest.mark.parametrize("split", [False, True])
def test_a_mixed_workload_through_the_pipeline_with_faults_lands_exactly_once(
    server: ProviderServer, backend: SolvaPayBackend, split: bool
) -> None:
    usagetap.configure(sink=make_sink(backend, split_by_token_type=split), flush_interval=0.05)
    backend.fail_next(500)
    backend.rate_limit_next(retry_after=1)
    backend.lose_response_next()
    backend.drop_next()
    issued = run_workload(server, ["cus_a", "cus_b", "cus_c"])
    assert usagetap.flush(timeout=30).pending == 0
    totals = backend.totals()
    assert set(totals) == set(issued)
    for customer, expected in issued.items():
        assert totals[customer]["units"] == expected["input_tokens"] + expected["output_tokens"]
        if split:
            assert totals[customer]["cache_read"] == expected["cache_read_tokens"]
            assert totals[customer]["output"] == expected["output_tokens"]
