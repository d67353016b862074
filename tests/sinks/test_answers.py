"""What every HTTP sink shares: Retry-After, reasons from error bodies, redaction, the status table."""

from __future__ import annotations

import email.utils
import time
from typing import Any

import httpx
import pytest

from tests.helpers import make_record
from usagetap.sinks._http import Endpoint, answer_outcomes, post_batch, retry_after_of
from usagetap.sinks._items import OutcomeTally, WireItem
from usagetap.sinks.base import Outcomes


def response(status: int, body: object = None, headers: dict[str, str] | None = None) -> httpx.Response:
    return httpx.Response(status, json=body, headers=headers or {})


@pytest.mark.parametrize(
    ("value", "expected"),
    [("7", 7.0), ("0.5", 0.5), ("-3", 0.0), ("99999", 3600.0), ("soon", None), ("nan", None)],
)
def test_retry_after_seconds(value: str, expected: float | None) -> None:
    assert retry_after_of(response(429, headers={"Retry-After": value})) == expected


def test_retry_after_as_an_http_date() -> None:
    when = email.utils.formatdate(time.time() + 30, usegmt=True)
    seconds = retry_after_of(response(503, headers={"Retry-After": when}))
    assert seconds is not None and 25 <= seconds <= 31
    assert retry_after_of(response(503)) is None


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (
            {"detail": [{"loc": ["body", "events", 0, "name"], "msg": "Field required"}]},
            "events.0.name: Field required",
        ),
        ({"error": {"message": "No such customer", "type": "invalid_request_error"}}, "No such customer"),
        ({"error": {"code": "invalid_input", "message": "bad subject"}}, "bad subject"),
        (
            {"statusCode": 400, "message": "Validation failed", "errors": [{"message": "units"}]},
            "Validation failed: units",
        ),
        (
            {"type": "about:blank", "title": "Bad Request", "detail": "time must be RFC 3339"},
            "time must be RFC 3339",
        ),
        ({"error": "invalid_token", "error_description": "expired"}, "invalid_token: expired"),
        ({"type": "ResourceNotFound", "detail": "Not found"}, "Not found"),
    ],
)
def test_reasons_come_from_the_common_error_shapes(body: object, expected: str) -> None:
    endpoint = Endpoint("x", "http://h")
    assert endpoint.reason(response(400, body)) == f"x: HTTP 400: {expected}"


def test_reasons_never_carry_the_key_or_key_like_tokens_and_stay_short() -> None:
    endpoint = Endpoint("x", "http://h", secrets=("my-very-secret",))
    body = {
        "message": "key my-very-secret refused; also sk_live_abcdef123456 and polar_oat_abcdefgh " + "y" * 900
    }
    reason = endpoint.reason(response(401, body))
    assert "my-very-secret" not in reason and "sk_live_abcdef" not in reason and "polar_oat_abc" not in reason
    assert reason.count("[redacted]") == 3 and len(reason) <= 500


@pytest.mark.parametrize(
    ("status", "atomic", "kind"),
    [
        (401, True, "halt"),
        (403, False, "halt"),
        (408, True, "retry"),
        (429, True, "retry"),
        (500, True, "retry"),
        (503, False, "retry"),
        (413, False, "split"),
        (422, True, "split"),
        (422, False, "dead"),
        (409, False, "dead"),
        (404, False, "halt"),
        (405, True, "halt"),
        (301, False, "halt"),
    ],
)
def test_the_status_table(status: int, atomic: bool, kind: str) -> None:
    records = [make_record(), make_record()]
    outcomes = answer_outcomes(
        Endpoint("x", "http://h"), response(status, {"message": "m"}), records, atomic=atomic
    )
    ids = [r.event_id for r in records]
    if kind == "halt":
        assert outcomes.halt and outcomes.retry == ids
    elif kind == "retry":
        assert outcomes.retry == ids and not outcomes.halt and not outcomes.split
    elif kind == "split":
        assert outcomes.split == f"x: HTTP {status}: m" and outcomes.retry == ids
    else:
        assert outcomes.dead == dict.fromkeys(ids, f"x: HTTP {status}: m")


def test_a_404_about_an_event_is_not_a_wrong_url_when_the_backend_says_so() -> None:
    records = [make_record(), make_record()]
    answer = response(404, {"message": "Customer not found"})
    outcomes = answer_outcomes(Endpoint("x", "http://h"), answer, records, atomic=True, missing_route=False)
    assert outcomes.split and not outcomes.halt


def test_a_redirect_names_where_it_points() -> None:
    answer = httpx.Response(308, headers={"Location": "https://api.example/v1/x"})
    outcomes = answer_outcomes(Endpoint("x", "http://h"), answer, [make_record()], atomic=False)
    assert outcomes.halt and "redirected to https://api.example/v1/x" in outcomes.halt


def test_a_single_event_refused_as_a_batch_is_dead_not_split() -> None:
    record = make_record()
    outcomes = answer_outcomes(
        Endpoint("x", "http://h"), response(413, {"message": "too big"}), [record], atomic=True
    )
    assert outcomes.dead == {record.event_id: "x: HTTP 413: too big"} and not outcomes.split


def test_the_client_is_rebuilt_after_fork_and_closed_once() -> None:
    endpoint = Endpoint("x", "http://h")
    client = endpoint.client()
    assert endpoint.client() is client
    endpoint._pid = -1  # as seen from a forked child
    assert endpoint.client() is not client
    endpoint.close()
    endpoint.close()


class Answering(Endpoint):
    """An endpoint whose every POST gets ``answer`` (an exception: no answer at all)."""

    def __init__(self, answer: httpx.Response | Exception) -> None:
        super().__init__("x", "http://backend.test")
        self.answer = answer
        self.posted: list[dict[str, object]] = []

    def post(self, path: str, **kwargs: object) -> httpx.Response:
        self.posted.append({"path": path, **kwargs})
        if isinstance(self.answer, Exception):
            raise self.answer
        return self.answer


def kind(outcomes: Outcomes) -> str:
    """Which row of the status table ``outcomes`` is."""
    if outcomes.halt:
        return "halt"
    if outcomes.split:
        return "split-413" if outcomes.too_large else "split"
    if outcomes.dead:
        return "dead"
    if outcomes.retry:
        return "retry"
    return "delivered"


def post(answer: httpx.Response | Exception, n: int = 2, **options: Any) -> Outcomes:
    records = [make_record() for _ in range(n)]
    tally = OutcomeTally(records)
    items = [WireItem(r, r.event_id, r.total_tokens) for r in records]
    post_batch(Answering(answer), "/ingest", items, tally, json={"events": []}, **options)
    return tally.outcomes()


@pytest.mark.parametrize(
    ("status", "n", "atomic", "expected"),
    [
        (200, 2, True, "delivered"),
        (202, 2, True, "delivered"),
        (401, 2, True, "halt"),
        (403, 2, True, "halt"),
        (302, 2, True, "halt"),
        (404, 2, True, "halt"),
        (405, 2, True, "halt"),
        (408, 2, True, "retry"),
        (429, 2, True, "retry"),
        (500, 2, True, "retry"),
        (503, 2, True, "retry"),
        (413, 2, True, "split-413"),
        (413, 1, True, "dead"),
        (422, 2, True, "split"),
        (422, 1, True, "dead"),
        (400, 2, False, "dead"),
        (422, 2, False, "dead"),
    ],
)
def test_post_batch_maps_each_status_to_its_outcome(status: int, n: int, atomic: bool, expected: str) -> None:
    assert kind(post(response(status, {"detail": "no"}), n, atomic=atomic)) == expected


def test_post_batch_retries_every_item_when_there_is_no_answer() -> None:
    outcomes = post(httpx.ConnectError("[Errno 111] Connection refused"))
    assert (kind(outcomes), len(outcomes.retry)) == ("retry", 2)
    assert (
        outcomes.retry_reason
        == "x: no answer from backend.test: ConnectError: [Errno 111] Connection refused"
    )


def test_post_batch_takes_retry_after_from_the_answer() -> None:
    assert post(response(429, headers={"Retry-After": "12"})).retry_after == 12.0


def test_a_404_about_an_event_is_dead_when_the_sink_says_the_route_exists() -> None:
    assert (
        kind(post(response(404, {"message": "no such customer"}), 1, missing_route=lambda r: False)) == "dead"
    )


def test_post_batch_lets_the_sink_read_the_answer_first() -> None:
    records = [make_record(), make_record()]
    tally = OutcomeTally(records)
    items = [WireItem(r, r.event_id, r.total_tokens) for r in records]

    def read(answer: httpx.Response) -> bool:
        tally.dead(items[0], "named by the backend")
        tally.delivered(items[1], duplicate=True)
        return True

    post_batch(Answering(response(422, {"detail": "one bad"})), "/ingest", items, tally, read=read)
    outcomes = tally.outcomes()
    assert (outcomes.dead, outcomes.delivered, outcomes.duplicates) == (
        {records[0].event_id: "named by the backend"},
        [records[1].event_id],
        1,
    )


def test_an_answer_the_sink_does_not_read_follows_the_table() -> None:
    assert kind(post(response(503), read=lambda answer: False)) == "retry"


def test_post_batch_sends_the_request_it_is_given() -> None:
    endpoint = Answering(response(200))
    record = make_record()
    post_batch(
        endpoint, "/ingest", [WireItem(record, record.event_id, 1)], OutcomeTally([record]), content=b"{}"
    )
    assert endpoint.posted == [{"path": "/ingest", "content": b"{}"}]
