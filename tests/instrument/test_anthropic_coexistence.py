"""usagetap next to the SDK's client middleware and its built-in OpenTelemetry tracing.

Both live inside the client's ``request()``, which usagetap wraps from the
outside: middleware runs once per HTTP attempt, the span covers the whole call.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterator
from typing import Any

import anthropic
import pytest

import usagetap
from tests.instrument.conftest import delivered
from usagetap.sinks import Memory
from usagetap.testing import ProviderServer

MODEL = "claude-sonnet-4-6"
MESSAGES = [{"role": "user", "content": "Coexist, please."}]

HAS_MIDDLEWARE = hasattr(anthropic.Anthropic, "with_middleware")
HAS_TRACING = "open_telemetry" in inspect.signature(anthropic.Anthropic).parameters

needs_middleware = pytest.mark.skipif(not HAS_MIDDLEWARE, reason="client middleware is not in this anthropic")
needs_tracing = pytest.mark.skipif(not HAS_TRACING, reason="OpenTelemetry tracing is not in this anthropic")


class Counting:
    """A sync and async middleware that counts the attempts it sees and can retry once on a 5xx."""

    def __init__(self, retry_5xx: bool = False) -> None:
        self.attempts = 0
        self.retry_5xx = retry_5xx

    def handle(self, request: Any, call_next: Any) -> Any:
        self.attempts += 1
        response = call_next(request)
        if self.retry_5xx and response.status_code >= 500:
            self.attempts += 1
            response = call_next(request)
        return response

    async def handle_async(self, request: Any, call_next: Any) -> Any:
        self.attempts += 1
        return await call_next(request)


def _middleware(counting: Counting) -> Any:
    base = anthropic.Middleware

    class Adapter(base):  # type: ignore[misc, valid-type]
        def handle(self, request: Any, call_next: Any) -> Any:
            return counting.handle(request, call_next)

        async def handle_async(self, request: Any, call_next: Any) -> Any:
            return await counting.handle_async(request, call_next)

    return Adapter()


def _consume_all(client: Any) -> None:
    client.messages.create(model=MODEL, max_tokens=8, messages=MESSAGES)
    for _ in client.messages.create(model=MODEL, max_tokens=8, messages=MESSAGES, stream=True):
        pass
    with client.messages.stream(model=MODEL, max_tokens=8, messages=MESSAGES) as stream:
        stream.get_final_message()


@needs_middleware
def test_middleware_sees_each_attempt_and_usagetap_records_each_call_once(
    claude_server: ProviderServer, sink: Memory
) -> None:
    counting = Counting()
    client = usagetap.wrap(
        anthropic.Anthropic(
            base_url=claude_server.anthropic_url,
            api_key="k",
            max_retries=0,
            middleware=[_middleware(counting)],
        )
    )
    with usagetap.customer("org_mw"):
        _consume_all(client)
    assert counting.attempts == 3
    records = delivered(sink)
    assert [(r.customer, r.status) for r in records] == [("org_mw", "ok")] * 3
    assert sorted(r.response_id for r in records) == sorted(claude_server.issued)  # type: ignore[type-var]


@needs_middleware
def test_with_middleware_returns_a_metered_client(claude: anthropic.Anthropic, sink: Memory) -> None:
    counting = Counting()
    derived = claude.with_middleware(_middleware(counting))
    assert type(derived) is anthropic.Anthropic and derived is not claude
    with usagetap.customer("org_derived"):
        _consume_all(derived)
    assert counting.attempts == 3
    assert [r.customer for r in delivered(sink)] == ["org_derived"] * 3


@needs_middleware
def test_a_middleware_retry_is_one_billed_call(claude_server: ProviderServer, sink: Memory) -> None:
    counting = Counting(retry_5xx=True)
    client = usagetap.wrap(
        anthropic.Anthropic(
            base_url=claude_server.anthropic_url,
            api_key="k",
            max_retries=0,
            middleware=[_middleware(counting)],
        )
    )
    claude_server.fail_next(500)
    message = client.messages.create(model=MODEL, max_tokens=8, messages=MESSAGES)
    assert counting.attempts == 2
    [record] = delivered(sink)
    assert record.response_id == message.id


@needs_middleware
def test_a_middleware_answering_from_its_cache_is_not_billed_twice(
    claude_server: ProviderServer, sink: Memory
) -> None:
    cache: dict[str, Any] = {}

    def caching(request: Any, call_next: Any) -> Any:
        if "hit" in cache:
            return cache["hit"]
        response = call_next(request)
        cache["hit"] = response.parse()
        return response

    client = usagetap.wrap(
        anthropic.Anthropic(
            base_url=claude_server.anthropic_url, api_key="k", max_retries=0, middleware=[caching]
        )
    )
    first = client.messages.create(model=MODEL, max_tokens=8, messages=MESSAGES)
    second = client.messages.create(model=MODEL, max_tokens=8, messages=MESSAGES)
    assert second.id == first.id and len(claude_server.issued) == 1
    [record] = delivered(sink)
    assert record.response_id == first.id


@needs_middleware
async def test_async_middleware(claude_server: ProviderServer, sink: Memory) -> None:
    counting = Counting()
    client = usagetap.wrap(
        anthropic.AsyncAnthropic(
            base_url=claude_server.anthropic_url,
            api_key="k",
            max_retries=0,
            middleware=[_middleware(counting)],
        )
    )
    await client.messages.create(model=MODEL, max_tokens=8, messages=MESSAGES)
    async with client.messages.stream(model=MODEL, max_tokens=8, messages=MESSAGES) as stream:
        await stream.until_done()
    assert counting.attempts == 2
    assert [r.status for r in delivered(sink)] == ["ok", "ok"]


# -- OpenTelemetry -------------------------------------------------------------------


@pytest.fixture
def spans() -> Iterator[Any]:
    sdk = pytest.importorskip("opentelemetry.sdk.trace")
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    exporter = InMemorySpanExporter()
    provider = sdk.TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    exporter.provider = provider  # type: ignore[attr-defined]
    yield exporter
    provider.shutdown()


def _traced(cls: Any, server: ProviderServer, spans: Any, **extra: Any) -> Any:
    return usagetap.wrap(
        cls(
            base_url=server.anthropic_url,
            api_key="k",
            max_retries=0,
            open_telemetry={"tracer_provider": spans.provider, "traces": True},
            **extra,
        )
    )


@needs_tracing
def test_traced_calls_are_recorded_once_and_every_span_ends(
    claude_server: ProviderServer, sink: Memory, spans: Any
) -> None:
    client = _traced(anthropic.Anthropic, claude_server, spans)
    with usagetap.customer("org_otel"):
        _consume_all(client)
        stream = client.messages.create(model=MODEL, max_tokens=8, messages=MESSAGES, stream=True)
        for _ in stream:
            break
        stream.close()
    records = delivered(sink)
    assert [r.status for r in records] == ["ok", "ok", "ok", "partial"]
    finished = spans.get_finished_spans()
    assert len(finished) == 4, [s.name for s in finished]
    complete = [s for s in finished if "gen_ai.usage.output_tokens" in (s.attributes or {})]
    by_id = {r.response_id: r for r in records}
    for span in complete:
        record = by_id[span.attributes["gen_ai.response.id"]]
        assert span.attributes["gen_ai.usage.input_tokens"] == record.input_tokens
        assert span.attributes["gen_ai.usage.output_tokens"] == record.output_tokens
    assert len(complete) >= 3


@needs_tracing
@needs_middleware
def test_tracing_middleware_and_usagetap_together(
    claude_server: ProviderServer, sink: Memory, spans: Any
) -> None:
    counting = Counting()
    client = _traced(anthropic.Anthropic, claude_server, spans, middleware=[_middleware(counting)])
    _consume_all(client)
    claude_server.stream_error_after = 4
    with pytest.raises(anthropic.APIStatusError):
        for _ in client.messages.create(model=MODEL, max_tokens=8, messages=MESSAGES, stream=True):
            pass
    assert counting.attempts == 4
    assert [r.status for r in delivered(sink)] == ["ok", "ok", "ok", "partial"]
    finished = spans.get_finished_spans()
    assert len(finished) == 4
    assert finished[-1].status.is_ok is False


@needs_tracing
async def test_async_traced_calls(claude_server: ProviderServer, sink: Memory, spans: Any) -> None:
    client = _traced(anthropic.AsyncAnthropic, claude_server, spans)
    await client.messages.create(model=MODEL, max_tokens=8, messages=MESSAGES)
    stream = await client.messages.create(model=MODEL, max_tokens=8, messages=MESSAGES, stream=True)
    async for _ in stream:
        pass
    assert len(delivered(sink)) == 2
    assert len(spans.get_finished_spans()) == 2
