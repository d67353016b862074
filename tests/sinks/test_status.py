"""Every HTTP sink's answer -> outcome mapping, with respx answering in the backend's place.

The loopback backends (``usagetap.testing.backends``) check each sink's contract; here respx
plays any status, header and body a backend might send, the same for every sink.
"""

from __future__ import annotations

import email.utils
import time
from collections.abc import Callable, Iterator

import httpx
import pytest
import respx

from tests.helpers import make_record
from tests.sinks.contract import drive
from usagetap._record import UsageRecord
from usagetap.sinks import HTTP, OpenMeter, OpenSpanner, Polar, SolvaPay, Spaire, Stripe
from usagetap.sinks.base import BaseSink

BASE = "https://billing.example"
KEY = "sk_test_status0123456789"

SINKS: dict[str, Callable[[], BaseSink]] = {
    "spaire": lambda: Spaire(api_key=KEY, base_url=BASE),
    "polar": lambda: Polar(api_key=KEY, base_url=BASE),
    "open_spanner": lambda: OpenSpanner(api_key=KEY, base_url=BASE),
    "openmeter": lambda: OpenMeter(api_key=KEY, base_url=BASE),
    "solvapay": lambda: SolvaPay(api_key=KEY, base_url=BASE),
    "stripe": lambda: Stripe(api_key=KEY, base_url=BASE),
    "http": lambda: HTTP(f"{BASE}/usage", secret=KEY),
}
BATCHING = [name for name in SINKS if name != "stripe"]  # Stripe posts one event per request


@pytest.fixture(params=list(SINKS))
def name(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def sink(name: str) -> Iterator[BaseSink]:
    made = SINKS[name]()
    yield made
    made.close()


@pytest.fixture
def backend() -> Iterator[respx.Route]:
    with respx.mock(assert_all_called=True) as router:
        yield router.route(host="billing.example")


def records(count: int = 1) -> list[UsageRecord]:
    return [make_record(customer="cus_status1") for _ in range(count)]


def http_date(offset: float) -> str:
    return email.utils.formatdate(time.time() + offset, usegmt=True)


@pytest.mark.parametrize("status", [401, 403])
def test_a_refused_key_halts_the_sink_and_keeps_every_event(
    sink: BaseSink, backend: respx.Route, status: int
) -> None:
    backend.respond(status, json={"error": {"message": f"bad key {KEY}"}})
    batch = records()
    outcomes = sink.send(batch)
    assert outcomes.halt is not None and "API key was refused" in outcomes.halt
    assert KEY not in outcomes.halt
    assert outcomes.retry == [batch[0].event_id] and not outcomes.dead


@pytest.mark.parametrize("status", [301, 307, 404, 405])
def test_a_wrong_url_halts_the_sink(sink: BaseSink, backend: respx.Route, status: int) -> None:
    backend.respond(status, text="Cannot POST /somewhere", headers={"Location": f"{BASE}/elsewhere"})
    batch = records()
    outcomes = sink.send(batch)
    assert outcomes.halt is not None and "check the sink's URL" in outcomes.halt
    assert outcomes.retry == [batch[0].event_id]


@pytest.mark.parametrize("status", [408, 429, 500, 502, 503, 504])
def test_a_busy_or_failing_backend_is_retried(sink: BaseSink, backend: respx.Route, status: int) -> None:
    backend.respond(status, json={"error": {"message": "try later"}})
    batch = records()
    outcomes = sink.send(batch)
    assert outcomes.retry == [batch[0].event_id]
    assert outcomes.halt is None and not outcomes.dead and not outcomes.delivered
    assert outcomes.retry_reason is not None and f"HTTP {status}" in outcomes.retry_reason


def test_retry_after_in_seconds_sets_the_wait(sink: BaseSink, backend: respx.Route) -> None:
    backend.respond(429, headers={"Retry-After": "7"})
    assert sink.send(records()).retry_after == 7.0


@pytest.mark.parametrize(("offset", "wait"), [(7200.0, 3600.0), (-600.0, 0.0)])
def test_retry_after_as_an_http_date_sets_the_wait_within_bounds(
    sink: BaseSink, backend: respx.Route, offset: float, wait: float
) -> None:
    backend.respond(503, headers={"Retry-After": http_date(offset)})
    assert sink.send(records()).retry_after == wait


def test_a_malformed_retry_after_leaves_the_wait_to_the_pipeline(
    sink: BaseSink, backend: respx.Route
) -> None:
    backend.respond(429, headers={"Retry-After": "in a moment"})
    outcomes = sink.send(records())
    assert outcomes.retry_after is None and len(outcomes.retry) == 1


@pytest.mark.parametrize("status", [400, 422])
def test_an_event_the_backend_refuses_is_dead_lettered_with_its_reason(
    sink: BaseSink, backend: respx.Route, status: int
) -> None:
    backend.respond(status, json={"message": "value must be positive"})
    batch = records()
    delivery = drive(sink, batch)
    assert list(delivery.dead) == [batch[0].event_id]
    assert f"HTTP {status}" in delivery.dead[batch[0].event_id]
    assert "value must be positive" in delivery.dead[batch[0].event_id]


@pytest.mark.parametrize("name", BATCHING, indirect=True)
def test_a_batch_too_large_is_split_for_its_size(sink: BaseSink, backend: respx.Route) -> None:
    backend.respond(413, text="Payload Too Large")
    outcomes = sink.send(records(2))
    assert outcomes.split is not None and "HTTP 413" in outcomes.split
    assert outcomes.too_large and len(outcomes.retry) == 2 and not outcomes.dead


def test_a_single_event_too_large_is_dead_lettered(sink: BaseSink, backend: respx.Route) -> None:
    backend.respond(413, text="Payload Too Large")
    batch = records()
    assert "HTTP 413" in drive(sink, batch).dead[batch[0].event_id]


def test_an_html_error_page_still_gives_the_status_as_the_reason(
    sink: BaseSink, backend: respx.Route
) -> None:
    backend.respond(502, html="<html><body><h1>502 Bad Gateway</h1></body></html>")
    outcomes = sink.send(records())
    assert outcomes.retry_reason is not None and "HTTP 502" in outcomes.retry_reason
    assert len(outcomes.retry) == 1


def test_a_refusal_whose_body_is_not_json_dead_letters_with_its_text(
    sink: BaseSink, backend: respx.Route
) -> None:
    backend.respond(400, text="bad request: quantity")
    batch = records()
    assert "HTTP 400: bad request: quantity" in drive(sink, batch).dead[batch[0].event_id]


# What a 2xx whose body is not what the backend documents means: OpenSpanner reads each item's
# outcome from its bulk answer, so an unreadable one acknowledges nothing; the others' 2xx does.
UNREADABLE_2XX = dict.fromkeys(SINKS, "delivered") | {"open_spanner": "retry"}


@pytest.mark.parametrize("body", [b"<html>ok</html>", b"", b"[1, 2", b'"accepted"'])
def test_an_unreadable_success_answer_has_one_defined_outcome(
    name: str, sink: BaseSink, backend: respx.Route, body: bytes
) -> None:
    backend.respond(200, content=body, headers={"Content-Type": "application/json"})
    batch = records()
    outcomes = sink.send(batch)
    assert getattr(outcomes, UNREADABLE_2XX[name]) == [batch[0].event_id]
    assert not outcomes.dead and outcomes.halt is None


@pytest.mark.parametrize(
    "error",
    [
        httpx.ConnectTimeout("connect timed out"),
        httpx.ReadTimeout("read timed out"),
        httpx.ConnectError("connection refused"),
        httpx.RemoteProtocolError("server disconnected"),
    ],
)
def test_no_answer_is_retried_with_the_cause(sink: BaseSink, backend: respx.Route, error: Exception) -> None:
    backend.side_effect = error
    batch = records()
    outcomes = sink.send(batch)
    assert outcomes.retry == [batch[0].event_id] and outcomes.halt is None
    assert outcomes.retry_reason is not None
    assert f"no answer from billing.example: {type(error).__name__}" in outcomes.retry_reason
