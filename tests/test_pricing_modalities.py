"""Token kinds priced at their own rates: OpenAI cache writes, audio and image tokens, Gemini modalities.

Each expected cost is worked out by hand from the price the provider documents (USD per million
tokens: https://platform.openai.com/docs/pricing, https://ai.google.dev/gemini-api/docs/pricing),
never from genai-prices; the usage comes through usagetap's own reading of the response body.
"""

from __future__ import annotations

from datetime import datetime, timezone
from decimal import Decimal
from typing import Any

from usagetap._cost import price_record, price_version
from usagetap._record import UsageRecord
from usagetap.providers.base import TokenUsage
from usagetap.providers.google.usage import content_usage
from usagetap.providers.openai import usage as extract

M = Decimal(1_000_000)


def priced(usage: TokenUsage, provider: str = "openai") -> UsageRecord:
    """The record of a call with ``usage``, priced."""
    assert usage.model is not None
    record = UsageRecord(
        event_id=f"ev-{usage.response_id}",
        timestamp=datetime(2026, 12, 1, 12, tzinfo=timezone.utc),
        customer="org_1",
        provider=provider,
        model=usage.model,
        request_model=usage.model,
        operation="chat",
        input_tokens=usage.input_tokens,
        output_tokens=usage.output_tokens,
        cache_read_tokens=usage.cache_read_tokens,
        cache_write_tokens=usage.cache_write_tokens,
        reasoning_tokens=usage.reasoning_tokens,
        dimensions=dict(usage.dimensions),
    )
    return price_record(record)


def response(model: str, usage: dict[str, Any]) -> TokenUsage:
    return extract.responses_usage(
        {"id": f"resp_{model}", "model": model, "status": "completed", "usage": usage}
    )


def test_openai_cache_writes_are_priced_at_the_cache_write_rate() -> None:
    # gpt-5.6-terra up to 272k input: input $2, cache write $2.50, cached input $0.20, output $12
    usage = response(
        "gpt-5.6-terra",
        {
            "input_tokens": 10_000,
            "input_tokens_details": {"cached_tokens": 2_000, "cache_write_tokens": 4_000},
            "output_tokens": 1_000,
        },
    )
    r = priced(usage)
    expected = 4_000 * Decimal(2) + 4_000 * Decimal("2.5") + 2_000 * Decimal("0.2") + 1_000 * Decimal(12)
    assert r.cost == expected / M and r.price_source == price_version()


def test_openai_audio_tokens_are_priced_at_the_audio_rates() -> None:
    # gpt-audio: text $2.50 in / $10 out, audio $32 in / $64 out
    usage = extract.chat_usage(
        {
            "id": "chatcmpl-audio-1",
            "model": "gpt-audio",
            "usage": {
                "prompt_tokens": 1_000,
                "completion_tokens": 500,
                "prompt_tokens_details": {"audio_tokens": 400, "cached_tokens": 0},
                "completion_tokens_details": {"audio_tokens": 300, "reasoning_tokens": 0},
            },
        }
    )
    r = priced(usage)
    expected = 600 * Decimal("2.5") + 400 * Decimal(32) + 200 * Decimal(10) + 300 * Decimal(64)
    assert r.cost == expected / M and r.price_issue is None


def test_realtime_cache_reads_are_priced_per_modality() -> None:
    # gpt-realtime: text $4 in / $0.40 cached / $16 out, audio $32 in / $0.40 cached / $64 out,
    # image $5 in / $0.50 cached
    usage = extract.chat_usage(
        {
            "id": "chatcmpl-rt-2",
            "model": "gpt-realtime",
            "usage": {
                "prompt_tokens": 3_000,
                "completion_tokens": 400,
                "prompt_tokens_details": {
                    "audio_tokens": 1_800,
                    "image_tokens": 200,
                    "cached_tokens": 1_200,
                    "cached_tokens_details": {"text_tokens": 300, "audio_tokens": 800, "image_tokens": 100},
                },
                "completion_tokens_details": {"audio_tokens": 320},
            },
        }
    )
    r = priced(usage)
    text_in = 700 * Decimal(4) + 300 * Decimal("0.4")
    audio_in = 1_000 * Decimal(32) + 800 * Decimal("0.4")
    image_in = 100 * Decimal(5) + 100 * Decimal("0.5")
    output = 80 * Decimal(16) + 320 * Decimal(64)
    assert r.cost == (text_in + audio_in + image_in + output) / M


def test_image_tokens_are_priced_at_the_image_rates() -> None:
    # gpt-image-1.5: text $5 in, image $8 in, image $32 out
    usage = response(
        "gpt-image-1.5",
        {
            "input_tokens": 900,
            "input_tokens_details": {"text_tokens": 150, "image_tokens": 750},
            "output_tokens": 4_160,
            "output_tokens_details": {"text_tokens": 0, "image_tokens": 4_160},
        },
    )
    r = priced(usage)
    assert r.cost == (150 * Decimal(5) + 750 * Decimal(8) + 4_160 * Decimal(32)) / M


def gemini(model: str, meta: dict[str, Any]) -> TokenUsage:
    return content_usage({"modelVersion": model, "responseId": f"resp-{model}", "usageMetadata": meta})


def test_gemini_audio_input_and_its_cache_reads_are_priced_at_the_audio_rates() -> None:
    # Gemini 2.5 Flash: text $0.30 in / $0.03 cached, audio $1.00 in / $0.10 cached, output $2.50
    usage = gemini(
        "gemini-2.5-flash",
        {
            "promptTokenCount": 10_000,
            "promptTokensDetails": [
                {"modality": "TEXT", "tokenCount": 4_000},
                {"modality": "AUDIO", "tokenCount": 6_000},
            ],
            "cachedContentTokenCount": 5_000,
            "cacheTokensDetails": [
                {"modality": "TEXT", "tokenCount": 1_000},
                {"modality": "AUDIO", "tokenCount": 4_000},
            ],
            "candidatesTokenCount": 500,
            "totalTokenCount": 10_500,
        },
    )
    r = priced(usage, "google")
    text_in = 3_000 * Decimal("0.3") + 1_000 * Decimal("0.03")
    audio_in = 2_000 * Decimal(1) + 4_000 * Decimal("0.1")
    assert r.cost == (text_in + audio_in + 500 * Decimal("2.5")) / M


def test_gemini_image_output_is_priced_at_the_image_output_rate() -> None:
    # Gemini 2.5 Flash Image: input $0.30, text output $2.50, image output $30
    usage = gemini(
        "gemini-2.5-flash-image",
        {
            "promptTokenCount": 200,
            "candidatesTokenCount": 1_300,
            "candidatesTokensDetails": [
                {"modality": "TEXT", "tokenCount": 10},
                {"modality": "IMAGE", "tokenCount": 1_290},
            ],
            "totalTokenCount": 1_500,
        },
    )
    r = priced(usage, "google")
    assert r.cost == (200 * Decimal("0.3") + 10 * Decimal("2.5") + 1_290 * Decimal(30)) / M


def test_audio_with_cache_reads_but_no_cached_audio_count_is_not_priced_at_the_text_rate() -> None:
    # gpt-realtime prices cached audio apart ($0.40) from audio input ($32): without the split of the
    # 100 cache reads genai-prices refuses the usage, and pricing the 400 audio tokens at $4 would be wrong
    usage = extract.chat_usage(
        {
            "id": "chatcmpl-rt-3",
            "model": "gpt-realtime",
            "usage": {
                "prompt_tokens": 1_000,
                "completion_tokens": 500,
                "prompt_tokens_details": {"audio_tokens": 400, "cached_tokens": 100},
                "completion_tokens_details": {"audio_tokens": 300},
            },
        }
    )
    r = priced(usage)
    assert r.cost is None and r.price_source is None
    assert r.price_issue == (
        "no price for the usage (input_audio_tokens, output_audio_tokens) of 'gpt-realtime' at 'openai'"
    )
