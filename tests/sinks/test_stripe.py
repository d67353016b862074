"""Stripe meter-events sink against a loopback Stripe that keeps the meter-events contract."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from urllib.parse import parse_qs

import pytest

import usagetap
from tests.helpers import make_record
from tests.sinks.workload import run_workload
from usagetap import ConfigurationError
from usagetap.sinks import Stripe
from usagetap.sinks.stripe import identifier
from usagetap.testing import ProviderServer
from usagetap.testing.backends import StripeBackend


@pytest.fixture
def backend() -> Iterator[StripeBackend]:
    with StripeBackend() as server:
        yield server


def make_sink(backend: StripeBackend, **options: object) -> Stripe:
    return Stripe(api_key=backend.api_key, base_url=backend.url, **options)  # type: ignore[arg-type]


def forms(backend: StripeBackend) -> list[dict[str, str]]:
    return [{k: v[0] for k, v in parse_qs(r.body.decode()).items()} for r in backend.requests]


def test_one_form_encoded_meter_event_per_record(backend: StripeBackend) -> None:
    sink = make_sink(backend)
    record = make_record(customer="cus_123", input_tokens=90, output_tokens=30)
    assert sink.send([record]).delivered == [record.event_id]
    [request] = backend.requests
    assert request.path == "/v1/billing/meter_events"
    assert request.headers["content-type"].startswith("application/x-www-form-urlencoded")
    assert forms(backend) == [
        {
            "event_name": "llm_tokens",
            "payload[stripe_customer_id]": "cus_123",
            "payload[value]": "120",
            "identifier": record.event_id,
            "timestamp": str(int(record.timestamp.timestamp())),
        }
    ]
    assert backend.totals() == {"cus_123": {"value": 120}}


def test_a_duplicate_identifier_answer_counts_as_delivered(backend: StripeBackend) -> None:
    sink = make_sink(backend)
    records = [make_record(customer="cus_1") for _ in range(3)]
    sink.send(records)
    again = sink.send(records)
    assert again.delivered == [r.event_id for r in records] and again.duplicates == 3 and not again.dead
    assert backend.totals()["cus_1"]["value"] == 360


def test_split_by_token_type_feeds_one_meter_per_type(backend: StripeBackend) -> None:
    sink = make_sink(backend, split_by_token_type=True, event_name="tokens_{token_type}")
    record = make_record(customer="cus_1", input_tokens=400, cache_read_tokens=256, output_tokens=50)
    assert sink.send([record]).delivered == [record.event_id]
    sent = sorted((f["event_name"], f["identifier"], f["payload[value]"]) for f in forms(backend))
    assert sent == [
        ("tokens_cache_read", f"{record.event_id}:cache_read", "256"),
        ("tokens_input", f"{record.event_id}:input", "144"),
        ("tokens_output", f"{record.event_id}:output", "50"),
    ]
    assert backend.totals()["cus_1"] == {"value": 450, "cache_read": 256, "input": 144, "output": 50}


def test_events_older_than_35_days_are_dead_lettered_not_sent(backend: StripeBackend) -> None:
    sink = make_sink(backend)
    old = make_record(customer="cus_1", timestamp=datetime.now(timezone.utc) - timedelta(days=36))
    recent = make_record(customer="cus_1", timestamp=datetime.now(timezone.utc) - timedelta(days=34))
    outcomes = sink.send([old, recent])
    assert "older than 35 days" in outcomes.dead[old.event_id]
    assert outcomes.delivered == [recent.event_id]
    assert [f["identifier"] for f in forms(backend)] == [recent.event_id]


def test_future_timestamps_are_clamped(backend: StripeBackend) -> None:
    sink = make_sink(backend)
    ahead = make_record(customer="cus_1", timestamp=datetime.now(timezone.utc) + timedelta(hours=1))
    assert sink.send([ahead]).delivered == [ahead.event_id]
    assert int(forms(backend)[0]["timestamp"]) <= datetime.now(timezone.utc).timestamp()


def test_customers_must_be_stripe_customer_ids(backend: StripeBackend) -> None:
    sink = make_sink(backend)
    outcomes = sink.send([make_record(customer="org_1"), make_record(customer=None)])
    assert sorted(outcomes.dead.values()) == [
        "customer 'org_1' is not a Stripe customer id (cus_...)",
        "no customer",
    ]
    assert backend.requests == []


def test_identifiers_stay_within_100_characters_and_stable() -> None:
    assert identifier("a" * 100) == "a" * 100
    long = identifier("b" * 101)
    assert len(long) == 64 and long == identifier("b" * 101)


def test_a_refused_key_halts_and_stripes_masked_key_is_redacted(backend: StripeBackend) -> None:
    secret = "sk_live_51SecretValueThatMustNotLeak"
    sink = Stripe(api_key=secret, base_url=backend.url, concurrency=2)
    outcomes = sink.send([make_record(customer="cus_1") for _ in range(5)])
    assert outcomes.halt and "401" in outcomes.halt
    assert "sk_live" not in outcomes.halt and "Leak" not in outcomes.halt
    assert len(outcomes.retry) == 5 and not outcomes.dead


def test_rate_limits_retry_with_retry_after_and_other_refusals_are_dead(backend: StripeBackend) -> None:
    sink = make_sink(backend, concurrency=1)
    records = [make_record(customer="cus_1") for _ in range(3)]
    backend.rate_limit_next(retry_after=5)
    limited = sink.send(records)
    assert limited.retry_after == 5.0 and records[0].event_id in limited.retry
    delivered = sink.send(records)
    assert sorted(delivered.delivered) == sorted(r.event_id for r in records)
    backend.fail_next(
        400, body={"error": {"message": "Invalid payload[value]", "type": "invalid_request_error"}}
    )
    lone = make_record(customer="cus_1")
    assert sink.send([lone]).dead == {lone.event_id: "stripe: HTTP 400: Invalid payload[value]"}
    backend.fail_next(409, headers={"Stripe-Should-Retry": "true"})
    other = make_record(customer="cus_1")
    assert sink.send([other]).retry == [other.event_id]


def test_many_events_are_sent_concurrently_and_all_land_once(backend: StripeBackend) -> None:
    sink = make_sink(backend, concurrency=8)
    records = [make_record(customer=f"cus_{i % 5}") for i in range(60)]
    backend.drop_next(3)
    first = sink.send(records)
    assert len(first.delivered) == 57 and len(first.retry) == 3
    second = sink.send(records)
    assert len(second.delivered) == 60 and second.duplicates == 57
    assert sum(t["value"] for t in backend.totals().values()) == 60 * 120
    sink.close()


def test_keys_and_options_are_checked_without_echoing_the_key() -> None:
    with pytest.raises(ConfigurationError, match="publishable") as caught:
        Stripe(api_key="pk_live_abcdef123456")
    assert "abcdef123456" not in str(caught.value)
    with pytest.raises(ConfigurationError, match="secret key"):
        Stripe(api_key="whatever")
    with pytest.raises(ConfigurationError, match="token_type"):
        Stripe(api_key="sk_test_x", event_name="t_{token_type}")
    assert Stripe(api_key="rk_test_x").base_url == "https://api.stripe.com"


@pytest.mark.parametrize("split", [False, True])
def test_a_mixed_workload_through_the_pipeline_with_faults_lands_exactly_once(
    server: ProviderServer, backend: StripeBackend, split: bool
) -> None:
    sink = make_sink(backend, split_by_token_type=split, concurrency=4)
    usagetap.configure(sink=sink, flush_interval=0.05)
    backend.fail_next(500)
    backend.rate_limit_next(retry_after=1)
    backend.lose_response_next(2)
    backend.drop_next()
    issued = run_workload(server, ["cus_a", "cus_b", "cus_c"])
    assert usagetap.flush(timeout=30).pending == 0
    totals = backend.totals()
    for customer, expected in issued.items():
        assert totals[customer]["value"] == expected["input_tokens"] + expected["output_tokens"]
        if split:
            assert totals[customer]["cache_read"] == expected["cache_read_tokens"]
    if not split:
        assert len(backend.events) == 9


def test_a_concurrency_beyond_the_limit_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="concurrency"):
        Stripe(api_key="sk_test_abc", concurrency=100_000)
