"""Driving a sink the way the delivery pipeline's contract says (retry, split, halt), without sleeping."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from usagetap.record import UsageRecord
from usagetap.sinks.base import Outcomes, Sink


@dataclass
class Delivery:
    delivered: list[str] = field(default_factory=list)
    dead: dict[str, str] = field(default_factory=dict)
    duplicates: int = 0
    sends: int = 0
    halts: list[str] = field(default_factory=list)


def drive(sink: Sink, records: Sequence[UsageRecord], *, max_sends: int = 200) -> Delivery:
    """Send ``records`` until every event is delivered or dead: retries resend, a split batch goes
    in halves, a single event refused by a split is dead-lettered with the split's reason.
    A halt stops (what is left stays pending)."""
    result = Delivery()
    queue: list[list[UsageRecord]] = [list(records)]
    while queue:
        batch = queue.pop(0)
        assert result.sends < max_sends, "sink never settled"
        outcomes: Outcomes = sink.send(batch)
        result.sends += 1
        result.delivered += outcomes.delivered
        result.dead.update(outcomes.dead)
        result.duplicates += outcomes.duplicates
        settled = set(outcomes.delivered) | set(outcomes.dead)
        left = [r for r in batch if r.event_id in outcomes.retry and r.event_id not in settled]
        assert {r.event_id for r in batch} == settled | {r.event_id for r in left}, "an event got no outcome"
        if outcomes.halt:
            result.halts.append(outcomes.halt)
            return result
        if not left:
            continue
        if outcomes.split:
            if len(left) == 1:
                result.dead[left[0].event_id] = outcomes.split
            else:
                half = len(left) // 2
                queue[:0] = [left[:half], left[half:]]
        else:
            queue.insert(0, left)
    return result
