"""Streams that do not end normally: broken off, closed unread, dropped unread: each one partial record.

The server writes one SSE frame at a time (``stream_delay``), so a caller who stops early has not
received the final chunk, the one with the usage.
"""

from __future__ import annotations

import asyncio
import gc
from typing import Any

import pytest

import usagetap
from tests.instrument.conftest import delivered
from usagetap.sinks import Memory
from usagetap.testing import ProviderServer

from .conftest import MESSAGES, aclose, close


@pytest.fixture
def slow(server: ProviderServer) -> ProviderServer:
    server.stream_delay = 0.01
    return server


def test_a_stream_broken_off_before_its_usage_is_one_partial_record(
    slow: ProviderServer, mistral: Any, sink: Memory
) -> None:
    stream = mistral.chat.stream(model="mistral-small-latest", messages=MESSAGES)
    first = next(iter(stream))
    close(stream)
    [record] = delivered(sink)
    assert (record.status, record.response_id, record.model) == (
        "partial",
        first.data.id,
        "mistral-small-latest",
    )
    assert slow.issued[first.data.id].output_tokens == 16


def test_a_stream_closed_unread_is_one_partial_record(
    slow: ProviderServer, mistral: Any, sink: Memory
) -> None:
    close(mistral.chat.stream(model="mistral-small-latest", messages=MESSAGES))
    [record] = delivered(sink)
    assert (record.status, record.operation, record.request_model) == (
        "partial",
        "chat",
        "mistral-small-latest",
    )
    assert len(slow.issued) == 1


def test_a_stream_dropped_unread_is_one_partial_record(
    slow: ProviderServer, mistral: Any, sink: Memory
) -> None:
    stream = mistral.chat.stream(model="mistral-small-latest", messages=MESSAGES)
    del stream
    gc.collect()
    [record] = delivered(sink)
    assert (record.status, record.operation) == ("partial", "chat")


async def test_an_async_stream_broken_off_is_one_partial_record(
    slow: ProviderServer, mistral: Any, sink: Memory
) -> None:
    stream = await mistral.chat.stream_async(model="mistral-small-latest", messages=MESSAGES)
    first = await stream.__anext__()
    await aclose(stream)
    [record] = delivered(sink)
    assert (record.status, record.response_id) == ("partial", first.data.id)


async def test_an_async_stream_closed_unread_is_one_partial_record(
    slow: ProviderServer, mistral: Any, sink: Memory
) -> None:
    await aclose(await mistral.chat.stream_async(model="mistral-small-latest", messages=MESSAGES))
    [record] = delivered(sink)
    assert (record.status, record.model) == ("partial", "mistral-small-latest")


def test_a_stream_read_past_its_usage_chunk_is_exact(
    slow: ProviderServer, mistral: Any, sink: Memory
) -> None:
    stream = mistral.chat.stream(model="mistral-small-latest", messages=MESSAGES, max_tokens=3)
    for event in stream:
        if event.data.usage is not None:
            break
    close(stream)
    [record] = delivered(sink)
    issued = slow.issued[event.data.id]
    assert (record.status, record.input_tokens, record.output_tokens) == ("ok", issued.input_tokens, 3)


async def test_an_async_stream_dropped_unread_is_one_partial_record(
    slow: ProviderServer, mistral: Any, sink: Memory
) -> None:
    stream = await mistral.chat.stream_async(model="mistral-small-latest", messages=MESSAGES)
    del stream
    for _ in range(50):  # the event loop (and, on a busy machine, the connection) let go after a few turns
        await asyncio.sleep(0.01)
        gc.collect()
        if usagetap.stats()["captured"]:
            break
    [record] = delivered(sink)
    assert (record.status, record.operation) == ("partial", "chat")
