"""Every billable OpenAI surface through the real SDK against the loopback, sync and async, OpenAI and Azure.

For each: one record per call, and the tokens recorded for each customer are
exactly the tokens the server issued while that customer was in scope.
"""

from __future__ import annotations

from typing import Any

import openai
import pytest

import usagetap
from tests.instrument.conftest import delivered, needs_responses
from tests.instrument.openai_surfaces import SURFACES, has_surface
from usagetap.sinks import Memory
from usagetap.testing import Issued, ProviderServer

TOKENS = ("input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens", "reasoning_tokens")
CUSTOMERS = (("org_a", 2), ("org_b", 1))
AZURE_VERSION = "2024-10-21"


def make_client(kind: str, server: ProviderServer, asynchronous: bool) -> Any:
    if kind == "azure":
        cls = openai.AsyncAzureOpenAI if asynchronous else openai.AzureOpenAI
        return usagetap.wrap(
            cls(azure_endpoint=server.url, api_key="az-key", api_version=AZURE_VERSION, max_retries=0)
        )
    cls = openai.AsyncOpenAI if asynchronous else openai.OpenAI
    return usagetap.wrap(cls(base_url=server.openai_url, api_key="sk-test", max_retries=0))


def _sums(items: list[Any]) -> dict[str, int]:
    return {key: sum(getattr(item, key) for item in items) for key in TOKENS}


def _new_issues(server: ProviderServer, before: set[str]) -> list[Issued]:
    return [issued for key, issued in server.issued.items() if key not in before]


def _check(
    records: list[usagetap.UsageRecord], issued: dict[str, list[Issued]], kind: str, operation: str
) -> None:
    assert len(records) == sum(times for _, times in CUSTOMERS), "one record per call"
    assert sum(len(items) for items in issued.values()) == len(records)
    assert {r.status for r in records} == {"ok"}
    assert {r.provider for r in records} == {kind}
    assert {r.operation for r in records} == {operation}
    assert all(r.request_model == r.model for r in records)
    for customer, items in issued.items():
        mine = [r for r in records if r.customer == customer]
        assert _sums(mine) == _sums(items), f"tokens billed to {customer} differ from what the server issued"
        assert _sums(mine)["input_tokens"] > 0


@pytest.mark.parametrize("kind", ["openai", "azure"])
@pytest.mark.parametrize("surface", list(SURFACES))
def test_sync_surface_bills_each_customer_the_issued_tokens(
    surface: str, kind: str, server: ProviderServer, sink: Memory
) -> None:
    call, _, operation, path = SURFACES[surface]
    client = make_client(kind, server, asynchronous=False)
    if not has_surface(client, path):
        pytest.skip(f"openai {openai.__version__} has no {path}")
    issued: dict[str, list[Issued]] = {}
    for customer, times in CUSTOMERS:
        before = set(server.issued)
        with usagetap.customer(customer):
            for _ in range(times):
                call(client)
        issued[customer] = _new_issues(server, before)
    _check(delivered(sink), issued, kind, operation)


@pytest.mark.parametrize("kind", ["openai", "azure"])
@pytest.mark.parametrize("surface", list(SURFACES))
async def test_async_surface_bills_each_customer_the_issued_tokens(
    surface: str, kind: str, server: ProviderServer, sink: Memory
) -> None:
    _, acall, operation, path = SURFACES[surface]
    client = make_client(kind, server, asynchronous=True)
    if not has_surface(client, path):
        pytest.skip(f"openai {openai.__version__} has no {path}")
    issued: dict[str, list[Issued]] = {}
    for customer, times in CUSTOMERS:
        before = set(server.issued)
        with usagetap.customer(customer):
            for _ in range(times):
                await acall(client)
        issued[customer] = _new_issues(server, before)
    _check(delivered(sink), issued, kind, operation)


@needs_responses
def test_azure_requests_use_deployment_paths_and_the_api_version(
    server: ProviderServer, sink: Memory
) -> None:
    client = make_client("azure", server, asynchronous=False)
    SURFACES["chat.completions.create"][0](client)
    SURFACES["embeddings.create"][0](client)
    SURFACES["responses.create"][0](client)
    paths = [r["path"] for r in server.requests]
    assert paths == [
        "/openai/deployments/gpt-4.1/chat/completions",
        "/openai/deployments/text-embedding-3-small/embeddings",
        "/openai/responses",
    ]
    assert all(r["headers"].get("api-key") == "az-key" for r in server.requests)
    assert [r.provider for r in delivered(sink)] == ["azure"] * 3
