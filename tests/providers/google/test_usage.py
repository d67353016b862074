"""Extraction of google-genai usage: fixtures of the shapes the Gemini API and Vertex AI answer with.

The shapes (not the numbers) are those of VCR cassettes recorded against the live APIs by
pydantic/pydantic-ai (tests/models/cassettes/test_google/*.yaml), each named where it is used.
"""

from __future__ import annotations

from typing import Any

import pytest
from google.genai import types

from usagetap.providers.google.usage import ContentStreamObserver, batch_results, content_usage, embed_usage


def _response(usage: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {
        "candidates": [{"content": {"parts": [{"text": "Fine."}], "role": "model"}, "finishReason": "STOP"}],
        "modelVersion": "gemini-2.5-flash",
        "responseId": "resp-fixture-1",
        "usageMetadata": usage,
        **extra,
    }


def _counts(usage: Any) -> tuple[int, int, int, int]:
    return (usage.input_tokens, usage.output_tokens, usage.cache_read_tokens, usage.reasoning_tokens)


def test_the_prompt_count_includes_cached_tokens_so_the_cache_read_is_part_of_input() -> None:
    # shape: test_google_model_mobile_youtube_video_url_input.yaml (implicit cache hit)
    usage = content_usage(
        _response(
            {
                "cachedContentTokenCount": 900,
                "candidatesTokenCount": 40,
                "promptTokenCount": 1000,
                "serviceTier": "standard",
                "thoughtsTokenCount": 60,
                "totalTokenCount": 1100,
            }
        )
    )
    assert _counts(usage) == (1000, 100, 900, 60)
    assert usage.issue is None and usage.reported


def test_tool_use_prompt_tokens_are_billed_input_outside_the_prompt_count() -> None:
    # shape: test_google_model_web_fetch_tool.yaml (url_context: toolUsePromptTokenCount)
    usage = content_usage(
        _response(
            {
                "promptTokenCount": 20,
                "candidatesTokenCount": 30,
                "toolUsePromptTokenCount": 1500,
                "thoughtsTokenCount": 10,
                "totalTokenCount": 1560,
            }
        )
    )
    assert _counts(usage) == (1520, 40, 0, 10)
    assert usage.issue is None


def test_a_total_that_does_not_add_up_is_flagged_with_a_usage_issue() -> None:
    usage = content_usage(
        _response({"promptTokenCount": 20, "candidatesTokenCount": 30, "totalTokenCount": 75})
    )
    assert _counts(usage) == (20, 30, 0, 0)
    assert usage.issue == "total_token_count 75 is not prompt + tool_use + candidates + thoughts (50)"


def test_counts_without_a_total_are_flagged_as_not_adding_up() -> None:
    usage = content_usage(_response({"promptTokenCount": 20, "candidatesTokenCount": 30}))
    assert usage.issue == "total_token_count not reported (counts add up to 50)"


def test_a_thinking_only_response_without_a_candidates_count_has_only_thoughts_as_output() -> None:
    # shape: test_google_model_max_tokens_thinking_model_empty_response.yaml (proto3 omits a 0 count)
    body = _response({"promptTokenCount": 12, "thoughtsTokenCount": 3, "totalTokenCount": 15})
    body["candidates"] = [{"content": {"role": "model"}, "finishReason": "MAX_TOKENS"}]
    usage = content_usage(body)
    assert _counts(usage) == (12, 3, 0, 3)
    assert usage.issue is None


def test_a_response_blocked_by_model_armor_is_still_billed() -> None:
    # shape: test_google_model_armor_response_template_real_block.yaml (finishReason MODEL_ARMOR, no content)
    body = _response(
        {
            "candidatesTokenCount": 4,
            "promptTokenCount": 11,
            "thoughtsTokenCount": 9,
            "totalTokenCount": 24,
            "trafficType": "ON_DEMAND",
        }
    )
    body["candidates"] = [{"finishReason": "MODEL_ARMOR", "finishMessage": "blocked"}]
    usage = content_usage(body)
    assert _counts(usage) == (11, 13, 0, 9)
    assert usage.reported and usage.issue is None


def test_a_blocked_prompt_without_counts_is_unreported_never_a_silent_zero() -> None:
    # shape: test_google_model_armor_prompt_template_text_gets_blocked.yaml (usageMetadata = trafficType only)
    body = {
        "modelVersion": "gemini-2.5-flash",
        "promptFeedback": {"blockReason": "MODEL_ARMOR"},
        "responseId": "resp-blocked",
        "usageMetadata": {"trafficType": "ON_DEMAND"},
    }
    usage = content_usage(body)
    assert not usage.reported
    assert usage.issue == "no token counts reported"


def test_vertex_flex_traffic_is_the_flex_service_tier() -> None:
    # shape: test_google_vertex_service_tier_flex.yaml (trafficType ON_DEMAND_FLEX)
    body = _response(
        {
            "candidatesTokenCount": 2,
            "promptTokenCount": 6,
            "totalTokenCount": 8,
            "trafficType": "ON_DEMAND_FLEX",
        }
    )
    assert content_usage(body).dimensions == {"traffic_type": "ON_DEMAND_FLEX", "service_tier": "flex"}


def test_provisioned_throughput_is_marked_prepaid() -> None:
    body = _response(
        {
            "candidatesTokenCount": 2,
            "promptTokenCount": 6,
            "totalTokenCount": 8,
            "trafficType": "PROVISIONED_THROUGHPUT",
        }
    )
    assert content_usage(body).dimensions == {"traffic_type": "PROVISIONED_THROUGHPUT", "prepaid": True}


def test_an_sdk_response_object_reads_like_its_json() -> None:
    response = types.GenerateContentResponse(
        model_version="gemini-2.5-pro",
        response_id="resp-object",
        usage_metadata=types.GenerateContentResponseUsageMetadata(
            prompt_token_count=50,
            cached_content_token_count=20,
            candidates_token_count=7,
            thoughts_token_count=3,
            tool_use_prompt_token_count=5,
            total_token_count=65,
            traffic_type=types.TrafficType.ON_DEMAND,
        ),
    )
    usage = content_usage(response)
    assert _counts(usage) == (55, 10, 20, 3)
    assert (usage.model, usage.response_id, usage.issue) == ("gemini-2.5-pro", "resp-object", None)
    assert usage.dimensions["traffic_type"] == "ON_DEMAND"


def test_the_audio_image_and_video_parts_of_prompt_cache_and_output_are_dimensions() -> None:
    usage = content_usage(
        _response(
            {
                "promptTokenCount": 9000,
                "promptTokensDetails": [
                    {"modality": "TEXT", "tokenCount": 2000},
                    {"modality": "AUDIO", "tokenCount": 5000},
                    {"modality": "VIDEO", "tokenCount": 2000},
                ],
                "cachedContentTokenCount": 3000,
                "cacheTokensDetails": [{"modality": "AUDIO", "tokenCount": 3000}],
                "candidatesTokenCount": 1300,
                "candidatesTokensDetails": [
                    {"modality": "TEXT", "tokenCount": 10},
                    {"modality": "IMAGE", "tokenCount": 1290},
                ],
                "totalTokenCount": 10300,
            }
        )
    )
    assert usage.dimensions == {
        "input_audio_tokens": 5000,
        "input_video_tokens": 2000,
        "cache_audio_read_tokens": 3000,
        "output_image_tokens": 1290,
    }


def test_the_modality_parts_of_an_sdk_response_object_are_read() -> None:
    response = types.GenerateContentResponse(
        model_version="gemini-2.5-flash",
        usage_metadata=types.GenerateContentResponseUsageMetadata(
            prompt_token_count=700,
            prompt_tokens_details=[
                types.ModalityTokenCount(modality=types.MediaModality.TEXT, token_count=100),
                types.ModalityTokenCount(modality=types.MediaModality.AUDIO, token_count=600),
            ],
            candidates_token_count=20,
            total_token_count=720,
        ),
    )
    assert content_usage(response).dimensions == {"input_audio_tokens": 600}


def _chunk(usage: dict[str, Any], finish: bool = False) -> dict[str, Any]:
    candidate: dict[str, Any] = {"content": {"parts": [{"text": "part"}], "role": "model"}}
    if finish:
        candidate["finishReason"] = "STOP"
    return {
        "candidates": [candidate],
        "usageMetadata": usage,
        "modelVersion": "gemini-2.5-pro",
        "responseId": "r-1",
    }


def test_a_stream_is_billed_at_its_last_running_totals() -> None:
    # shape: test_google_model_stream_thoughts (cumulative usageMetadata, candidates count absent at first)
    observer = ContentStreamObserver()
    observer.observe(_chunk({"promptTokenCount": 30, "thoughtsTokenCount": 50, "totalTokenCount": 80}))
    observer.observe(
        _chunk(
            {
                "promptTokenCount": 30,
                "candidatesTokenCount": 9,
                "thoughtsTokenCount": 70,
                "totalTokenCount": 109,
            }
        )
    )
    observer.observe(
        _chunk(
            {
                "promptTokenCount": 30,
                "candidatesTokenCount": 21,
                "thoughtsTokenCount": 70,
                "totalTokenCount": 121,
            },
            finish=True,
        )
    )
    usage = observer.result()
    assert _counts(usage) == (30, 91, 0, 70)
    assert observer.usage_final and usage.issue is None and usage.response_id == "r-1"


def test_a_count_that_vanishes_from_a_later_chunk_keeps_its_last_value() -> None:
    observer = ContentStreamObserver()
    observer.observe(
        _chunk(
            {
                "promptTokenCount": 15,
                "toolUsePromptTokenCount": 700,
                "candidatesTokenCount": 4,
                "totalTokenCount": 719,
            }
        )
    )
    observer.observe(
        _chunk({"promptTokenCount": 15, "candidatesTokenCount": 8, "totalTokenCount": 723}, finish=True)
    )
    usage = observer.result()
    assert _counts(usage) == (715, 8, 0, 0)
    assert usage.issue is None


def test_a_stream_cut_before_its_finish_reason_is_not_final() -> None:
    # shape: variant of the cumulative stream, cut before any finishReason
    observer = ContentStreamObserver()
    observer.observe(_chunk({"promptTokenCount": 30, "thoughtsTokenCount": 50, "totalTokenCount": 80}))
    assert not observer.usage_final
    assert _counts(observer.result()) == (30, 50, 0, 50)


def test_stream_chunks_are_read_from_the_json_text_the_sdk_passes_on() -> None:
    observer = ContentStreamObserver()
    observer.observe(
        '{"usageMetadata": {"promptTokenCount": 3, "candidatesTokenCount": 2, "totalTokenCount": 5}}'
    )
    assert _counts(observer.result()) == (3, 2, 0, 0)


def test_stream_chunk_texts_are_decoded_when_the_record_is_built_not_as_they_pass(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from usagetap.providers.google import usage as module

    observer = ContentStreamObserver()
    monkeypatch.setattr(module.json, "loads", lambda *_: pytest.fail("decoded on the caller's thread"))
    observer.observe('{"usageMetadata": {"promptTokenCount": 3, "totalTokenCount": 3}}')
    observer.observe(
        b'{"candidates": [{"finishReason": "STOP"}], '
        b'"usageMetadata": {"promptTokenCount": 3, "candidatesTokenCount": 2, "totalTokenCount": 5}}'
    )
    assert observer.usage_final
    monkeypatch.undo()
    assert _counts(observer.result()) == (3, 2, 0, 0)


def test_finish_reason_words_inside_the_generated_text_do_not_end_the_stream() -> None:
    observer = ContentStreamObserver()
    observer.observe(
        '{"candidates": [{"content": {"parts": [{"text": "say \\"finishReason\\": now"}]}}], '
        '"usageMetadata": {"promptTokenCount": 3, "totalTokenCount": 3}}'
    )
    assert not observer.usage_final


def test_gemini_api_embeddings_report_no_usage_so_they_are_unreported() -> None:
    # shape: test_google_model_embed batchEmbedContents (embeddings only, no usage)
    usage = embed_usage({"embeddings": [{"values": [0.5, -0.25]}, {"values": [0.125, 0.0]}]})
    assert not usage.reported
    assert usage.issue == "the embeddings response reports no token counts"


def test_vertex_predict_embeddings_sum_the_token_counts_of_their_predictions() -> None:
    # shape: :predict of text-embedding models (predictions[].embeddings.statistics.token_count)
    body = {
        "metadata": {"billableCharacterCount": 31},
        "predictions": [
            {"embeddings": {"statistics": {"token_count": 6, "truncated": False}, "values": [0.1]}},
            {"embeddings": {"statistics": {"token_count": 3.0, "truncated": False}, "values": [0.2]}},
        ],
    }
    usage = embed_usage(body)
    assert (usage.input_tokens, usage.output_tokens, usage.reported) == (9, 0, True)
    assert usage.dimensions == {"billable_characters": 31}


def test_vertex_embed_content_reads_its_usage_metadata() -> None:
    # shape: test_google_vertex embedContent of gemini-embedding-2 (usageMetadata.promptTokenCount)
    body = {"embedding": {"values": [0.3]}, "usageMetadata": {"promptTokenCount": 14, "totalTokenCount": 14}}
    usage = embed_usage(body)
    assert (usage.input_tokens, usage.output_tokens, usage.issue) == (14, 0, None)


def test_a_batch_job_not_yet_succeeded_has_no_results_to_bill() -> None:
    # shape: google-genai's batches converters (metadata.state, metadata.output.inlinedResponses)
    assert batch_results({"name": "batches/b1", "metadata": {"state": "BATCH_STATE_RUNNING"}}) is None


def test_a_succeeded_batch_job_bills_its_inlined_responses_not_its_failed_requests() -> None:
    response = _response({"promptTokenCount": 5, "candidatesTokenCount": 1, "totalTokenCount": 6})
    job = {
        "name": "batches/b2",
        "metadata": {
            "model": "models/gemini-2.5-flash",
            "state": "BATCH_STATE_SUCCEEDED",
            "output": {
                "inlinedResponses": {"inlinedResponses": [{"response": response}, {"error": {"code": 400}}]}
            },
        },
    }
    assert batch_results(job) == ("gemini-2.5-flash", [response])


def _grounded_chunk(queries: list[str], finish: bool) -> dict[str, Any]:
    candidate: dict[str, Any] = {"index": 0, "content": {"role": "model", "parts": [{"text": "Sunny."}]}}
    if queries:
        candidate["groundingMetadata"] = {"webSearchQueries": queries}
    if finish:
        candidate["finishReason"] = "STOP"
    counts = {"promptTokenCount": 12, "candidatesTokenCount": 4, "totalTokenCount": 16}
    return {"responseId": "r-g", "modelVersion": "gemini-3-flash-preview", "candidates": [candidate],
            "usageMetadata": counts}  # fmt: skip


def test_a_stream_grounded_with_google_search_counts_its_queries_once() -> None:
    observer = ContentStreamObserver()
    observer.observe(_grounded_chunk([], finish=False))
    observer.observe(_grounded_chunk(["lisbon weather", "lisbon forecast"], finish=False))
    observer.observe(_grounded_chunk(["lisbon weather", "lisbon forecast"], finish=True))
    assert observer.result().dimensions == {"grounding_searches": 2}


def test_a_grounded_sdk_response_reads_like_its_json() -> None:
    data = _grounded_chunk(["lisbon weather"], finish=True)
    response = types.GenerateContentResponse.model_validate(data)
    assert content_usage(response).dimensions == content_usage(data).dimensions == {"grounding_searches": 1}
