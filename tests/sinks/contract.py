"""Driving a sink as the delivery worker does (the real bisection and outcome table), without sleeping."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from usagetap._record import UsageRecord
from usagetap.delivery.decision import Action, decide
from usagetap.delivery.worker import send_bisecting
from usagetap.sinks.base import BaseSink, Outcomes, Sink, as_sink


@dataclass
class Delivery:
    delivered: list[str] = field(default_factory=list)
    dead: dict[str, str] = field(default_factory=dict)
    duplicates: int = 0
    sends: int = 0
    halts: list[str] = field(default_factory=list)


class _Counted(BaseSink):
    """``sink``, counting its sends."""

    def __init__(self, sink: BaseSink, delivery: Delivery, max_sends: int) -> None:
        self.sink = sink
        self.name = sink.name
        self.delivery = delivery
        self.max_sends = max_sends

    def send(self, records: Sequence[UsageRecord]) -> Outcomes:
        assert self.delivery.sends < self.max_sends, "the sink never finished the batch"
        self.delivery.sends += 1
        return self.sink.send(records)


def drive(sink: Sink, records: Sequence[UsageRecord], *, max_sends: int = 200) -> Delivery:
    """Send ``records`` with the worker's :func:`send_bisecting` until every event is delivered or dead:
    a batch refused as a whole is bisected, events to retry are resent at once. A halt stops (what is
    left stays pending). Every event must get an outcome from the sink."""
    result = Delivery()
    counted = _Counted(as_sink(sink), result, max_sends)
    todo = list(records)
    while todo:
        outcomes = send_bisecting(counted, todo, lambda kind, reason: None)
        decision = decide(outcomes, [r.event_id for r in todo])
        assert not decision.unreported, f"no outcome for {decision.unreported}"
        result.delivered += decision.of(Action.ACK)
        result.dead.update(decision.reasons)
        result.duplicates += decision.duplicates
        if decision.halt:
            result.halts.append(decision.halt)
            return result
        again = set(decision.of(Action.RETRY))
        todo = [r for r in todo if r.event_id in again]
    return result
