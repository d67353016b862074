"""usagetap.record(): meter a response obtained without a wrapped client."""

from __future__ import annotations

import json
from pathlib import Path

import openai
import pytest

import usagetap
from tests.instrument.conftest import delivered, needs_responses
from usagetap.sinks import Memory
from usagetap.testing import ProviderServer

FIXTURE = Path(__file__).parent.parent / "fixtures" / "openai" / "chat_completion.json"


def test_record_meters_an_sdk_response_and_returns_its_event_id(server: ProviderServer, sink: Memory) -> None:
    bare = openai.OpenAI(base_url=server.openai_url, api_key="sk-test")
    completion = bare.chat.completions.create(model="gpt-4.1", messages=[{"role": "user", "content": "x"}])
    with usagetap.customer("scoped", feature="import"):
        event_id = usagetap.record(completion, customer="explicit", dimensions={"source": "batch-job"})
    [record] = delivered(sink)
    assert record.event_id == event_id
    assert record.customer == "explicit"
    assert record.dimensions == {"feature": "import", "source": "batch-job", "service_tier": "default"}
    assert (record.operation, record.provider, record.model) == ("chat", "openai", "gpt-4.1")
    assert record.input_tokens == server.issued[completion.id].input_tokens


def test_record_takes_an_int_customer_as_its_decimal_string(sink: Memory) -> None:
    usagetap.record(json.loads(FIXTURE.read_text()), provider="openai", customer=4711)
    assert [r.customer for r in delivered(sink)] == ["4711"]


def test_recording_the_same_response_twice_is_deduplicated(sink: Memory) -> None:
    data = json.loads(FIXTURE.read_text())
    first = usagetap.record(data, provider="openai", customer="org_1")
    second = usagetap.record(data, provider="openai", customer="org_1")
    assert first == second
    [record] = delivered(sink)
    assert (record.input_tokens, record.cache_read_tokens, record.output_tokens) == (1117, 1024, 46)


def test_record_refuses_what_it_cannot_meter(sink: Memory) -> None:
    with pytest.raises(TypeError, match=r"response of a provider SDK \(openai, anthropic, google.genai"):
        usagetap.record(object())
    with pytest.raises(TypeError, match="cannot meter"):
        usagetap.record({"object": "list"}, provider="openai")


def test_record_keeps_a_response_with_a_negative_count_as_a_partial_record(sink: Memory) -> None:
    data = json.loads(FIXTURE.read_text())
    data["usage"]["completion_tokens"] = -3
    usagetap.record(data, provider="openai")
    [record] = delivered(sink)
    assert (record.status, record.output_tokens) == ("partial", 0)
    assert record.dimensions["usage_issue"].startswith("output_tokens -3 is not a count")


def test_record_keeps_usage_that_does_not_add_up_as_a_partial_record(sink: Memory) -> None:
    data = json.loads(FIXTURE.read_text())
    data["usage"]["prompt_tokens"] = 10  # fewer than the cached 1024
    usagetap.record(data, provider="openai")
    [record] = delivered(sink)
    assert (record.status, record.input_tokens, record.cache_read_tokens) == ("partial", 10, 10)
    assert record.dimensions["usage_issue"] == "cache_read_tokens 1024 over input_tokens 10, cut to 10"


@needs_responses
def test_record_meters_responses_embeddings_and_completions(server: ProviderServer, sink: Memory) -> None:
    bare = openai.OpenAI(base_url=server.openai_url, api_key="sk-test")
    response = bare.responses.create(model="o4-mini", input="recorded by hand")
    embedding = bare.embeddings.create(model="text-embedding-3-small", input="to embed")
    completion = bare.completions.create(model="gpt-3.5-turbo-instruct", prompt="complete this")
    ids = [usagetap.record(obj, customer="manual") for obj in (response, embedding, completion)]
    assert usagetap.record(response, customer="manual") == ids[0], "the same response, the same event id"
    records = delivered(sink)
    assert [r.event_id for r in records] == ids
    assert [r.operation for r in records] == ["responses", "embeddings", "completions"]
    assert [r.input_tokens for r in records] == [i.input_tokens for i in server.issued.values()]


@needs_responses
def test_record_refuses_a_background_response_that_has_not_finished(
    server: ProviderServer, sink: Memory
) -> None:
    bare = openai.OpenAI(base_url=server.openai_url, api_key="sk-test")
    queued = bare.responses.create(model="o3", input="later", background=True)
    with pytest.raises(TypeError, match="cannot meter"):
        usagetap.record(queued)
    assert delivered(sink) == []
