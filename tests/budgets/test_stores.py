"""Every budget store keeps the same promises: reservations are atomic, settled, released, expire."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from usagetap.budgets.base import BudgetStore, Charge, Used
from usagetap.budgets.guard import open_store


@pytest.fixture
def store(store_target: str) -> Iterator[BudgetStore]:
    opened = open_store(store_target, timeout=5.0)
    yield opened
    opened.close()


def charge(tokens: int, max_tokens: int = 100, bucket: str = "{org_1}||day|UTC|2026-01-01") -> Charge:
    return Charge(bucket, (bucket,), tokens, 0, max_tokens, None, None)


def test_reservations_together_never_pass_the_limit(store: BudgetStore) -> None:
    assert store.reserve("a", (charge(40),), ttl=60) is None
    assert store.reserve("b", (charge(40),), ttl=60) is None
    refusal = store.reserve("c", (charge(40),), ttl=60)
    assert refusal is not None and refusal.index == 0
    assert (refusal.used.tokens, refusal.used.held_tokens) == (0, 80)
    assert store.reserve("d", (charge(20),), ttl=60) is None  # exactly up to the limit


def test_a_refused_reservation_reserves_nothing_in_any_bucket(store: BudgetStore) -> None:
    roomy = charge(50, max_tokens=1000, bucket="{org_1}|chat|day|UTC|2026-01-01")
    refusal = store.reserve("a", (roomy, charge(150)), ttl=60)
    assert refusal is not None and refusal.index == 1
    assert store.used(roomy.window) == Used()


def test_settling_replaces_the_reservation_with_the_actual_usage(store: BudgetStore) -> None:
    held = (charge(90),)
    assert store.reserve("a", held, ttl=60) is None
    store.settle("a", held, Used(calls=1, tokens=12, nanos=3400, unpriced=0))
    assert store.used(held[0].window) == Used(calls=1, tokens=12, nanos=3400)
    assert store.reserve("b", (charge(88),), ttl=60) is None


def test_releasing_frees_the_reservation(store: BudgetStore) -> None:
    held = (charge(90),)
    assert store.reserve("a", held, ttl=60) is None
    store.release("a", held)
    assert store.used(held[0].window) == Used()
    assert store.reserve("b", (charge(100),), ttl=60) is None


def test_a_rolling_window_sums_its_buckets(store: BudgetStore) -> None:
    slots = ("{org_1}||rolling:3600|1", "{org_1}||rolling:3600|2")
    old = Charge(slots[0], slots[:1], 30, 0, 100, None, None)
    store.settle("a", (old,), Used(calls=1, tokens=70))
    now = Charge(slots[1], slots, 31, 0, 100, None, None)
    refusal = store.reserve("b", (now,), ttl=60)
    assert refusal is not None and refusal.used.tokens == 70
    assert store.reserve("c", (Charge(slots[1], slots, 30, 0, 100, None, None),), ttl=60) is None


def test_a_cost_limit_counts_nano_dollars(store: BudgetStore) -> None:
    bucket = "{org_1}||month|UTC|2026-01-01"
    priced = Charge(bucket, (bucket,), 0, 600, None, 1000, None)
    assert store.reserve("a", (priced,), ttl=60) is None
    refusal = store.reserve("b", (priced,), ttl=60)
    assert refusal is not None and refusal.used.held_nanos == 600


def test_an_expired_reservation_no_longer_counts(store: BudgetStore) -> None:
    assert store.reserve("crashed", (charge(100),), ttl=0.3) is None
    assert store.reserve("next", (charge(1),), ttl=60) is not None
    time.sleep(0.6)
    assert store.reserve("next", (charge(100),), ttl=60) is None


def test_every_key_a_redis_script_touches_is_in_the_customers_cluster_slot(redis_url: str) -> None:
    from datetime import datetime, timedelta, timezone

    from redis.crc import key_slot

    from usagetap.budgets.guard import charge_for
    from usagetap.limits import Limit

    store = open_store(redis_url, timeout=5.0)
    touched: list[list[str]] = []
    run = store._run  # type: ignore[attr-defined]

    def spy(script: object, keys: list[str], args: list[object]) -> object:
        touched.append(list(keys))
        return run(script, keys, args)

    store._run = spy  # type: ignore[attr-defined]
    limits = [
        Limit(max_tokens=1000, period="day"),
        Limit(max_cost=5, period="month"),
        Limit(max_tokens=500, period="rolling", window=timedelta(hours=5)),
        Limit(max_tokens=100, period="day", feature="search"),
    ]
    now = datetime.now(timezone.utc)
    charges = tuple(charge_for("org_7", limit, now, tokens=10)[0] for limit in limits)
    try:
        assert store.reserve("h1", charges, ttl=60) is None
        store.settle("h1", charges, Used(calls=1, tokens=5))
        assert store.reserve("h2", charges, ttl=60) is None
        store.release("h2", charges)
        store.used(charges[2].window)
    finally:
        store.close()
    assert len(touched) == 5
    slots = {key_slot(key.encode()) for keys in touched for key in keys}
    assert slots == {key_slot(b"{org_7}")}  # one slot: Redis Cluster runs each script on one node
