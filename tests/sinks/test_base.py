"""The sink interface: BaseSink's defaults, and a sink with only ``name`` and ``send()`` adapted to it."""

from __future__ import annotations

import threading
from collections.abc import Sequence

import pytest

import usagetap
from tests.helpers import make_record
from usagetap import _stats
from usagetap._record import UsageRecord
from usagetap.delivery.worker import batch_limit, in_flight_limit
from usagetap.errors import ConfigurationError
from usagetap.sinks import HTTP, Ledger, Memory, OpenMeter, OpenSpanner, SolvaPay, Spaire, Stripe
from usagetap.sinks._env import Unbuildable
from usagetap.sinks.base import BaseSink, Outcomes, SinkAdapter, as_sink, is_sink


class SendOnly:
    """A sink written to the documented contract and nothing more: a name and send()."""

    name = "send-only"

    def __init__(self) -> None:
        self.received: list[str] = []
        self.lock = threading.Lock()

    def send(self, records: Sequence[UsageRecord]) -> Outcomes:
        with self.lock:
            self.received += [r.event_id for r in records]
        return Outcomes.all_delivered(records)


class Declaring(SendOnly):
    """A duck-typed sink that declares the optional members too."""

    name = "declaring"
    max_batch = 3
    max_in_flight = 2
    local = True

    def __init__(self) -> None:
        super().__init__()
        self.closed = 0
        self.forked = 0

    def close(self) -> None:
        self.closed += 1

    def after_fork(self) -> None:
        self.forked += 1


def test_a_sink_with_only_name_and_send_gets_every_default() -> None:
    sink = as_sink(SendOnly())
    assert (sink.name, sink.max_batch, sink.max_in_flight, sink.local, sink.unavailable) == (
        "send-only",
        None,
        1,
        False,
        None,
    )
    sink.close()
    sink.after_fork()


def test_a_sink_without_max_batch_takes_the_pipelines_batch_size() -> None:
    assert batch_limit(as_sink(SendOnly()), 250) == 250


def test_the_adapter_sends_through_the_sink() -> None:
    inner = SendOnly()
    records = [make_record(), make_record()]
    assert as_sink(inner).send(records).delivered == [r.event_id for r in records]
    assert inner.received == [r.event_id for r in records]


def test_the_optional_members_a_duck_typed_sink_declares_are_used() -> None:
    inner = Declaring()
    sink = as_sink(inner)
    assert (batch_limit(sink, 500), in_flight_limit(sink), sink.local) == (3, 2, True)
    sink.close()
    sink.after_fork()
    assert (inner.closed, inner.forked) == (1, 1)


def test_a_base_sink_is_used_as_it_is() -> None:
    memory = Memory()
    assert as_sink(memory) is memory


def test_base_sink_defaults_need_no_override() -> None:
    class Minimal(BaseSink):
        name = "minimal"

        def send(self, records: Sequence[UsageRecord]) -> Outcomes:
            return Outcomes.all_delivered(records)

    sink = Minimal()
    assert (sink.max_batch, sink.max_in_flight, sink.local, sink.unavailable) == (None, 1, False, None)
    sink.close()
    sink.after_fork()
    assert not isinstance(as_sink(sink), SinkAdapter)


@pytest.mark.parametrize("candidate", [object(), "memory", type("Nameless", (), {"send": print})()])
def test_something_without_a_name_and_send_is_no_sink(candidate: object) -> None:
    assert not is_sink(candidate)
    with pytest.raises(ConfigurationError, match="is not a sink"):
        as_sink(candidate)  # type: ignore[arg-type]


def test_every_sink_of_the_library_derives_from_base_sink() -> None:
    for cls in (HTTP, Ledger, Memory, OpenMeter, OpenSpanner, SolvaPay, Spaire, Stripe, Unbuildable):
        assert issubclass(cls, BaseSink), cls


def test_an_unbuildable_sink_says_why_it_is_unavailable() -> None:
    sink = Unbuildable("spaire", "USAGETAP_API_KEY is missing")
    assert sink.unavailable == "USAGETAP_API_KEY is missing"
    assert sink.send([make_record()]).halt == "USAGETAP_API_KEY is missing"


def test_a_send_only_sink_is_delivered_to_and_shut_down_without_an_internal_error() -> None:
    sink = SendOnly()
    usagetap.configure(sink=sink, durability="memory", flush_interval=0.01)
    completion = {
        "id": "chatcmpl-base-1",
        "object": "chat.completion",
        "model": "gpt-4.1",
        "choices": [],
        "usage": {"prompt_tokens": 12, "completion_tokens": 3, "total_tokens": 15},
    }
    usagetap.record(completion, provider="openai", customer="org_9")
    assert usagetap.flush(timeout=10.0).pending == 0
    usagetap.shutdown(timeout=5.0)
    assert len(sink.received) == 1
    assert _stats.snapshot().get("internal_errors", 0) == 0
