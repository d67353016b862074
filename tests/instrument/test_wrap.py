"""wrap(): binding defaults to a client, wrapping a wrapped one, and the arguments it accepts."""

from __future__ import annotations

import asyncio
import collections
import itertools
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import anthropic
import openai
import pytest

import usagetap
from tests.instrument.conftest import delivered
from usagetap.instrument._wrap import binding_of
from usagetap.sinks import Memory
from usagetap.testing import ProviderServer

TENANTS = ("org_a", "org_b", "org_c", "org_d")
ROUNDS = 5
HELLO = [{"role": "user", "content": "tenant"}]


def chat(client: Any) -> Any:
    return client.chat.completions.create(model="gpt-4.1", messages=HELLO)


def message(client: Any) -> Any:
    return client.messages.create(model="claude-sonnet-4-6", max_tokens=16, messages=HELLO)


def openai_client(server: ProviderServer) -> openai.OpenAI:
    return openai.OpenAI(base_url=server.openai_url, api_key="sk-test", max_retries=0)


def anthropic_client(server: ProviderServer) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=server.anthropic_url, api_key="sk-ant-test", max_retries=0)


SYNC = {
    "openai": (openai_client, chat),
    "anthropic": (anthropic_client, message),
}
ASYNC = {
    "openai": (
        lambda server: openai.AsyncOpenAI(base_url=server.openai_url, api_key="sk-test", max_retries=0),
        chat,
    ),
    "anthropic": (
        lambda server: anthropic.AsyncAnthropic(
            base_url=server.anthropic_url, api_key="sk-ant-test", max_retries=0
        ),
        message,
    ),
}


def per_customer(records: list[usagetap.UsageRecord]) -> dict[Any, int]:
    return dict(collections.Counter(r.customer for r in records))


# -- wrapping a wrapped client ----------------------------------------------------


def test_wrapping_a_wrapped_client_with_other_defaults_leaves_the_first_reference_bound(
    server: ProviderServer, sink: Memory
) -> None:
    shared = openai_client(server)
    a = usagetap.wrap(shared, customer="org_a")
    b = usagetap.wrap(shared, customer="org_b", dimensions={"plan": "pro"})
    chat(a)
    chat(b)
    assert [(r.customer, r.dimensions.get("plan")) for r in delivered(sink)] == [
        ("org_a", None),
        ("org_b", "pro"),
    ]


def test_wrapping_a_wrapped_client_returns_a_copy_sharing_its_pool_unless_the_defaults_are_the_same(
    server: ProviderServer,
) -> None:
    shared = openai_client(server)
    a = usagetap.wrap(shared, customer="org_a", dimensions={"plan": "pro"})
    b = usagetap.wrap(a, customer="org_b")
    assert a is shared and b is not a and type(b) is openai.OpenAI
    assert b._client is a._client and b.base_url == a.base_url and b.api_key == a.api_key
    assert binding_of(a).customer == "org_a" and binding_of(b).customer == "org_b"  # type: ignore[union-attr]
    assert usagetap.wrap(a, customer="org_a", dimensions={"plan": "pro"}) is a


def test_a_copy_of_a_rewrapped_client_keeps_its_new_defaults(server: ProviderServer, sink: Memory) -> None:
    shared = openai_client(server)
    a = usagetap.wrap(shared, customer="org_a")
    b = usagetap.wrap(shared, customer="org_b")
    chat(b.with_options(timeout=30))
    chat(a.with_options(timeout=30))
    assert [r.customer for r in delivered(sink)] == ["org_b", "org_a"]


class TenantClient(openai.OpenAI):
    """A client whose constructor needs an argument the SDK's copy() does not pass."""

    def __init__(self, tenant: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.tenant = tenant


def test_a_client_the_sdk_cannot_copy_is_not_rewrapped_and_keeps_its_defaults(
    server: ProviderServer, sink: Memory
) -> None:
    a = usagetap.wrap(TenantClient("t", base_url=server.openai_url, api_key="sk-test"), customer="org_a")
    with pytest.raises(TypeError, match="already wrapped with other defaults"):
        usagetap.wrap(a, customer="org_b")
    chat(a)
    assert [r.customer for r in delivered(sink)] == ["org_a"]


@pytest.mark.parametrize("sdk", SYNC)
def test_tenants_of_one_shared_client_are_each_billed_their_own_calls_from_threads(
    sdk: str, server: ProviderServer, claude_server: ProviderServer, sink: Memory
) -> None:
    build, call = SYNC[sdk]
    shared = build(claude_server if sdk == "anthropic" else server)
    tenants = {org: usagetap.wrap(shared, customer=org) for org in TENANTS}
    interleaved = [tenants[org] for _, org in itertools.product(range(ROUNDS), TENANTS)]
    with ThreadPoolExecutor(max_workers=4) as pool:
        list(pool.map(call, interleaved))
    assert per_customer(delivered(sink)) == dict.fromkeys(TENANTS, ROUNDS)


@pytest.mark.parametrize("sdk", ASYNC)
async def test_tenants_of_one_shared_async_client_are_each_billed_their_own_calls(
    sdk: str, server: ProviderServer, claude_server: ProviderServer, sink: Memory
) -> None:
    build, call = ASYNC[sdk]
    shared = build(claude_server if sdk == "anthropic" else server)
    tenants = {org: usagetap.wrap(shared, customer=org) for org in TENANTS}
    await asyncio.gather(*(call(tenants[org]) for _, org in itertools.product(range(ROUNDS), TENANTS)))
    assert per_customer(delivered(sink)) == dict.fromkeys(TENANTS, ROUNDS)


@pytest.mark.usefixtures("instrumented")
def test_rewrapped_clients_of_an_instrumented_sdk_meter_each_call_once(
    server: ProviderServer, claude_server: ProviderServer, sink: Memory
) -> None:
    shared, claude = openai_client(server), anthropic_client(claude_server)
    calls: list[tuple[Callable[[Any], Any], Any]] = []
    for org in TENANTS[:2]:
        calls += [(chat, usagetap.wrap(shared, customer=org)), (message, usagetap.wrap(claude, customer=org))]
    with usagetap.customer("org_scope"):
        chat(openai_client(server))
    for call, client in calls:
        call(client)
    assert per_customer(delivered(sink)) == {"org_scope": 1, "org_a": 2, "org_b": 2}


# -- arguments ----------------------------------------------------------------------


def test_wrap_takes_an_int_customer_as_its_decimal_string(client: openai.OpenAI, sink: Memory) -> None:
    chat(usagetap.wrap(client, customer=12345))
    assert [r.customer for r in delivered(sink)] == ["12345"]


@pytest.mark.parametrize(
    ("argument", "value", "received"),
    [
        ("customer", 4.5, "float"),
        ("customer", True, "bool"),
        ("dimensions", "plan=pro", "str"),
        ("dimensions", [("plan", "pro")], "list"),
        ("meter", 5, "int"),
        ("provider", 5, "int"),
        ("provider", b"openai", "bytes"),
    ],
)
def test_a_wrong_typed_argument_is_refused_naming_it_and_the_type_received(
    server: ProviderServer, argument: str, value: Any, received: str
) -> None:
    bare = openai_client(server)
    with pytest.raises(TypeError, match=rf"wrap\({argument}=\.\.\.\).*got {received}$"):
        usagetap.wrap(bare, **{argument: value})
    assert binding_of(bare) is None
