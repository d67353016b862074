"""Open Spanner sink against a loopback server that validates requests with the OpenAPI contract."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import usagetap
from tests.helpers import make_record
from tests.sinks.contract import drive
from tests.sinks.workload import run_workload
from usagetap import ConfigurationError, UsagetapError
from usagetap.delivery import Pipeline, Settings
from usagetap.sinks import OpenSpanner
from usagetap.testing import ProviderServer
from usagetap.testing.backends import OpenSpannerBackend
from usagetap.testing.backends._base import Answer, Request
from usagetap.testing.backends.open_spanner import load_contract


@pytest.fixture
def backend() -> Iterator[OpenSpannerBackend]:
    with OpenSpannerBackend() as server:
        yield server
        assert server.contract_violations == []


def make_sink(backend: OpenSpannerBackend, **options: object) -> OpenSpanner:
    sink = OpenSpanner(api_key=backend.api_key, base_url=backend.url, **options)  # type: ignore[arg-type]
    sink.ensure_meter()
    return sink


def sent_items(backend: OpenSpannerBackend) -> list[dict]:
    return [i for r in backend.requests if r.path == "/v1/usages/bulk" for i in r.json()]


def test_the_packaged_contract_is_the_open_spanner_api() -> None:
    contract = load_contract()
    assert contract["info"]["title"] == "Open Spanner API"
    assert "/v1/usages/bulk" in contract["paths"] and "/v1/meters" in contract["paths"]


def test_the_backend_refuses_requests_that_break_the_openapi_schema(backend: OpenSpannerBackend) -> None:
    import httpx

    headers = {"Authorization": f"Bearer {backend.api_key}"}
    answer = httpx.post(f"{backend.url}/v1/usages/bulk", json=[{"quantity": "12"}], headers=headers)
    assert answer.status_code == 400
    assert (
        answer.json()["error"]["code"] == "invalid_input" and "quantity" in answer.json()["error"]["message"]
    )
    assert httpx.post(f"{backend.url}/v1/usages/bulk", json={"items": []}, headers=headers).status_code == 400


def test_ensure_meter_creates_the_meter_with_typed_dimensions_once(backend: OpenSpannerBackend) -> None:
    sink = OpenSpanner(api_key=backend.api_key, base_url=backend.url, dimensions=["feature"])
    meter = sink.ensure_meter()
    assert meter["name"] == "ai_tokens" and meter["unit"] == "token" and meter["aggregation"] == "sum"
    types = {d["name"]: (d["type"], d["required"]) for d in meter["dimensions"]}
    assert types == {
        "model": ("string", True),
        "provider": ("string", True),
        "operation": ("string", True),
        "cached": ("boolean", False),
        "token_type": ("string", False),
        "feature": ("string", False),
    }
    assert sink.ensure_meter()["id"] == meter["id"]
    assert len(backend.meters) == 1


def test_ensure_meter_reports_a_refused_key_as_a_configuration_error(backend: OpenSpannerBackend) -> None:
    secret = "osp_live_wrong_key_000111"
    with pytest.raises(ConfigurationError, match="401") as caught:
        OpenSpanner(api_key=secret, base_url=backend.url).ensure_meter()
    assert secret not in str(caught.value)
    backend.fail_next(500)
    with pytest.raises(UsagetapError, match="500"):
        OpenSpanner(api_key=backend.api_key, base_url=backend.url).ensure_meter()


def test_one_item_per_record_with_the_ai_token_dimensions(backend: OpenSpannerBackend) -> None:
    sink = make_sink(backend)
    plain = make_record(customer="org_1", input_tokens=100, output_tokens=20)
    cached = make_record(customer="org_2", input_tokens=200, cache_read_tokens=128, output_tokens=5)
    outcomes = sink.send([plain, cached])
    assert outcomes.delivered == [plain.event_id, cached.event_id]
    first, second = sent_items(backend)
    assert first == {
        "subject": "org_1",
        "meter": "ai_tokens",
        "quantity": 120,
        "idempotency_key": plain.event_id,
        "timestamp": first["timestamp"],
        "metadata": {"model": "gpt-4.1", "provider": "openai", "operation": "chat", "cached": False},
    }
    assert first["timestamp"].endswith("Z")
    assert second["metadata"]["cached"] is True and second["quantity"] == 205
    assert backend.totals() == {"org_1": {"quantity": 120}, "org_2": {"quantity": 205}}


def test_split_by_token_type_sends_one_item_per_type_summing_to_the_total(
    backend: OpenSpannerBackend,
) -> None:
    sink = make_sink(backend, split_by_token_type=True)
    record = make_record(input_tokens=300, cache_read_tokens=128, cache_write_tokens=32, output_tokens=40)
    embedding = make_record(customer="org_2", operation="embeddings", input_tokens=50, output_tokens=0)
    assert sink.send([record, embedding]).delivered == [record.event_id, embedding.event_id]
    items = {i["idempotency_key"]: i for i in sent_items(backend)}
    assert {k: (v["metadata"]["token_type"], v["quantity"]) for k, v in items.items()} == {
        f"{record.event_id}:input": ("input", 140),
        f"{record.event_id}:cache_read": ("cache_read", 128),
        f"{record.event_id}:cache_write": ("cache_write", 32),
        f"{record.event_id}:output": ("output", 40),
        f"{embedding.event_id}:input": ("input", 50),
    }
    assert backend.totals()["org_1"] == {
        "quantity": 340,
        "input": 140,
        "cache_read": 128,
        "cache_write": 32,
        "output": 40,
    }
    assert sink.max_batch * 4 <= 1000


def test_only_listed_dimensions_are_sent_since_the_meter_rejects_unknown_keys(
    backend: OpenSpannerBackend,
) -> None:
    sink = make_sink(backend, dimensions=["feature", "tier"])
    record = make_record(dimensions={"feature": "chat", "tier": 3, "secret_sauce": "x"})
    without = make_record(dimensions={})
    assert sink.send([record, without]).delivered == [record.event_id, without.event_id]
    first, second = sent_items(backend)
    assert first["metadata"]["feature"] == "chat" and first["metadata"]["tier"] == "3"
    assert "secret_sauce" not in first["metadata"]
    assert "feature" not in second["metadata"]


def test_a_missing_meter_pauses_delivery_instead_of_dead_lettering(backend: OpenSpannerBackend) -> None:
    sink = OpenSpanner(api_key=backend.api_key, base_url=backend.url, meter="not_created")
    records = [make_record(), make_record()]
    outcomes = sink.send(records)
    assert outcomes.halt is not None and "not_created" in outcomes.halt and "ensure_meter" in outcomes.halt
    assert outcomes.retry == [r.event_id for r in records] and not outcomes.dead
    sink.ensure_meter()
    assert sink.send(records).delivered == [r.event_id for r in records]


def test_an_event_naming_a_missing_meter_is_dead_lettered_and_the_others_delivered(
    backend: OpenSpannerBackend,
) -> None:
    sink = make_sink(backend)
    good = [make_record(), make_record()]
    lost = make_record(dimensions={"meter": "image_tokens"})
    outcomes = sink.send([good[0], lost, good[1]])
    assert outcomes.halt is None and not outcomes.retry
    assert outcomes.delivered == [good[0].event_id, good[1].event_id]
    assert outcomes.dead == {
        lost.event_id: "open_spanner: not_found: meter 'image_tokens' (named by the event's 'meter' "
        "dimension) does not exist: not found"
    }


def test_per_item_failures_dead_letter_only_their_event(backend: OpenSpannerBackend) -> None:
    sink = make_sink(backend, split_by_token_type=True)
    backend.reject(lambda item: "output refused" if item["subject"] == "org_bad" else None)
    good = [make_record(), make_record(customer="org_2")]
    bad = make_record(customer="org_bad")
    outcomes = sink.send([good[0], bad, good[1]])
    assert outcomes.delivered == [good[0].event_id, good[1].event_id]
    assert outcomes.dead == {bad.event_id: "open_spanner: invalid_input: output refused"}
    assert set(backend.totals()) == {"org_1", "org_2"}


def test_an_event_is_delivered_only_when_all_its_items_are(backend: OpenSpannerBackend) -> None:
    sink = make_sink(backend, split_by_token_type=True)
    backend.reject(lambda item: "no output today" if item["idempotency_key"].endswith(":output") else None)
    record = make_record(input_tokens=100, output_tokens=20)
    outcomes = sink.send([record])
    assert not outcomes.delivered and "no output today" in outcomes.dead[record.event_id]
    assert backend.totals()["org_1"] == {
        "quantity": 100,
        "input": 100,
    }  # the accepted part stays, deduped on replay


def test_everything_failing_is_a_400_bulk_answer_read_per_item(backend: OpenSpannerBackend) -> None:
    sink = make_sink(backend)
    backend.reject(lambda item: "all refused")
    records = [make_record(), make_record()]
    outcomes = sink.send(records)
    assert set(outcomes.dead) == {r.event_id for r in records} and not outcomes.split


def test_invalid_subjects_are_dead_lettered_before_sending(backend: OpenSpannerBackend) -> None:
    sink = make_sink(backend)
    bad = [make_record(customer="has space"), make_record(customer="x" * 129), make_record(customer=None)]
    good = make_record()
    outcomes = sink.send([*bad, good])
    assert outcomes.delivered == [good.event_id]
    assert outcomes.dead[bad[2].event_id] == "no customer"
    assert all("not a valid Open Spanner subject" in outcomes.dead[r.event_id] for r in bad[:2])
    assert [i["subject"] for i in sent_items(backend)] == ["org_1"]


def test_zero_token_records_have_nothing_to_meter_and_are_delivered(backend: OpenSpannerBackend) -> None:
    sink = make_sink(backend)
    empty = make_record(input_tokens=0, output_tokens=0, status="partial")
    assert sink.send([empty]).delivered == [empty.event_id]
    assert sent_items(backend) == []


def test_duplicates_resent_are_delivered_and_counted(backend: OpenSpannerBackend) -> None:
    sink = make_sink(backend, split_by_token_type=True)
    records = [make_record() for _ in range(3)]
    sink.send(records)
    again = sink.send(records)
    assert again.delivered == [r.event_id for r in records] and again.duplicates == 3
    assert backend.totals()["org_1"]["quantity"] == 360


def test_transient_failures_retry_and_auth_failures_halt(backend: OpenSpannerBackend) -> None:
    sink = make_sink(backend)
    records = [make_record()]
    backend.rate_limit_next(retry_after=3)
    assert sink.send(records).retry_after == 3.0
    backend.fail_next(500)
    assert sink.send(records).retry == [records[0].event_id]
    backend.drop_next()
    assert sink.send(records).retry == [records[0].event_id]
    backend.fail_next(401)
    assert sink.send(records).halt
    backend.lose_response_next()
    assert sink.send(records).retry == [records[0].event_id]
    final = sink.send(records)
    assert final.delivered == [records[0].event_id] and final.duplicates == 1


def test_more_than_a_thousand_items_split_by_413(backend: OpenSpannerBackend) -> None:
    sink = make_sink(backend)
    backend.fail_next(413)
    records = [make_record() for _ in range(4)]
    assert sink.send(records).split
    assert sorted(drive(sink, records).delivered) == sorted(r.event_id for r in records)


@pytest.mark.parametrize("split", [False, True])
def test_a_mixed_workload_through_the_pipeline_with_faults_lands_exactly_once(
    server: ProviderServer, backend: OpenSpannerBackend, split: bool
) -> None:
    usagetap.configure(sink=make_sink(backend, split_by_token_type=split), flush_interval=0.05)
    backend.fail_next(503)
    backend.rate_limit_next(retry_after=1)
    backend.lose_response_next()
    backend.drop_next()
    issued = run_workload(server, ["org_a", "org_b", "org_c"])
    assert usagetap.flush(timeout=30).pending == 0
    totals = backend.totals()
    assert set(totals) == set(issued)
    for customer, expected in issued.items():
        row = totals[customer]
        assert row["quantity"] == expected["input_tokens"] + expected["output_tokens"]
        if split:
            assert row["input"] == expected["input_tokens"] - expected["cache_read_tokens"]
            assert row["cache_read"] == expected["cache_read_tokens"] > 0
            assert row["output"] == expected["output_tokens"]
    if not split:
        assert len(backend.events) == 9


class HoldsFirstBulk(OpenSpannerBackend):
    """Holds its first bulk request until ``release`` is set; answers the others at once."""

    def __init__(self) -> None:
        super().__init__()
        self.release = threading.Event()
        self.held: list[dict] = []

    def handle(self, request: Request) -> Answer:
        if request.path == "/v1/usages/bulk":
            with self._lock:
                first = not self.held
                if first:
                    self.held.extend(request.json())
            if first:
                self.release.wait(30)
        return super().handle(request)


def test_one_slow_answer_does_not_hold_up_the_other_batches(tmp_path: Path) -> None:
    with HoldsFirstBulk() as backend:
        pipeline = Pipeline(
            make_sink(backend),
            Settings(batch_size=10, flush_interval=0.01, spool_path=str(tmp_path / "spool.db")),
        )
        records = [make_record() for _ in range(40)]
        for record in records:
            pipeline.submit(record)
        deadline = time.monotonic() + 10
        while not (backend.held and len(backend.events) == 40 - len(backend.held)):
            if time.monotonic() > deadline:
                break
            time.sleep(0.01)
        assert not backend.release.is_set() and len(backend.events) == 40 - len(backend.held) > 0
        backend.release.set()
        assert pipeline.flush(10.0).pending == 0
        assert sorted(backend.events) == sorted(r.event_id for r in records)
        pipeline.shutdown()
        assert backend.contract_violations == []
