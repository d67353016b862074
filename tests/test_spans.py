"""Span attributes: a metered call's usage on the OpenTelemetry span current when it ends."""

from __future__ import annotations

import asyncio
import sys
import threading
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import anthropic
import openai
import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import usagetap
from usagetap import _spans
from usagetap.sinks import Memory
from usagetap.testing import ProviderServer


@pytest.fixture
def exporter() -> InMemorySpanExporter:
    return InMemorySpanExporter()


@pytest.fixture
def tracer(exporter: InMemorySpanExporter) -> Iterator[trace.Tracer]:
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    yield provider.get_tracer("app")
    provider.shutdown()


@pytest.fixture
def client(server: ProviderServer) -> Iterator[openai.OpenAI]:
    with usagetap.wrap(openai.OpenAI(base_url=server.openai_url, api_key="k", max_retries=0)) as c:
        yield c


def _span(exporter: InMemorySpanExporter, name: str) -> ReadableSpan:
    return next(s for s in exporter.get_finished_spans() if s.name == name)


def _usage(span: ReadableSpan) -> dict[str, Any]:
    return {k: v for k, v in (span.attributes or {}).items() if k.startswith(("gen_ai.", "usagetap."))}


def test_a_call_in_a_recording_span_puts_its_usage_on_the_span(
    client: openai.OpenAI, sink: Memory, tracer: trace.Tracer, exporter: InMemorySpanExporter
) -> None:
    with tracer.start_as_current_span("answer"), usagetap.customer("org_7"):
        client.chat.completions.create(model="gpt-4.1", messages=[{"role": "user", "content": "hi"}])
    usagetap.flush()
    (record,) = sink.records
    assert record.cost is not None
    assert _usage(_span(exporter, "answer")) == {
        "gen_ai.provider.name": "openai",
        "gen_ai.request.model": "gpt-4.1",
        "gen_ai.response.model": record.model,
        "gen_ai.usage.input_tokens": record.input_tokens,
        "gen_ai.usage.output_tokens": record.output_tokens,
        "gen_ai.usage.cache_read.input_tokens": record.cache_read_tokens,
        "gen_ai.usage.cache_creation.input_tokens": record.cache_write_tokens,
        "usagetap.customer": "org_7",
        "usagetap.cost": float(record.cost),
        "usagetap.event_id": record.event_id,
        "usagetap.status": "ok",
    }


def test_a_stream_puts_its_usage_on_the_span_current_where_it_ends(
    client: openai.OpenAI, sink: Memory, tracer: trace.Tracer, exporter: InMemorySpanExporter
) -> None:
    with tracer.start_as_current_span("outer"):
        stream = client.chat.completions.create(
            model="gpt-4.1-mini", messages=[{"role": "user", "content": "hi"}], stream=True
        )
        with tracer.start_as_current_span("read"):
            for _ in stream:
                pass
    usagetap.flush()
    (record,) = sink.records
    assert _usage(_span(exporter, "read"))["gen_ai.usage.output_tokens"] == record.output_tokens > 0
    assert _usage(_span(exporter, "outer")) == {}


def test_an_async_call_puts_its_usage_on_its_task_s_span(
    server: ProviderServer, sink: Memory, tracer: trace.Tracer, exporter: InMemorySpanExporter
) -> None:
    async def main() -> None:
        client = usagetap.wrap(openai.AsyncOpenAI(base_url=server.openai_url, api_key="k", max_retries=0))

        async def one(name: str, customer: str) -> None:
            with tracer.start_as_current_span(name), usagetap.customer(customer):
                await client.chat.completions.create(
                    model="o4-mini", messages=[{"role": "user", "content": "x"}]
                )

        await asyncio.gather(one("a", "org_a"), one("b", "org_b"))
        await client.close()

    asyncio.run(main())
    assert (
        _usage(_span(exporter, "a"))["usagetap.customer"],
        _usage(_span(exporter, "b"))["usagetap.customer"],
    ) == (
        "org_a",
        "org_b",
    )


def test_an_anthropic_call_reports_its_cache_reads_on_the_span(
    sink: Memory, tracer: trace.Tracer, exporter: InMemorySpanExporter
) -> None:
    system: Any = [{"type": "text", "text": "policy " * 400, "cache_control": {"type": "ephemeral"}}]
    with ProviderServer(impersonate="anthropic") as server:
        client = usagetap.wrap(anthropic.Anthropic(base_url=server.anthropic_url, api_key="k", max_retries=0))
        for name in ("first", "second"):
            with tracer.start_as_current_span(name):
                client.messages.create(
                    model="claude-haiku-4-5",
                    max_tokens=20,
                    system=system,
                    messages=[{"role": "user", "content": "q"}],
                )
        client.close()
    second = _usage(_span(exporter, "second"))
    assert second["gen_ai.provider.name"] == "anthropic"
    assert second["gen_ai.usage.cache_read.input_tokens"] > 0


def test_a_manual_record_in_a_span_puts_its_cost_on_the_span(
    sink: Memory, tracer: trace.Tracer, exporter: InMemorySpanExporter
) -> None:
    with tracer.start_as_current_span("manual"):
        usagetap.record(
            provider="openai", model="gpt-4.1", input_tokens=1000, output_tokens=100, customer="org_9"
        )
    usagetap.flush()
    (record,) = sink.records
    attributes = _usage(_span(exporter, "manual"))
    assert attributes["usagetap.cost"] == float(record.cost or Decimal(-1)) > 0
    assert (attributes["gen_ai.usage.input_tokens"], attributes["usagetap.customer"]) == (1000, "org_9")


def test_outside_a_recording_span_the_record_is_not_built_on_the_caller_s_thread(
    client: openai.OpenAI, sink: Memory, monkeypatch: pytest.MonkeyPatch
) -> None:
    builders: list[str] = []
    record_of = _spans.record_of

    def spy(capture: Any) -> Any:
        builders.append(threading.current_thread().name)
        return record_of(capture)

    monkeypatch.setattr(_spans, "record_of", spy)
    client.chat.completions.create(model="gpt-4.1", messages=[{"role": "user", "content": "hi"}])
    with trace.NoOpTracer().start_as_current_span("not recording"):
        client.chat.completions.create(model="gpt-4.1", messages=[{"role": "user", "content": "hi"}])
    usagetap.flush()
    assert len(sink.records) == 2 and builders == []


def test_without_opentelemetry_loaded_no_span_is_looked_up(
    client: openai.OpenAI, sink: Memory, monkeypatch: pytest.MonkeyPatch
) -> None:
    looked: list[int] = []
    monkeypatch.setattr(trace, "get_current_span", lambda *a: looked.append(1) or trace.INVALID_SPAN)
    client.chat.completions.create(model="gpt-4.1", messages=[{"role": "user", "content": "hi"}])
    assert looked == [1]  # loaded: the current span is looked up
    monkeypatch.delitem(sys.modules, "opentelemetry.trace")
    client.chat.completions.create(model="gpt-4.1", messages=[{"role": "user", "content": "hi"}])
    usagetap.flush()
    assert len(sink.records) == 2 and looked == [1]


def test_with_the_opentelemetry_api_alone_no_span_is_looked_up(
    client: openai.OpenAI, sink: Memory, monkeypatch: pytest.MonkeyPatch
) -> None:
    looked: list[int] = []
    monkeypatch.setattr(trace, "get_current_span", lambda *a: looked.append(1) or trace.INVALID_SPAN)
    monkeypatch.delitem(sys.modules, "opentelemetry.sdk.trace")
    monkeypatch.setattr(trace, "_TRACER_PROVIDER", None)
    client.chat.completions.create(model="gpt-4.1", messages=[{"role": "user", "content": "hi"}])
    assert looked == []  # no SDK, no provider: nothing can record
    monkeypatch.setattr(trace, "_TRACER_PROVIDER", object())  # a provider set (another vendor's, say)
    client.chat.completions.create(model="gpt-4.1", messages=[{"role": "user", "content": "hi"}])
    usagetap.flush()
    assert len(sink.records) == 2 and looked == [1]
