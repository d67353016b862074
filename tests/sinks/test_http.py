"""The generic HTTP sink: signed JSON batches to a home-grown receiver."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Iterator
from decimal import Decimal

import httpx
import pytest

import usagetap
from tests.helpers import make_record
from tests.sinks.contract import drive
from tests.sinks.workload import TOKEN_KEYS, run_workload
from usagetap import ConfigurationError
from usagetap._record import UsageRecord
from usagetap.sinks import HTTP
from usagetap.sinks.http import SIGNATURE_HEADER, payload, sign, verify
from usagetap.testing import ProviderServer
from usagetap.testing.backends import HTTPReceiver

TIMESTAMP_HEADER = "X-Usagetap-Timestamp"


@pytest.fixture
def receiver() -> Iterator[HTTPReceiver]:
    with HTTPReceiver(secret="s3cret") as server:
        yield server


@pytest.fixture
def sink(receiver: HTTPReceiver) -> HTTP:
    return HTTP(receiver.endpoint, secret="s3cret")


def test_batches_are_json_records_signed_over_the_timestamp_and_raw_body(
    receiver: HTTPReceiver, sink: HTTP
) -> None:
    record = make_record(cost=Decimal("0.5"), dimensions={"feature": "chat"})
    assert sink.send([record]).delivered == [record.event_id]
    [request] = receiver.requests
    assert request.headers["content-type"] == "application/json"
    timestamp = request.headers[TIMESTAMP_HEADER.lower()]
    assert abs(int(timestamp) - time.time()) < 600
    signed = timestamp.encode() + b"." + request.body
    expected = "sha256=" + hmac.new(b"s3cret", signed, hashlib.sha256).hexdigest()
    assert request.headers[SIGNATURE_HEADER.lower()] == expected
    [event] = request.json()["events"]
    assert UsageRecord.from_dict(event) == record


def test_verify_accepts_only_the_exact_body_secret_and_timestamp() -> None:
    body, now = b'{"events":[]}', int(time.time())
    signature = sign(body, "k", now)
    assert verify(body, signature, "k", str(now))
    assert not verify(body + b" ", signature, "k", str(now))
    assert not verify(body, signature, "other", str(now))
    assert not verify(body, signature, "k", str(now + 1))
    assert not verify(body, None, "k", str(now))
    assert not verify(body, "sha256=" + "0" * 64, "k", str(now))


def test_a_bad_signature_is_refused_and_pauses_delivery(receiver: HTTPReceiver) -> None:
    wrong = HTTP(receiver.endpoint, secret="not-the-secret")
    outcomes = wrong.send([make_record()])
    assert outcomes.halt and "401" in outcomes.halt and "not-the-secret" not in outcomes.halt
    assert receiver.events == {}


def test_per_event_answers_dead_letter_rejections_and_count_duplicates(
    receiver: HTTPReceiver, sink: HTTP
) -> None:
    receiver.reject(lambda event: "unknown customer" if event["customer"] == "nobody" else None)
    good, stranger = make_record(), make_record(customer="nobody")
    sink.send([good])
    outcomes = sink.send([good, stranger])
    assert outcomes.delivered == [good.event_id] and outcomes.duplicates == 1
    assert outcomes.dead == {stranger.event_id: "http: rejected: unknown customer"}


def test_the_body_is_what_json_dumps_writes_for_each_records_dict() -> None:
    from datetime import datetime, timedelta, timezone

    records = [
        make_record(),
        make_record(
            customer=None,
            request_model=None,
            cost=Decimal("1.2E-7"),
            billed_cost=Decimal("0.000000156"),
            price_version='genai-prices 0.0.40 "x"',
            cache_read_tokens=64,
            reasoning_tokens=3,
            dimensions={
                "feature": "t\u00e9l\u00e9\n\u2028",
                "n": 3,
                "ratio": 0.25,
                "flag": False,
                "inf": float("inf"),
            },
            response_id="resp_\\1",
            run_id="run_1",
            parent_run_id="run_0",
            status="partial",
        ),
        make_record(timestamp=datetime(2026, 3, 1, 23, 30, tzinfo=timezone(timedelta(hours=-5)))),
    ]
    events = []
    for record in records:
        event = record.to_dict()
        event["dimensions"] = {k: v for k, v in event["dimensions"].items() if k != "inf"}
        events.append(event)
    expected = json.dumps({"events": events}, separators=(",", ":"), allow_nan=False).encode()
    assert payload(records) == expected
    assert json.loads(payload(records))["events"][2]["timestamp"] == "2026-03-02T04:30:00+00:00"
    assert payload([]) == b'{"events":[]}'


def test_non_finite_dimensions_are_dropped_so_the_body_stays_json(receiver: HTTPReceiver, sink: HTTP) -> None:
    record = make_record(dimensions={"nan": float("nan"), "ok": 1.5})
    assert sink.send([record]).delivered == [record.event_id]
    assert json.loads(receiver.requests[0].body)["events"][0]["dimensions"] == {"ok": 1.5}


def test_a_refused_batch_is_split_and_failures_retry(receiver: HTTPReceiver, sink: HTTP) -> None:
    records = [make_record() for _ in range(4)]
    receiver.fail_next(400)
    assert sink.send(records).split
    receiver.fail_next(422)
    assert sorted(drive(sink, records).delivered) == sorted(r.event_id for r in records)
    receiver.rate_limit_next(retry_after=3)
    assert sink.send(records).retry_after == 3.0


def test_unsigned_mode_and_extra_headers(receiver: HTTPReceiver) -> None:
    plain = HTTP(receiver.endpoint, headers={"Authorization": "Bearer tok_12345678"})
    plain.send([make_record()])
    request = receiver.requests[0]
    assert SIGNATURE_HEADER.lower() not in request.headers
    assert request.headers["authorization"] == "Bearer tok_12345678"
    assert "tok_12345678" not in repr(plain)
    with pytest.raises(ConfigurationError):
        HTTP(receiver.endpoint, secret="")


def test_a_mixed_workload_through_the_pipeline_with_faults_lands_exactly_once(
    server: ProviderServer, receiver: HTTPReceiver, sink: HTTP
) -> None:
    usagetap.configure(sink=sink, flush_interval=0.05)
    receiver.fail_next(500)
    receiver.rate_limit_next(retry_after=1)
    receiver.lose_response_next()
    receiver.drop_next()
    issued = run_workload(server, ["org_a", "org_b", "org_c"], dimensions={"plan": "pro"})
    assert usagetap.flush(timeout=30).pending == 0
    totals = receiver.totals()
    for customer, expected in issued.items():
        assert totals[customer]["events"] == expected["calls"]
        for key in TOKEN_KEYS:
            assert totals[customer][key] == expected[key]
        assert totals[customer]["cost"] > 0
    assert len(receiver.events) == 9


def test_verify_answers_false_to_a_non_ascii_signature_instead_of_raising() -> None:
    body, now = b'{"events":[]}', int(time.time())
    assert verify(body, "sha256=é" + "0" * 63, "k", str(now)) is False


def test_verify_refuses_an_empty_secret() -> None:
    body, now = b'{"events":[]}', int(time.time())
    with pytest.raises(ConfigurationError, match="secret"):
        verify(body, "sha256=" + "0" * 64, "", str(now))


def test_verify_refuses_a_captured_request_replayed_after_the_tolerance() -> None:
    body, signed_at = b'{"events":[]}', int(time.time()) - 301
    signature = sign(body, "k", signed_at)
    assert not verify(body, signature, "k", str(signed_at))
    assert verify(body, signature, "k", str(signed_at), tolerance=600)
    assert not verify(body, signature, "k", None), "a signature without its timestamp proves nothing"


def test_the_receiver_refuses_a_replayed_request_with_401(receiver: HTTPReceiver, sink: HTTP) -> None:
    sink.send([make_record()])
    [request] = receiver.requests
    old = str(int(time.time()) - 3600)
    replayed = httpx.post(
        receiver.endpoint,
        content=request.body,
        headers={
            SIGNATURE_HEADER: sign(request.body, "s3cret", int(old)),
            TIMESTAMP_HEADER: old,
            "Content-Type": "application/json",
        },
    )
    assert replayed.status_code == 401


@pytest.mark.parametrize("timeout", [float("nan"), float("inf"), 0, -1])
def test_a_non_finite_or_non_positive_timeout_is_refused(timeout: float) -> None:
    with pytest.raises(ConfigurationError, match="timeout"):
        HTTP("https://billing.example.com/usage", timeout=timeout)


def test_a_blank_secret_is_refused_rather_than_sending_unsigned() -> None:
    with pytest.raises(ConfigurationError, match="secret"):
        HTTP("https://billing.example.com/usage", secret="   ")


def test_a_header_value_with_a_newline_is_refused_without_echoing_it() -> None:
    with pytest.raises(ConfigurationError) as info:
        HTTP("https://billing.example.com/usage", headers={"X-Token": "tok-0123456789\n"})
    assert "tok-0123456789" not in str(info.value)
