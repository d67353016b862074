"""Records as items (split by token type, in parts) and per-item answers as per-event outcomes."""

from __future__ import annotations

from tests.helpers import make_record
from usagetap.sinks._items import OutcomeTally, clean_scalars, items_for


def test_split_items_sum_to_the_total_and_skip_zero_types() -> None:
    record = make_record(input_tokens=1000, cache_read_tokens=600, cache_write_tokens=0, output_tokens=70)
    items = items_for(record, split=True)
    assert [(i.key, i.token_type, i.quantity) for i in items] == [
        (f"{record.event_id}:input", "input", 400),
        (f"{record.event_id}:cache_read", "cache_read", 600),
        (f"{record.event_id}:output", "output", 70),
    ]
    assert sum(i.quantity for i in items) == record.total_tokens


def test_total_items_and_zero_records() -> None:
    record = make_record()
    [item] = items_for(record, split=False)
    assert (item.key, item.quantity, item.token_type) == (record.event_id, 120, None)
    assert items_for(make_record(input_tokens=0, output_tokens=0), split=False) == []


def test_quantities_over_a_limit_go_in_stable_parts() -> None:
    record = make_record(input_tokens=25, output_tokens=0)
    parts = items_for(record, split=False, max_quantity=10)
    assert [(i.key, i.quantity) for i in parts] == [
        (f"{record.event_id}:part1", 10),
        (f"{record.event_id}:part2", 10),
        (f"{record.event_id}:part3", 5),
    ]
    assert parts == items_for(record, split=False, max_quantity=10)


def test_an_event_is_delivered_only_when_all_its_items_are() -> None:
    a, b, c, d = (make_record() for _ in range(4))
    tally = OutcomeTally([a, b, c, d, a])
    ia, ib, ic = (items_for(r, split=True) for r in (a, b, c))
    for item in ia:
        tally.delivered(item, duplicate=True)
    tally.delivered(ib[0])
    tally.retry(ib[1], retry_after=2)
    tally.delivered(ic[0])
    tally.dead(ic[1], "refused")
    tally.dead_event(d, "no customer")
    outcomes = tally.outcomes()
    assert outcomes.delivered == [a.event_id]
    assert outcomes.duplicates == 1
    assert outcomes.retry == [b.event_id] and outcomes.retry_after == 2
    assert outcomes.dead == {c.event_id: "refused", d.event_id: "no customer"}


def test_an_event_is_a_duplicate_only_when_every_item_was_and_reasons_are_not_repeated() -> None:
    a, b, c = (make_record(cache_read_tokens=10) for _ in range(3))
    tally = OutcomeTally([a, b, c])
    first, *rest = items_for(a, split=True)
    tally.delivered(first, duplicate=True)
    for item in rest:
        tally.delivered(item)
    for item in items_for(b, split=True):
        tally.delivered(item, duplicate=True)
    for item in items_for(c, split=True):
        tally.dead(item, "refused")
    tally.dead_event(c, "too large")
    outcomes = tally.outcomes()
    assert outcomes.delivered == [a.event_id, b.event_id]
    assert outcomes.duplicates == 1
    assert outcomes.dead == {c.event_id: "refused; too large"}


def test_clean_scalars_keeps_only_what_json_backends_take() -> None:
    cleaned = clean_scalars(
        {
            "ok": 1,
            "f": 1.5,
            "b": True,
            "nan": float("nan"),
            "inf": float("-inf"),
            "s": "a\x00b",
            "": 1,
            "long_key_" * 10: "v",
            "e": "",
            "obj": {"x": 1},
        },
        max_key=12,
        max_str=3,
        allow_empty_str=False,
    )
    assert cleaned == {"ok": 1, "f": 1.5, "b": True, "s": "ab", "long_key_lon": "v"}


def test_a_tally_merged_in_is_the_same_as_tallying_its_answers_directly() -> None:
    a, b = make_record(), make_record()
    [a_in, a_out] = items_for(a, split=True)
    [b_in, b_out] = items_for(b, split=True)
    direct = OutcomeTally([a, b])
    direct.delivered(a_in, duplicate=True)
    direct.delivered(a_out, duplicate=True)
    direct.delivered(b_in)
    direct.dead(b_out, "refused")
    merged = OutcomeTally([a, b])
    for item, answer in ((a_in, "duplicate"), (a_out, "duplicate"), (b_in, "delivered"), (b_out, "dead")):
        own = OutcomeTally([item.record])
        if answer == "dead":
            own.dead(item, "refused")
        else:
            own.delivered(item, duplicate=answer == "duplicate")
        merged.merge(own)
    assert merged.outcomes() == direct.outcomes()
    assert merged.outcomes().dead == {b.event_id: "refused"} and merged.outcomes().duplicates == 1
