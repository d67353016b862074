"""A loopback server speaking Gemini REST, and google-genai clients pointed at it."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from usagetap.testing import ProviderServer

genai = pytest.importorskip("google.genai")
from google.genai import types  # noqa: E402


@pytest.fixture
def gemini_server() -> Iterator[ProviderServer]:
    with ProviderServer() as server:
        yield server


@pytest.fixture
def gemini(gemini_server: ProviderServer) -> Callable[..., Any]:
    """A new Gemini API client (``google.genai.Client``) on the loopback server."""

    def make(**options: Any) -> Any:
        http_options = types.HttpOptions(base_url=gemini_server.url, **options)
        return genai.Client(api_key="gemini-test-key", http_options=http_options)

    return make


@pytest.fixture
def vertex(gemini_server: ProviderServer) -> Callable[[], Any]:
    """A new Vertex AI client (``vertexai=True``) on the loopback server."""
    from google.oauth2.credentials import Credentials

    def make() -> Any:
        return genai.Client(
            vertexai=True,
            project="proj-test",
            location="us-central1",
            credentials=Credentials(token="ya29.vertex-test"),
            http_options=types.HttpOptions(base_url=gemini_server.url),
        )

    return make
