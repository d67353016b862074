"""LiteLLM through ``litellm.callbacks = [usagetap.integrations.litellm.callback]``, against the loopback
provider (OpenAI chat/embeddings and Anthropic messages wire formats, served by ``usagetap.testing``)."""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Iterator
from typing import Any

import openai
import pytest

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # offline: LiteLLM's bundled price map
litellm = pytest.importorskip("litellm")

from litellm.integrations.custom_logger import CustomLogger  # noqa: E402

import usagetap  # noqa: E402
from tests.integrations.conftest import delivered  # noqa: E402
from usagetap.integrations import litellm as usagetap_litellm  # noqa: E402
from usagetap.integrations._litellm_usage import ESTIMATED  # noqa: E402
from usagetap.sinks import Memory  # noqa: E402
from usagetap.testing import ProviderServer  # noqa: E402


class Reported(CustomLogger):  # type: ignore[misc]
    """Listed after usagetap's callback: once it has seen a call's success, usagetap's has too."""

    def __init__(self) -> None:
        super().__init__()
        self._done = threading.Condition()
        self.count = 0

    def _one(self) -> None:
        with self._done:
            self.count += 1
            self._done.notify_all()

    def log_success_event(self, kwargs: Any, response_obj: Any, start_time: Any, end_time: Any) -> None:
        self._one()

    async def async_log_success_event(
        self, kwargs: Any, response_obj: Any, start_time: Any, end_time: Any
    ) -> None:
        self._one()

    def wait(self, count: int) -> None:
        with self._done:
            assert self._done.wait_for(lambda: self.count >= count, timeout=30), (
                "LiteLLM never reported the call"
            )

    async def await_(self, count: int) -> None:
        """:meth:`wait` without blocking the event loop LiteLLM reports async calls on."""
        await asyncio.to_thread(self.wait, count)


@pytest.fixture
def reported() -> Iterator[Reported]:
    before = list(litellm.callbacks)
    done = Reported()
    litellm.callbacks = [usagetap_litellm.callback, done]
    try:
        yield done
    finally:
        litellm.callbacks = before


HELLO = [{"role": "user", "content": "hello there from litellm"}]


def _openai(server: ProviderServer) -> dict[str, Any]:
    return {"api_base": server.openai_url, "api_key": "sk-test"}


def _anthropic(server: ProviderServer) -> dict[str, Any]:
    return {"api_base": server.anthropic_url, "api_key": "sk-ant-test"}


def test_completion_is_one_record_with_the_tokens_issued(
    server: ProviderServer, sink: Memory, reported: Reported
) -> None:
    with usagetap.customer("org_lite"):
        response = litellm.completion(model="openai/gpt-4.1", messages=HELLO, **_openai(server))
    reported.wait(1)
    (record,) = delivered(sink)
    issued = server.issued[response.id]
    assert (record.provider, record.operation, record.customer) == ("openai", "chat", "org_lite")
    assert (record.input_tokens, record.output_tokens) == (issued.input_tokens, issued.output_tokens)
    assert record.response_id == response.id and record.cost is not None


async def test_acompletion_is_one_record_billed_to_the_scope(
    server: ProviderServer, sink: Memory, reported: Reported
) -> None:
    with usagetap.customer("org_async"):
        response = await litellm.acompletion(model="openai/gpt-4.1", messages=HELLO, **_openai(server))
    await reported.await_(1)
    (record,) = delivered(sink)
    assert (record.customer, record.response_id) == ("org_async", response.id)
    assert record.output_tokens == server.issued[response.id].output_tokens


def test_anthropic_completion_is_recorded_as_anthropic(
    server: ProviderServer, sink: Memory, reported: Reported
) -> None:
    litellm.completion(
        model="anthropic/claude-sonnet-4-5", messages=HELLO, max_tokens=20, **_anthropic(server)
    )
    reported.wait(1)
    (record,) = delivered(sink)
    (issued,) = server.issued.values()
    assert (record.provider, record.operation, record.status) == ("anthropic", "chat", "ok")
    assert (record.input_tokens, record.output_tokens) == (issued.input_tokens, issued.output_tokens)


def test_stream_asking_for_usage_is_exact_and_billed_to_the_callers_scope(
    server: ProviderServer, sink: Memory, reported: Reported
) -> None:
    with usagetap.customer("org_stream"):
        stream = litellm.completion(
            model="openai/gpt-4.1",
            messages=HELLO,
            stream=True,
            stream_options={"include_usage": True},
            **_openai(server),
        )
        for _ in stream:
            pass
    reported.wait(1)
    (record,) = delivered(sink)
    (issued,) = server.issued.values()
    assert (record.customer, record.status) == ("org_stream", "ok")
    assert (record.input_tokens, record.output_tokens) == (issued.input_tokens, issued.output_tokens)


def test_openai_stream_without_usage_is_partial_with_the_estimate_named(
    server: ProviderServer, sink: Memory, reported: Reported
) -> None:
    for _ in litellm.completion(model="openai/gpt-4.1", messages=HELLO, stream=True, **_openai(server)):
        pass
    reported.wait(1)
    (record,) = delivered(sink)
    assert record.status == "partial"
    assert record.dimensions["usage_issue"] == ESTIMATED


async def test_async_anthropic_stream_is_exact(
    server: ProviderServer, sink: Memory, reported: Reported
) -> None:
    stream = await litellm.acompletion(
        model="anthropic/claude-sonnet-4-5", messages=HELLO, max_tokens=20, stream=True, **_anthropic(server)
    )
    async for _ in stream:
        pass
    await reported.await_(1)
    (record,) = delivered(sink)
    (issued,) = server.issued.values()
    assert (record.provider, record.status) == ("anthropic", "ok")
    assert (record.input_tokens, record.output_tokens) == (issued.input_tokens, issued.output_tokens)


def test_embedding_is_one_embeddings_record(server: ProviderServer, sink: Memory, reported: Reported) -> None:
    litellm.embedding(model="openai/text-embedding-3-small", input=["three little words"], **_openai(server))
    reported.wait(1)
    (record,) = delivered(sink)
    (issued,) = server.issued.values()
    assert (record.operation, record.input_tokens, record.output_tokens) == (
        "embeddings",
        issued.input_tokens,
        0,
    )


def _sync_chat(server: ProviderServer) -> None:
    litellm.completion(model="openai/gpt-4.1", messages=HELLO, **_openai(server))


def _sync_stream(server: ProviderServer) -> None:
    for _ in litellm.completion(model="openai/gpt-4.1", messages=HELLO, stream=True, **_openai(server)):
        pass


def _sync_embedding(server: ProviderServer) -> None:
    litellm.embedding(model="openai/text-embedding-3-small", input=["a few words"], **_openai(server))


async def _async_chat(server: ProviderServer) -> None:
    await litellm.acompletion(model="openai/gpt-4.1", messages=HELLO, **_openai(server))


async def _async_stream(server: ProviderServer) -> None:
    stream = await litellm.acompletion(model="openai/gpt-4.1", messages=HELLO, stream=True, **_openai(server))
    async for _ in stream:
        pass


async def _async_embedding(server: ProviderServer) -> None:
    await litellm.aembedding(model="openai/text-embedding-3-small", input=["a few words"], **_openai(server))


@pytest.mark.parametrize(
    "call", [_sync_chat, _sync_stream, _sync_embedding, _async_chat, _async_stream, _async_embedding]
)
async def test_call_seen_by_the_instrumented_sdk_too_is_one_exact_record(
    server: ProviderServer, sink: Memory, reported: Reported, call: Any
) -> None:
    usagetap.instrument()
    with usagetap.track() as run:
        for _ in range(2):
            result = call(server)
            if result is not None:
                await result
    await reported.await_(2)
    records = delivered(sink)
    assert len(records) == run.calls == len(server.issued) == 2
    for record in records:
        assert record.status == "ok"
    assert sum(r.input_tokens for r in records) == server.totals()["input_tokens"]
    assert sum(r.output_tokens for r in records) == server.totals()["output_tokens"]


def test_track_run_totals_equal_the_sum_of_its_records(
    server: ProviderServer, sink: Memory, reported: Reported
) -> None:
    usagetap.instrument()
    with usagetap.track(customer="org_run") as run:
        litellm.completion(model="openai/gpt-4.1", messages=HELLO, **_openai(server))
        litellm.completion(
            model="anthropic/claude-sonnet-4-5", messages=HELLO, max_tokens=20, **_anthropic(server)
        )
        _sync_embedding(server)
    reported.wait(3)
    records = delivered(sink)
    assert len(records) == run.calls == 3
    assert run.input_tokens == sum(r.input_tokens for r in records) == server.totals()["input_tokens"]
    assert run.output_tokens == sum(r.output_tokens for r in records) == server.totals()["output_tokens"]
    assert {r.run_id for r in records} == {run.id}


def test_wrapped_client_passed_to_litellm_is_one_record_with_its_defaults(
    server: ProviderServer, sink: Memory, reported: Reported
) -> None:
    client = usagetap.wrap(
        openai.OpenAI(base_url=server.openai_url, api_key="sk-test"), customer="org_client"
    )
    with usagetap.track() as run:
        litellm.completion(model="openai/gpt-4.1", messages=HELLO, client=client, **_openai(server))
    reported.wait(1)
    (record,) = delivered(sink)
    assert run.calls == 1
    assert (record.customer, record.response_id) == ("org_client", next(iter(server.issued)))


def test_settle_returns_once_litellm_has_reported_every_call(
    server: ProviderServer, sink: Memory, reported: Reported
) -> None:
    with usagetap.customer("org_settle"):
        litellm.completion(
            model="anthropic/claude-sonnet-4-5", messages=HELLO, max_tokens=8, **_anthropic(server)
        )
    assert usagetap_litellm.settle(timeout=30) is True
    (record,) = delivered(sink)
    assert (record.customer, record.response_id is not None) == ("org_settle", True)
