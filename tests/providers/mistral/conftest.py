"""The real mistralai SDK against the loopback provider (``ProviderServer.mistral_url``)."""

from __future__ import annotations

from typing import Any

import pytest

pytest.importorskip("mistralai")

import usagetap
from usagetap.testing import ProviderServer


def mistral_class() -> Any:
    """``Mistral``: in ``mistralai.client`` from 2.x, at the package's top in 1.x."""
    try:
        from mistralai.client import Mistral
    except ImportError:
        from mistralai import Mistral
    return Mistral


def bare(server: ProviderServer) -> Any:
    """An unwrapped client of the loopback server, no retries."""
    return mistral_class()(api_key="test-key", server_url=server.mistral_url)


@pytest.fixture
def mistral(server: ProviderServer) -> Any:
    return usagetap.wrap(bare(server))


MESSAGES = [{"role": "user", "content": "how many tokens does this prompt use"}]


def close(stream: Any) -> None:
    """Close a stream as the SDK lets its caller: ``close()`` (3.x streams, 1.x's earliest generators)
    or leaving its ``with`` block (1.x streams)."""
    if hasattr(stream, "close"):
        stream.close()
    else:
        stream.__exit__(None, None, None)


async def aclose(stream: Any) -> None:
    """Close an async stream: ``close()`` (3.x), ``aclose()`` (async generators) or ``async with`` (1.x)."""
    if hasattr(stream, "close"):
        await stream.close()
    elif hasattr(stream, "aclose"):
        await stream.aclose()
    else:
        await stream.__aexit__(None, None, None)
