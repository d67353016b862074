"""The loopback server's Gemini REST: what the real API answers, in shape, with deterministic counts."""

from __future__ import annotations

import httpx

from usagetap.providers.base import sse_payloads
from usagetap.testing import ProviderServer

BODY = {"contents": [{"role": "user", "parts": [{"text": "four words of prompt"}]}]}
KEY = {"x-goog-api-key": "gemini-test-key"}


def test_generate_content_answers_with_usage_metadata_that_adds_up(gemini_server: ProviderServer) -> None:
    reply = httpx.post(
        f"{gemini_server.url}/v1beta/models/gemini-2.5-flash:generateContent", json=BODY, headers=KEY
    )
    body = reply.json()
    meta = body["usageMetadata"]
    assert (meta["promptTokenCount"], meta["candidatesTokenCount"], meta["totalTokenCount"]) == (4, 12, 16)
    assert (body["modelVersion"], body["candidates"][0]["finishReason"]) == ("gemini-2.5-flash", "STOP")
    assert gemini_server.issued[body["responseId"]].input_tokens == 4


def test_a_stream_carries_running_totals_and_ends_with_a_finish_reason(gemini_server: ProviderServer) -> None:
    url = f"{gemini_server.url}/v1beta/models/gemini-2.5-pro:streamGenerateContent?alt=sse"
    body = {
        **BODY,
        "generationConfig": {"thinkingConfig": {"thinkingBudget": 8}},
        "tools": [{"googleSearch": {}}],
    }
    chunks = sse_payloads(httpx.post(url, json=body, headers=KEY).content)
    usages = [chunk["usageMetadata"] for chunk in chunks]
    assert [u.get("candidatesTokenCount") for u in usages] == [None, 6, 12]
    assert [u.get("toolUsePromptTokenCount") for u in usages] == [None, 5, 5]
    assert [u["totalTokenCount"] for u in usages] == [12, 23, 29]
    assert ["finishReason" in chunk["candidates"][0] for chunk in chunks] == [False, False, True]


def test_vertex_paths_answer_with_a_traffic_type(gemini_server: ProviderServer) -> None:
    path = (
        "/v1beta1/projects/p/locations/us-central1/publishers/google/models/gemini-2.5-flash:generateContent"
    )
    reply = httpx.post(gemini_server.url + path, json=BODY, headers={"authorization": "Bearer ya29.t"})
    assert reply.json()["usageMetadata"]["trafficType"] == "ON_DEMAND"


def test_the_gemini_api_key_header_is_the_api_key(gemini_server: ProviderServer) -> None:
    url = f"{gemini_server.url}/v1beta/models/gemini-2.5-flash:generateContent"
    assert (httpx.post(url, json=BODY, headers=KEY).status_code, httpx.post(url, json=BODY).status_code) == (
        200,
        401,
    )
