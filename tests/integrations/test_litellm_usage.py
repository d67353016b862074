"""LiteLLM's normalized usage in usagetap's terms. Shapes: LiteLLM's ``Usage`` (OpenAI's chat shape, with
Anthropic's cache fields carried as ``cache_creation_input_tokens`` and
``prompt_tokens_details.cached_tokens``) and its ``ResponsesAPIResponse`` usage, as LiteLLM documents them."""

from __future__ import annotations

from usagetap.integrations._litellm_usage import ESTIMATED, operation_of, provider_of, usage_of


def test_anthropic_cache_reads_and_writes_are_parts_of_the_input() -> None:
    response = {
        "id": "chatcmpl-5c1e",
        "model": "claude-sonnet-4-5",
        "usage": {
            "prompt_tokens": 1200,
            "completion_tokens": 75,
            "prompt_tokens_details": {"cached_tokens": 900},
            "cache_creation_input_tokens": 250,
            "completion_tokens_details": {"reasoning_tokens": 30},
        },
    }
    usage = usage_of(response)
    assert (usage.input_tokens, usage.cache_read_tokens, usage.cache_write_tokens) == (1200, 900, 250)
    assert (usage.output_tokens, usage.reasoning_tokens, usage.response_id) == (75, 30, "chatcmpl-5c1e")


def test_responses_api_usage_reads_input_and_output_tokens() -> None:
    response = {
        "id": "resp_77aa",
        "model": "gpt-4.1",
        "usage": {"input_tokens": 40, "output_tokens": 12, "input_tokens_details": {"cached_tokens": 8}},
    }
    usage = usage_of(response)
    assert (usage.input_tokens, usage.output_tokens, usage.cache_read_tokens) == (40, 12, 8)


def test_a_response_without_usage_is_flagged_unreported() -> None:
    usage = usage_of({"id": "chatcmpl-1", "model": "gpt-4.1"})
    assert (usage.reported, usage.issue) == (False, "no usage reported")


def test_an_estimated_stream_names_the_estimate() -> None:
    usage = usage_of({"usage": {"prompt_tokens": 5, "completion_tokens": 9}}, estimated=True)
    assert (usage.input_tokens, usage.output_tokens, usage.issue) == (5, 9, ESTIMATED)


def test_litellm_provider_names_map_to_usagetap_names() -> None:
    names = ["gemini", "vertex_ai", "xai", "together_ai", "azure", "bedrock", "anthropic"]
    assert [provider_of(n) for n in names] == [
        "google",
        "vertex",
        "x-ai",
        "together",
        "azure",
        "bedrock",
        "anthropic",
    ]


def test_an_unknown_provider_is_its_api_host() -> None:
    assert provider_of("hosted_vllm", "http://llm.internal.example:8000/v1") == "llm.internal.example"


def test_call_types_map_to_operations() -> None:
    assert [operation_of(t) for t in ("acompletion", "aembedding", "aresponses", "image_generation")] == [
        "chat",
        "embeddings",
        "responses",
        None,
    ]
