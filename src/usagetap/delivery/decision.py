"""What to do with each event after a ``send()``: :func:`decide` turns a sink's outcomes into actions.

One table, read by everyone who acts on outcomes (the delivery worker, the
batch bisection, ``usagetap replay``, the sinks' contract tests):

===========================================  =========================================
outcome of an event                           action
===========================================  =========================================
delivered (a duplicate too)                   ``ACK``: the backend has it
dead, with the backend's reason               ``DEAD``: a dead letter with that reason
anything else, the sink halted                ``HALT``: kept pending, the sink paused
anything else, the batch refused as a whole   ``SPLIT``: resent at once in smaller batches;
                                              the only event refused: ``DEAD``, the refusal's reason
anything else (retry, or no outcome at all)   ``RETRY``: resent after a backoff, not
                                              before ``retry_after``
===========================================  =========================================

A delivered event stays delivered whatever else the outcomes say about it; an
event the sink gave no outcome for is retried (and listed in ``unreported``).
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Optional

from ..sinks.base import Outcomes

__all__ = ["Action", "Decision", "decide"]


class Action(enum.Enum):
    """What becomes of one event after a send."""

    ACK = "ack"
    RETRY = "retry"
    SPLIT = "split"
    DEAD = "dead"
    HALT = "halt"


@dataclass(frozen=True)
class Decision:
    """The action for every event of a batch (in batch order), and what goes with them.

    ``reasons``: why each ``DEAD`` event is dead. ``unreported``: the events the
    sink said nothing about. ``halt``: why the sink cannot deliver (its
    events are ``HALT``). ``duplicates``, ``retry_after``, ``retry_reason`` and
    ``too_large`` (a ``SPLIT`` for size): as the sink reported them.
    """

    actions: dict[str, Action]
    reasons: dict[str, str] = field(default_factory=dict)
    unreported: tuple[str, ...] = ()
    halt: Optional[str] = None
    duplicates: int = 0
    retry_after: Optional[float] = None
    retry_reason: Optional[str] = None
    too_large: bool = False

    def of(self, action: Action) -> list[str]:
        """The event ids whose action is ``action``, in batch order."""
        return [event_id for event_id, found in self.actions.items() if found is action]


def decide(outcomes: Outcomes, event_ids: Iterable[str]) -> Decision:
    """The action for each of ``event_ids`` (the batch that was sent) given the sink's ``outcomes``."""
    delivered = set(outcomes.delivered)
    reported = delivered.union(outcomes.dead, outcomes.retry)
    actions: dict[str, Action] = {}
    reasons: dict[str, str] = {}
    refused: list[str] = []
    for event_id in dict.fromkeys(event_ids):
        if event_id in delivered:
            actions[event_id] = Action.ACK
        elif event_id in outcomes.dead:
            actions[event_id] = Action.DEAD
            reasons[event_id] = outcomes.dead[event_id]
        elif outcomes.halt:
            actions[event_id] = Action.HALT
        elif outcomes.split:
            actions[event_id] = Action.SPLIT
            refused.append(event_id)
        else:
            actions[event_id] = Action.RETRY
    if len(refused) == 1 and outcomes.split:
        actions[refused[0]] = Action.DEAD
        reasons[refused[0]] = outcomes.split
    return Decision(
        actions=actions,
        reasons=reasons,
        unreported=tuple(i for i in actions if i not in reported),
        halt=outcomes.halt,
        duplicates=outcomes.duplicates,
        retry_after=outcomes.retry_after,
        retry_reason=outcomes.retry_reason,
        too_large=outcomes.too_large and len(refused) > 1,
    )
