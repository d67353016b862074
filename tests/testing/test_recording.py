"""``testing.recording()``: a fresh memory sink inside the block, the configuration before it after."""

from __future__ import annotations

import usagetap
from tests.helpers import deliver, make_record
from usagetap import _customer_policy, _runtime, _switch
from usagetap.sinks import Memory
from usagetap.testing import recording


def test_records_after_the_block_go_to_the_sink_configured_before_it() -> None:
    before = Memory()
    usagetap.configure(sink=before, batch_size=7)
    deliver(make_record(event_id="before"))
    with recording() as inside:
        deliver(make_record(event_id="inside"))
    deliver(make_record(event_id="after"))
    assert usagetap.flush(timeout=5.0).pending == 0
    assert [r.event_id for r in inside.records] == ["inside"]
    assert [r.event_id for r in before.records] == ["before", "after"]
    assert _runtime.get_pipeline().settings.batch_size == 7


def test_with_nothing_configured_before_the_default_ledger_is_back_after_the_block() -> None:
    with recording(flush_interval=0.01) as inside:
        deliver(make_record(event_id="inside"))
    deliver(make_record(event_id="after"))
    usagetap.flush(timeout=5.0)
    pipeline = _runtime.get_pipeline()
    assert [sink.name for sink in pipeline.sinks] == ["ledger"]
    assert pipeline.settings.flush_interval != 0.01
    assert [r.event_id for r in inside.records] == ["inside"]


def test_nested_blocks_each_restore_the_one_outside() -> None:
    with recording() as outer:
        with recording() as inner:
            deliver(make_record(event_id="inner"))
        deliver(make_record(event_id="outer"))
        usagetap.flush(timeout=5.0)
        assert [r.event_id for r in outer.records] == ["outer"]
    assert [r.event_id for r in inner.records] == ["inner"]


def test_the_customer_policy_set_inside_the_block_is_undone_after_it() -> None:
    usagetap.configure(customer_policy="require")
    with recording():
        usagetap.configure(customer_policy="allow")
        assert _customer_policy.customer_policy() == "allow"
    assert _customer_policy.customer_policy() == "require"


def test_metering_turned_off_inside_the_block_is_back_on_after_it() -> None:
    with recording():
        usagetap.configure(enabled=False)
    assert _switch.enabled is True
