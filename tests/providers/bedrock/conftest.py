"""A real boto3 ``bedrock-runtime`` client against the loopback provider (dummy credentials, any SigV4)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

import usagetap
from usagetap.testing import ProviderServer

boto3 = pytest.importorskip("boto3", minversion="1.37.24")
import botocore  # noqa: E402
from botocore.config import Config  # noqa: E402

REGION = "eu-west-1"

needs_cache_ttl = pytest.mark.skipif(
    tuple(int(part) for part in botocore.__version__.split(".")[:3]) < (1, 42, 31),
    reason="botocore takes cachePoint's ttl and parses Converse's cacheDetails from 1.42.31 on",
)


def make_client(server: ProviderServer, region: str = REGION) -> Any:
    return boto3.client(
        "bedrock-runtime",
        endpoint_url=server.url,
        region_name=region,
        aws_access_key_id="AKIDLOOPBACK",
        aws_secret_access_key="loopback-secret",
        config=Config(retries={"max_attempts": 1, "mode": "standard"}),
    )


@pytest.fixture
def new_client(server: ProviderServer) -> Callable[..., Any]:
    return lambda region=REGION: make_client(server, region)


@pytest.fixture
def bedrock(server: ProviderServer) -> Any:
    """A wrapped client, billed to ``org_1``."""
    return usagetap.wrap(make_client(server), customer="org_1")


@pytest.fixture
def instrumented() -> Iterator[None]:
    usagetap.instrument()
    yield
    usagetap.uninstrument()


def delivered(sink: usagetap.sinks.Memory) -> list[usagetap.UsageRecord]:
    assert usagetap.flush(timeout=5.0).pending == 0
    return list(sink.records)


def ask(text: str, *, cache: bool = False, ttl: str = "") -> list[dict[str, Any]]:
    """Converse messages: one user turn, with a cache point after it when ``cache``."""
    content: list[dict[str, Any]] = [{"text": text}]
    if cache:
        point: dict[str, Any] = {"type": "default"}
        if ttl:
            point["ttl"] = ttl
        content.append({"cachePoint": point})
    return [{"role": "user", "content": content}]
