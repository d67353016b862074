"""Bodies the loopback server does not send, through the SDK's own ``client=`` with a MockTransport.

Shapes from captured traffic (../shared/payloads/more_providers: mistral_complete_gzip_2024, a
chat completion gzip-encoded on the wire; variant_mistral_stream_cut_before_usage): own ids and numbers.
"""

from __future__ import annotations

import gzip
import importlib
import json
from typing import Any

import usagetap
from tests.instrument.conftest import delivered
from usagetap.providers.mistral.intercept import base_classes
from usagetap.sinks import Memory

from .conftest import MESSAGES, mistral_class


def _http() -> Any:
    """The HTTP module the SDK sends with: httpx (mistralai 1.x, 2.x) or httpx2 (3.x)."""
    return importlib.import_module(base_classes()[0].__module__).httpx


def _client(respond: Any) -> Any:
    http = _http()
    transport = http.MockTransport(lambda request: respond(http, request))
    return mistral_class()(
        api_key="k", server_url="https://api.mistral.ai", client=http.Client(transport=transport)
    )


def test_a_gzip_encoded_completion_is_metered_from_its_decoded_body(sink: Memory) -> None:
    body = {
        "id": "5a1f00d2",
        "object": "chat.completion",
        "created": 1757000000,
        "model": "mistral-tiny",
        "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": "ok"}}],
        "usage": {"prompt_tokens": 13, "completion_tokens": 41, "total_tokens": 54},
    }
    headers = {"content-type": "application/json", "content-encoding": "gzip"}

    def respond(http: Any, request: Any) -> Any:
        return http.Response(200, headers=headers, content=gzip.compress(json.dumps(body).encode()))

    response = usagetap.wrap(_client(respond)).chat.complete(model="mistral-tiny", messages=MESSAGES)
    [record] = delivered(sink)
    assert response.id == "5a1f00d2"
    assert (record.provider, record.input_tokens, record.output_tokens, record.status) == (
        "mistral",
        13,
        41,
        "ok",
    )


def test_a_stream_the_server_ends_before_its_usage_chunk_is_one_partial_record(sink: Memory) -> None:
    chunk = {
        "id": "c7d2",
        "object": "chat.completion.chunk",
        "created": 1757000001,
        "model": "mistral-tiny",
        "choices": [{"index": 0, "delta": {"content": "Hi"}, "finish_reason": None}],
    }
    sse = b"".join(b"data: " + json.dumps(chunk).encode() + b"\n\n" for _ in range(3))

    def respond(http: Any, request: Any) -> Any:
        return http.Response(200, headers={"content-type": "text/event-stream"}, content=sse)

    events = list(usagetap.wrap(_client(respond)).chat.stream(model="mistral-tiny", messages=MESSAGES))
    [record] = delivered(sink)
    assert len(events) == 3
    assert (record.status, record.response_id, record.model) == ("partial", "c7d2", "mistral-tiny")
