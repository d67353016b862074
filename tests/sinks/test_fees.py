"""Non-token fees (``record.fees``) reach each backend in its own shape."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from urllib.parse import parse_qs

import pytest

from tests.helpers import make_record
from usagetap.sinks import OpenSpanner, SolvaPay, Spaire, Stripe
from usagetap.testing.backends import OpenSpannerBackend, SolvaPayBackend, SpaireBackend, StripeBackend

_FEES = {"web_search": 3, "web_fetch": 1}


@pytest.fixture
def open_spanner() -> Iterator[OpenSpannerBackend]:
    with OpenSpannerBackend() as server:
        yield server
        assert server.contract_violations == []


def test_stripe_sends_each_fee_to_its_own_meter_when_there_is_a_meter_per_type() -> None:
    record = make_record(customer="cus_1", input_tokens=100, output_tokens=20, fees=_FEES)
    with StripeBackend() as backend:
        sink = Stripe(api_key=backend.api_key, base_url=backend.url, split_by_token_type=True,
                      event_name="llm_{token_type}")  # fmt: skip
        assert sink.send([record]).delivered == [record.event_id]
        forms = [{k: v[0] for k, v in parse_qs(r.body.decode()).items()} for r in backend.requests]
    sent = sorted((f["event_name"], f["identifier"], f["payload[value]"]) for f in forms)
    assert sent == [
        ("llm_input", f"{record.event_id}:input", "100"),
        ("llm_output", f"{record.event_id}:output", "20"),
        ("llm_web_fetch", f"{record.event_id}:web_fetch", "1"),
        ("llm_web_search", f"{record.event_id}:web_search", "3"),
    ]


def test_stripe_with_one_meter_for_all_tokens_sends_no_fee_into_it() -> None:
    record = make_record(customer="cus_1", input_tokens=100, output_tokens=20, fees=_FEES)
    with StripeBackend() as backend:
        sink = Stripe(api_key=backend.api_key, base_url=backend.url, split_by_token_type=True)
        assert sink.send([record]).delivered == [record.event_id]
        assert backend.totals() == {"cus_1": {"value": 120, "input": 100, "output": 20}}


def test_solvapay_split_items_carry_each_fee_as_units_of_its_own() -> None:
    record = make_record(input_tokens=100, output_tokens=20, fees=_FEES)
    with SolvaPayBackend() as backend:
        sink = SolvaPay(api_key=backend.api_key, base_url=backend.url, split_by_token_type=True)
        assert sink.send([record]).delivered == [record.event_id]
        events = [e for r in backend.requests for e in r.json()["events"]]
    assert sorted((e["idempotencyKey"], e["units"], e["metadata"]["token_type"]) for e in events) == [
        (f"{record.event_id}:input", 100, "input"),
        (f"{record.event_id}:output", 20, "output"),
        (f"{record.event_id}:web_fetch", 1, "web_fetch"),
        (f"{record.event_id}:web_search", 3, "web_search"),
    ]


def test_open_spanner_sends_fees_to_the_fee_meter_it_creates(open_spanner: OpenSpannerBackend) -> None:
    sink = OpenSpanner(api_key=open_spanner.api_key, base_url=open_spanner.url, fee_meter="ai_tool_calls")
    sink.ensure_meter()
    record = make_record(input_tokens=100, output_tokens=20, fees=_FEES)
    assert sink.send([record]).delivered == [record.event_id]
    items = [i for r in open_spanner.requests if r.path == "/v1/usages/bulk" for i in r.json()]
    fees = {i["idempotency_key"]: (i["meter"], i["quantity"], i["metadata"]["fee"]) for i in items[1:]}
    assert items[0]["meter"] == "ai_tokens" and items[0]["quantity"] == 120
    assert fees == {
        f"{record.event_id}:web_search": ("ai_tool_calls", 3, "web_search"),
        f"{record.event_id}:web_fetch": ("ai_tool_calls", 1, "web_fetch"),
    }
    assert open_spanner.totals("ai_tool_calls") == {"org_1": {"quantity": 4}}


def test_open_spanner_without_a_fee_meter_sends_tokens_only(open_spanner: OpenSpannerBackend) -> None:
    sink = OpenSpanner(api_key=open_spanner.api_key, base_url=open_spanner.url)
    sink.ensure_meter()
    record = make_record(input_tokens=100, output_tokens=20, fees=_FEES)
    assert sink.send([record]).delivered == [record.event_id]
    assert open_spanner.totals() == {"org_1": {"quantity": 120}}


def test_spaire_metadata_counts_each_fee_and_cost_includes_them() -> None:
    record = make_record(input_tokens=100, output_tokens=20, fees=_FEES, cost=Decimal("0.0312"))
    with SpaireBackend() as backend:
        sink = Spaire(api_key=backend.api_key, base_url=backend.url)
        assert sink.send([record]).delivered == [record.event_id]
        [event] = [e for r in backend.requests for e in r.json()["events"]]
    assert (event["metadata"]["fee_web_search"], event["metadata"]["fee_web_fetch"]) == (3, 1)
    assert Decimal(str(event["metadata"]["_cost"]["amount"])) == Decimal("3.12")
