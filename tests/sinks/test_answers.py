"""What every HTTP sink shares: Retry-After, reasons from error bodies, redaction, the status table."""

from __future__ import annotations

import email.utils
import time

import httpx
import pytest

from tests.helpers import make_record
from usagetap.sinks._http import Endpoint, answer_outcomes, retry_after_of


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
