"""Runs: ``usagetap.track()`` totals, through the real ``openai`` SDK against the loopback provider."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal

import openai
import pytest

import usagetap
from usagetap._context import current_scope
from usagetap._runs import Run
from usagetap.sinks import Memory
from usagetap.testing import ProviderServer

MESSAGES = [{"role": "user", "content": "Tell me about metering"}]
TOKEN_FIELDS = (
    "input_tokens",
    "output_tokens",
    "cache_read_tokens",
    "cache_write_tokens",
    "reasoning_tokens",
)


@pytest.fixture
def client(server: ProviderServer) -> openai.OpenAI:
    return usagetap.wrap(openai.OpenAI(base_url=server.openai_url, api_key="sk-test", max_retries=0))


@pytest.fixture
def aclient(server: ProviderServer) -> openai.AsyncOpenAI:
    return usagetap.wrap(openai.AsyncOpenAI(base_url=server.openai_url, api_key="sk-test", max_retries=0))


def delivered(sink: Memory) -> list[usagetap.UsageRecord]:
    assert usagetap.flush(timeout=5.0).pending == 0
    return list(sink.records)


def chat(client: openai.OpenAI, model: str = "gpt-4.1", max_tokens: int = 12) -> str:
    return client.chat.completions.create(model=model, messages=MESSAGES, max_tokens=max_tokens).id


def assert_totals_match(run: Run, records: list[usagetap.UsageRecord]) -> None:
    assert run.calls == len(records)
    for name in TOKEN_FIELDS:
        assert getattr(run, name) == sum(getattr(r, name) for r in records), name


async def test_run_totals_equal_the_sum_of_its_records_over_sync_async_streamed_task_and_thread_calls(
    client: openai.OpenAI, aclient: openai.AsyncOpenAI, server: ProviderServer, sink: Memory
) -> None:
    long_prompt = [{"role": "user", "content": "cache me " * 100}]
    with usagetap.track(customer="org_run", feature="research") as run:
        assert usagetap.current_run() is run
        client.chat.completions.create(model="o4-mini", messages=long_prompt, max_tokens=20)
        assert run.calls == 1 and run.input_tokens > 0  # counted as soon as the call returns
        client.chat.completions.create(model="o4-mini", messages=long_prompt, max_tokens=20)
        assert run.calls == 2 and run.cache_read_tokens > 0 and run.reasoning_tokens > 0

        await aclient.chat.completions.create(model="gpt-4.1", messages=MESSAGES, max_tokens=7)
        assert run.calls == 3

        for _ in client.chat.completions.create(model="gpt-4.1", messages=MESSAGES, stream=True):
            pass
        assert run.calls == 4
        stream = await aclient.chat.completions.create(
            model="gpt-4.1-mini", messages=MESSAGES, max_tokens=5, stream=True
        )
        async for _ in stream:
            pass
        assert run.calls == 5

        async def in_a_task() -> None:
            await aclient.chat.completions.create(model="gpt-4.1-mini", messages=MESSAGES)

        await asyncio.gather(asyncio.create_task(in_a_task()), asyncio.create_task(in_a_task()))
        assert run.calls == 7

        with ThreadPoolExecutor(max_workers=2) as pool:
            list(pool.map(usagetap.propagate(chat), [client, client]))
        assert run.calls == 9

    records = [r for r in delivered(sink) if r.run_id == run.id]
    assert len(records) == 9 == len(server.issued)
    assert {r.customer for r in records} == {"org_run"}
    assert {r.dimensions["feature"] for r in records} == {"research"}
    assert_totals_match(run, records)
    issued = server.totals([r.response_id for r in records if r.response_id])
    for name in TOKEN_FIELDS:
        assert getattr(run, name) == issued[name], name
    assert all(r.cost is not None for r in records)
    assert run.cost == sum((r.cost for r in records if r.cost is not None), Decimal(0))
    assert run.cost is not None and run.cost > 0
    assert not run.running and run.duration > 0


def test_nested_runs_roll_up_into_their_parent(client: openai.OpenAI, sink: Memory) -> None:
    with usagetap.track(customer="org_1") as outer:
        chat(client)
        with usagetap.track(step="search") as inner:
            assert inner.parent is outer and inner.customer == "org_1"
            chat(client)
            chat(client)
        assert inner.calls == 2 and outer.calls == 3
        assert outer.input_tokens == inner.input_tokens + outer.records[0].input_tokens
    records = delivered(sink)
    by_run = {r.run_id: [] for r in records}  # type: dict[str | None, list[usagetap.UsageRecord]]
    for r in records:
        by_run[r.run_id].append(r)
    assert len(by_run[outer.id]) == 1 and by_run[outer.id][0].parent_run_id is None
    assert len(by_run[inner.id]) == 2
    assert {r.parent_run_id for r in by_run[inner.id]} == {outer.id}
    assert all(r.dimensions["step"] == "search" for r in by_run[inner.id])
    assert_totals_match(outer, records)
    assert_totals_match(inner, by_run[inner.id])
    assert outer.cost == sum((r.cost for r in records if r.cost is not None), Decimal(0))


def test_records_outside_any_run_have_no_run_id(client: openai.OpenAI, sink: Memory) -> None:
    with usagetap.customer("org_1"):
        chat(client)
    [record] = delivered(sink)
    assert record.run_id is None and record.parent_run_id is None
    assert usagetap.current_run() is None


def test_track_decorates_a_sync_function_with_a_customer_from_its_arguments(
    client: openai.OpenAI, sink: Memory
) -> None:
    runs: list[Run] = []

    @usagetap.track(customer=lambda user_id, **_: user_id, feature="summarize")
    def summarize(user_id: str, text: str) -> str:
        run = usagetap.current_run()
        assert run is not None and run.name is not None and run.name.endswith("summarize")
        runs.append(run)
        return chat(client)

    summarize("u1", text="a")
    summarize(user_id="u2", text="b")
    records = delivered(sink)
    assert [r.customer for r in records] == ["u1", "u2"]
    assert [r.run_id for r in records] == [runs[0].id, runs[1].id]
    assert all(not run.running and run.calls == 1 for run in runs)
    assert usagetap.current_run() is None


async def test_track_decorates_an_async_function(aclient: openai.AsyncOpenAI, sink: Memory) -> None:
    @usagetap.track(customer=lambda org, **_: f"org_{org}")
    async def answer(org: int, question: str) -> Run:
        await aclient.chat.completions.create(model="gpt-4.1", messages=MESSAGES)
        await aclient.chat.completions.create(model="gpt-4.1", messages=MESSAGES)
        run = usagetap.current_run()
        assert run is not None
        return run

    first, second = await asyncio.gather(answer(1, "q"), answer(2, question="q"))
    assert first is not second and first.calls == 2 and second.calls == 2
    records = delivered(sink)
    assert {r.customer for r in records if r.run_id == first.id} == {"org_1"}
    assert {r.customer for r in records if r.run_id == second.id} == {"org_2"}


def test_track_decorates_a_generator_and_keeps_its_scope_inside_it(
    client: openai.OpenAI, sink: Memory
) -> None:
    @usagetap.track(customer=lambda user_id: user_id, feature="stream")
    def pages(user_id: str) -> Iterator[Run]:
        for _ in range(2):
            chat(client)
            run = usagetap.current_run()
            assert run is not None and current_scope().customer == user_id
            yield run

    with usagetap.customer("consumer"):
        gen = pages("gen_user")
        run = next(gen)
        assert current_scope().customer == "consumer"  # the generator's scope stays inside it
        assert usagetap.current_run() is None
        chat(client)  # the consumer's own call, between steps: not part of the run
        assert run.running and run.calls == 1
        assert list(gen) == [run]
    assert not run.running and run.calls == 2
    records = delivered(sink)
    assert [r.customer for r in records] == ["gen_user", "consumer", "gen_user"]
    assert [r.run_id for r in records] == [run.id, None, run.id]


def test_a_generator_closed_early_ends_its_run_without_error(client: openai.OpenAI, sink: Memory) -> None:
    runs: list[Run | None] = []

    @usagetap.track(customer="org_g")
    def numbers() -> Iterator[int]:
        runs.append(usagetap.current_run())
        with usagetap.customer(None, phase="inner"):
            for i in range(10):
                chat(client)
                yield i

    gen = numbers()
    assert next(gen) == 0 and next(gen) == 1
    [run] = runs
    assert run is not None
    gen.close()
    assert not run.running and run.error is None and run.calls == 2
    assert current_scope().customer is None
    assert all(r.dimensions["phase"] == "inner" for r in delivered(sink))


def test_exceptions_thrown_into_a_tracked_generator_reach_it() -> None:
    seen: list[str] = []

    @usagetap.track(customer="org_g")
    def worker() -> Iterator[str]:
        try:
            yield "ready"
        except KeyError as exc:
            seen.append(str(exc))
            yield "recovered"

    gen = worker()
    assert next(gen) == "ready"
    assert gen.throw(KeyError("k")) == "recovered"
    assert seen == ["'k'"]


async def test_track_decorates_an_async_generator(aclient: openai.AsyncOpenAI, sink: Memory) -> None:
    @usagetap.track(customer=lambda user_id: user_id)
    async def tokens(user_id: str) -> AsyncIterator[Run]:
        for _ in range(3):
            await aclient.chat.completions.create(model="gpt-4.1", messages=MESSAGES)
            run = usagetap.current_run()
            assert run is not None and current_scope().customer == user_id
            yield run

    seen = [run async for run in tokens("agen_user")]
    assert current_scope().customer is None and usagetap.current_run() is None
    run = seen[0]
    assert seen == [run] * 3 and run.calls == 3 and not run.running
    records = delivered(sink)
    assert {r.customer for r in records} == {"agen_user"} and {r.run_id for r in records} == {run.id}


def test_a_callable_customer_needs_a_decorated_function() -> None:
    with pytest.raises(TypeError, match="decorator"), usagetap.track(customer=lambda x: x):
        pass


def test_a_customer_callable_returning_an_int_bills_its_decimal_string(
    client: openai.OpenAI, sink: Memory
) -> None:
    @usagetap.track(customer=lambda org, **_: org)
    def f(org: int) -> str:
        return chat(client)

    f(3)
    assert [r.customer for r in delivered(sink)] == ["3"]


def test_a_customer_callable_returning_another_type_is_refused_naming_it() -> None:
    @usagetap.track(customer=lambda n: n)
    def f(n: float) -> None:
        pass

    with pytest.raises(TypeError, match="customer id must be a str, an int or None, got float"):
        f(3.5)


def test_an_int_customer_of_a_run_is_taken_as_its_decimal_string(client: openai.OpenAI, sink: Memory) -> None:
    with usagetap.track(customer=7) as run:
        chat(client)
    assert run.customer == "7" and [r.customer for r in delivered(sink)] == ["7"]


def test_bad_dimensions_are_rejected_at_the_run_naming_the_key() -> None:
    with pytest.raises(TypeError, match="'tags'"):
        usagetap.track(customer="org_1", tags=["a"])


def test_a_failing_run_records_the_error_type_and_still_ends(client: openai.OpenAI, sink: Memory) -> None:
    with pytest.raises(ValueError), usagetap.track(customer="org_1") as run:
        chat(client)
        raise ValueError("boom")
    assert run.error == "ValueError" and not run.running and run.calls == 1
    assert current_scope().customer is None


def test_unknown_model_makes_the_run_cost_unknown_never_zero(server: ProviderServer, sink: Memory) -> None:
    with ProviderServer(impersonate=None) as compat:
        local = usagetap.wrap(openai.OpenAI(base_url=compat.openai_url, api_key="k", max_retries=0))
        with usagetap.track(customer="org_1") as run:
            chat(local, model="my-private-model")
        assert run.cost is None and run.unpriced_calls == 1 and run.calls == 1
        assert run.summary()["cost"] is None


def test_an_empty_run_costs_zero() -> None:
    with usagetap.track(customer="org_1") as run:
        pass
    assert run.calls == 0 and run.cost == 0 and run.input_tokens == 0


def test_one_track_object_entered_from_several_threads_gives_one_run_each() -> None:
    tracker = usagetap.track(customer="shared")
    barrier = threading.Barrier(4)
    runs: list[Run] = []

    def work() -> None:
        with tracker as run:
            barrier.wait()
            assert usagetap.current_run() is run
            runs.append(run)
        assert usagetap.current_run() is None

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len({run.id for run in runs}) == 4
    assert all(not run.running for run in runs)


def test_manual_records_join_the_run_in_scope(client: openai.OpenAI, sink: Memory) -> None:
    raw = openai.OpenAI(base_url=client.base_url, api_key="sk-test", max_retries=0)
    completion = raw.chat.completions.create(model="gpt-4.1", messages=MESSAGES)
    with usagetap.track(customer="org_m") as run:
        usagetap.record(completion)
    [record] = delivered(sink)
    assert record.run_id == run.id and record.customer == "org_m"
    assert run.calls == 1 and run.input_tokens == record.input_tokens
