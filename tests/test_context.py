from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import openai
import pytest

import usagetap
from usagetap._context import current_scope
from usagetap.integrations._resolve import attribution
from usagetap.sinks import Memory
from usagetap.testing import ProviderServer

CHAT_COMPLETION = Path(__file__).parent / "fixtures" / "openai" / "chat_completion.json"


def test_scopes_nest_and_inner_wins() -> None:
    with usagetap.customer("outer", feature="chat", tier="pro"):
        with usagetap.customer("inner", feature="search"):
            scope = current_scope()
            assert scope.customer == "inner"
            assert dict(scope.dimensions) == {"feature": "search", "tier": "pro"}
        assert current_scope().customer == "outer"
        assert current_scope().dimensions["feature"] == "chat"
    assert current_scope().customer is None


def test_outer_scope_is_restored_after_an_exception() -> None:
    with usagetap.customer("outer"):
        with pytest.raises(RuntimeError), usagetap.customer("inner"):
            raise RuntimeError("boom")
        assert current_scope().customer == "outer"


def test_none_keeps_the_enclosing_customer_and_adds_dimensions() -> None:
    with usagetap.customer("org_1"), usagetap.customer(None, feature="export"):
        assert current_scope().customer == "org_1"
        assert current_scope().dimensions == {"feature": "export"}


def test_bad_dimension_is_rejected_at_the_scope_naming_the_key() -> None:
    with pytest.raises(TypeError, match="'payload'"):
        usagetap.customer("org_1", payload={"a": 1})


def test_an_int_customer_id_is_taken_as_its_decimal_string() -> None:
    with usagetap.customer(12345, feature="chat"):
        assert current_scope().customer == "12345"


def _wrapped(customer: Any) -> Any:
    return usagetap.wrap(
        openai.OpenAI(base_url="http://127.0.0.1:9/v1", api_key="sk-test"), customer=customer
    )


def _recorded(customer: Any) -> Any:
    return usagetap.record(json.loads(CHAT_COMPLETION.read_text()), provider="openai", customer=customer)


TAKES_A_CUSTOMER: dict[str, Callable[[Any], Any]] = {
    "customer": usagetap.customer,
    "track": lambda who: usagetap.track(customer=who),
    "wrap": _wrapped,
    "record": _recorded,
    "resolver": lambda who: attribution(who, {}),
    "limits.set": lambda who: usagetap.limits.set(who, max_tokens=10),
}


@pytest.mark.parametrize("entry", TAKES_A_CUSTOMER)
def test_a_bool_is_not_a_customer_id_anywhere(entry: str) -> None:
    with pytest.raises(TypeError, match=r"customer id must be a str, an int or None, got bool$"):
        TAKES_A_CUSTOMER[entry](True)


def test_an_empty_customer_id_is_refused_with_one_error_everywhere_but_in_a_resolver() -> None:
    for entry, take in TAKES_A_CUSTOMER.items():
        if entry != "resolver":
            with pytest.raises(ValueError, match=r"customer id must not be empty$"):
                take("")
    assert attribution("", {}) is None


def test_decorator_scopes_sync_and_async_functions() -> None:
    @usagetap.customer("deco")
    def sync() -> str | None:
        return current_scope().customer

    @usagetap.customer("adeco")
    async def run_async() -> str | None:
        await asyncio.sleep(0)
        return current_scope().customer

    assert sync() == "deco"
    assert asyncio.run(run_async()) == "adeco"
    assert current_scope().customer is None


async def test_tasks_keep_the_scope_they_were_created_in() -> None:
    async def who() -> str | None:
        await asyncio.sleep(0.01)
        return current_scope().customer

    tasks = []
    for i in range(10):
        with usagetap.customer(f"c{i}"):
            tasks.append(asyncio.create_task(who()))
    assert await asyncio.gather(*tasks) == [f"c{i}" for i in range(10)]


def test_one_scope_object_can_be_entered_from_several_threads() -> None:
    scope = usagetap.customer("shared")
    barrier = threading.Barrier(4)
    seen: list[str | None] = []

    def work() -> None:
        with scope:
            barrier.wait()
            seen.append(current_scope().customer)
        seen.append(current_scope().customer)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert seen.count("shared") == 4
    assert seen.count(None) == 4


def test_customer_decorates_generators_and_keeps_its_scope_inside_them() -> None:
    @usagetap.customer("gen")
    def gen() -> Iterator[str | None]:
        yield current_scope().customer
        yield current_scope().customer

    @usagetap.customer("agen")
    async def agen() -> AsyncIterator[str | None]:
        yield current_scope().customer
        await asyncio.sleep(0)
        yield current_scope().customer

    async def consume() -> list[str | None]:
        return [c async for c in agen()]

    with usagetap.customer("consumer"):
        it = gen()
        assert next(it) == "gen"
        assert current_scope().customer == "consumer"
        assert list(it) == ["gen"]
        assert asyncio.run(consume()) == ["agen", "agen"]
        assert current_scope().customer == "consumer"
    assert current_scope().customer is None


async def test_fifty_concurrent_tasks_each_under_its_own_customer(
    server: ProviderServer, sink: Memory
) -> None:
    client = usagetap.wrap(openai.AsyncOpenAI(base_url=server.openai_url, api_key="sk-test", max_retries=0))
    server.stream_delay = 0.001
    # the loopback server's listen backlog is small: the tasks run together, their requests 8 at a time
    connections = asyncio.Semaphore(8)

    async def work(i: int) -> None:
        with usagetap.customer(f"c{i}", task=i):
            await asyncio.sleep(0)
            async with connections:
                await client.chat.completions.create(
                    model="gpt-4.1", messages=[{"role": "user", "content": "a"}]
                )
            await asyncio.sleep(0)
            async with connections:
                stream = await client.chat.completions.create(
                    model="gpt-4.1", messages=[{"role": "user", "content": "b"}], max_tokens=3, stream=True
                )
                async for _ in stream:
                    await asyncio.sleep(0)
            assert current_scope().customer == f"c{i}"

    await asyncio.gather(*(work(i) for i in range(50)))
    assert usagetap.flush(timeout=10.0).pending == 0
    records = list(sink.records)
    assert len(records) == 100
    assert all(r.customer == f"c{r.dimensions['task']}" for r in records)
    assert sorted(r.customer or "" for r in records) == sorted(f"c{i}" for i in range(50) for _ in range(2))


def test_propagate_carries_the_customer_into_a_thread_pool(server: ProviderServer, sink: Memory) -> None:
    client = usagetap.wrap(openai.OpenAI(base_url=server.openai_url, api_key="sk-test", max_retries=0))

    def ask(n: int) -> str | None:
        client.chat.completions.create(model="gpt-4.1", messages=[{"role": "user", "content": f"q{n}"}])
        return current_scope().customer

    with usagetap.customer("org_pool", feature="batch"), ThreadPoolExecutor(max_workers=4) as pool:
        propagated = list(pool.map(usagetap.propagate(ask), range(8)))
        bare = list(pool.map(ask, range(2)))
    assert propagated == ["org_pool"] * 8
    assert bare == [None, None]  # threads do not inherit the context on their own
    assert usagetap.flush(timeout=5.0).pending == 0
    customers = sorted((r.customer or "-", r.dimensions.get("feature")) for r in sink.records)
    assert customers == [("-", None)] * 2 + [("org_pool", "batch")] * 8


def test_propagate_captures_the_context_when_called() -> None:
    with usagetap.customer("then"):
        fn = usagetap.propagate(lambda: current_scope().customer)
    with usagetap.customer("now"):
        assert fn() == "then"
    thread_result: list[str | None] = []
    t = threading.Thread(target=lambda: thread_result.append(fn()))
    t.start()
    t.join()
    assert thread_result == ["then"]


async def test_propagate_a_coroutine_function_runs_it_with_the_captured_scope() -> None:
    async def who() -> str | None:
        await asyncio.sleep(0)
        return current_scope().customer

    with usagetap.customer("captured"):
        fn = usagetap.propagate(who)
    assert await fn() == "captured"
    assert current_scope().customer is None
