"""The request model, read from the body the SDK serialized."""

from __future__ import annotations

import httpx

from usagetap.providers.mistral.adapter import _request_body, _request_model


def _request(content: bytes) -> bytes | None:
    """The body of a request as the SDK sends it (read into memory)."""
    return _request_body(httpx.Request("POST", "https://api.mistral.ai/v1/chat/completions", content=content))


def test_the_model_the_sdk_serializes_first_is_the_request_model() -> None:
    assert (
        _request_model(_request(b'{"model":"mistral-small-latest","messages":[]}')) == "mistral-small-latest"
    )


def test_a_model_elsewhere_in_the_body_is_found_too() -> None:
    assert _request_model(_request(b'{"messages": [], "model": "codestral-latest"}')) == "codestral-latest"


def test_a_body_that_is_not_json_leaves_the_request_model_unknown() -> None:
    assert _request_model(_request(b"not json")) is None


def test_an_escaped_model_name_is_decoded_as_json() -> None:
    assert _request_model(_request(b'{"model":"mistral-\\u0073mall","messages":[]}')) == "mistral-small"


def test_a_streamed_request_body_leaves_the_request_model_unknown() -> None:
    def chunks() -> object:
        yield b'{"model":"mistral-small-latest"}'

    request = httpx.Request("POST", "https://api.mistral.ai/v1/chat/completions", content=chunks())
    assert _request_model(_request_body(request)) is None
