from __future__ import annotations

import asyncio

import pytest

import usagetap
from usagetap.context import current_scope


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


def test_customer_id_must_be_a_string() -> None:
    with pytest.raises(TypeError):
        usagetap.customer(42)  # type: ignore[arg-type]


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
    import threading

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
