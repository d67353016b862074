"""OpenTelemetry sink through a real SDK MeterProvider with an in-memory reader."""

from __future__ import annotations

from collections import Counter
from typing import Any

import openai
import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

import usagetap
from tests.helpers import make_record
from tests.sinks.workload import run_workload
from usagetap.sinks import OpenTelemetry
from usagetap.testing import ProviderServer


@pytest.fixture
def reader() -> InMemoryMetricReader:
    return InMemoryMetricReader()


@pytest.fixture
def provider(reader: InMemoryMetricReader) -> MeterProvider:
    return MeterProvider(metric_readers=[reader])


def points(reader: InMemoryMetricReader) -> list[tuple[dict[str, Any], Any]]:
    data = reader.get_metrics_data()
    found = []
    for resource in data.resource_metrics if data else []:
        for scope in resource.scope_metrics:
            for metric in scope.metrics:
                if metric.name == "gen_ai.client.token.usage":
                    assert metric.unit == "{token}"
                    found += [(dict(p.attributes), p) for p in metric.data.data_points]
    return found


def sums(reader: InMemoryMetricReader, attribute: str) -> Counter[tuple[str, str]]:
    out: Counter[tuple[str, str]] = Counter()
    for attributes, point in points(reader):
        out[(attributes[attribute], attributes["gen_ai.token.type"])] += int(point.sum)
    return out


def test_each_record_adds_input_and_output_measurements(
    provider: MeterProvider, reader: InMemoryMetricReader
) -> None:
    sink = OpenTelemetry(meter_provider=provider)
    record = make_record(input_tokens=300, cache_read_tokens=100, output_tokens=40, request_model="gpt-4.1")
    assert sink.send([record]).delivered == [record.event_id]
    found = {a["gen_ai.token.type"]: (a, p) for a, p in points(reader)}
    assert set(found) == {"input", "output"}
    attributes, point = found["input"]
    assert attributes == {
        "gen_ai.token.type": "input",
        "gen_ai.provider.name": "openai",
        "gen_ai.operation.name": "chat",
        "gen_ai.request.model": "gpt-4.1",
        "gen_ai.response.model": "gpt-4.1",
    }
    assert (point.count, point.sum) == (1, 300)
    assert found["output"][1].sum == 40
    assert 4096 in found["input"][1].explicit_bounds  # the convention's advised buckets


def test_provider_and_operation_names_follow_the_convention(
    provider: MeterProvider, reader: InMemoryMetricReader
) -> None:
    sink = OpenTelemetry(meter_provider=provider)
    sink.send(
        [
            make_record(provider="azure", operation="completions"),
            make_record(provider="bedrock", operation="messages"),
            make_record(provider="api.groq.com", operation="embeddings", output_tokens=0),
            make_record(provider="google", operation="embeddings", output_tokens=0),
            make_record(provider="mistral", operation="embeddings", output_tokens=0),
            make_record(provider="x-ai", operation="embeddings", output_tokens=0),
            make_record(provider="groq", operation="embeddings", output_tokens=0),
        ]
    )
    seen = {
        (a["gen_ai.provider.name"], a["gen_ai.operation.name"], a["gen_ai.token.type"])
        for a, _ in points(reader)
    }
    assert seen == {
        ("azure.ai.openai", "text_completion", "input"),
        ("azure.ai.openai", "text_completion", "output"),
        ("aws.bedrock", "chat", "input"),
        ("aws.bedrock", "chat", "output"),
        ("api.groq.com", "embeddings", "input"),
        ("gcp.gemini", "embeddings", "input"),
        ("mistral_ai", "embeddings", "input"),
        ("x_ai", "embeddings", "input"),
        ("groq", "embeddings", "input"),
    }


def test_a_replayed_event_is_not_measured_twice(
    provider: MeterProvider, reader: InMemoryMetricReader
) -> None:
    sink = OpenTelemetry(meter_provider=provider)
    record = make_record()
    sink.send([record])
    again = sink.send([record])
    assert again.delivered == [record.event_id] and again.duplicates == 1
    assert sum(p.sum for a, p in points(reader) if a["gen_ai.token.type"] == "input") == 100


def test_the_customer_attribute_is_opt_in(provider: MeterProvider, reader: InMemoryMetricReader) -> None:
    OpenTelemetry(meter_provider=provider, customer_attribute="app.customer.id").send([make_record()])
    assert {a.get("app.customer.id") for a, _ in points(reader)} == {"org_1"}


def test_a_workload_through_the_pipeline_is_measured_per_model(
    server: ProviderServer, provider: MeterProvider, reader: InMemoryMetricReader
) -> None:
    usagetap.configure(sink=OpenTelemetry(meter_provider=provider), flush_interval=0.05)
    run_workload(server, ["org_a", "org_b"])
    assert usagetap.flush(timeout=10).pending == 0
    expected: Counter[tuple[str, str]] = Counter()
    for usage in server.issued.values():
        expected[(usage.model, "input")] += usage.input_tokens
        expected[(usage.model, "output")] += usage.output_tokens
    assert sums(reader, "gen_ai.response.model") == expected


def test_usagetap_sink_otel_measures_through_the_global_meter_provider(
    server: ProviderServer,
    provider: MeterProvider,
    reader: InMemoryMetricReader,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from opentelemetry import metrics

    monkeypatch.setattr(metrics, "get_meter_provider", lambda: provider)
    monkeypatch.setenv("USAGETAP_SINK", "otel")
    monkeypatch.setenv("USAGETAP_CUSTOMER_ATTRIBUTE", "app.customer")
    client = usagetap.wrap(openai.OpenAI(base_url=server.openai_url, api_key="k", max_retries=0))
    with usagetap.customer("org_3"):
        client.chat.completions.create(model="gpt-4.1", messages=[{"role": "user", "content": "hi"}])
    client.close()
    assert usagetap.flush(timeout=10).pending == 0
    (issued,) = server.issued.values()
    assert sums(reader, "app.customer") == Counter(
        {("org_3", "input"): issued.input_tokens, ("org_3", "output"): issued.output_tokens}
    )
