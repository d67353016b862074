"""decide(): every kind of outcome a sink reports, and the action it gets."""

from __future__ import annotations

from typing import Optional

import pytest

from usagetap.delivery.decision import Action, decide
from usagetap.sinks.base import Outcomes

A, R, S, D, H = Action.ACK, Action.RETRY, Action.SPLIT, Action.DEAD, Action.HALT

# (outcomes for the batch e1, e2, e3; the action of each; the dead reasons)
TABLE: list[tuple[str, Outcomes, list[Action], dict[str, str]]] = [
    ("delivered", Outcomes(delivered=["e1", "e2", "e3"]), [A, A, A], {}),
    ("duplicates are delivered", Outcomes(delivered=["e1", "e2", "e3"], duplicates=2), [A, A, A], {}),
    ("retry", Outcomes(retry=["e1", "e2", "e3"]), [R, R, R], {}),
    ("retry after", Outcomes(retry=["e1", "e2", "e3"], retry_after=30.0), [R, R, R], {}),
    (
        "dead",
        Outcomes(dead={"e1": "bad", "e2": "worse", "e3": "worst"}),
        [D, D, D],
        {"e1": "bad", "e2": "worse", "e3": "worst"},
    ),
    ("mixed", Outcomes(delivered=["e1"], retry=["e2"], dead={"e3": "bad"}), [A, R, D], {"e3": "bad"}),
    ("split", Outcomes(retry=["e1", "e2", "e3"], split="HTTP 422"), [S, S, S], {}),
    ("split for size", Outcomes(retry=["e1", "e2", "e3"], split="HTTP 413", too_large=True), [S, S, S], {}),
    (
        "split beside settled events",
        Outcomes(delivered=["e1"], dead={"e2": "bad"}, retry=["e3"], split="HTTP 422"),
        [A, D, D],
        {"e2": "bad", "e3": "HTTP 422"},
    ),
    ("halt", Outcomes(retry=["e1", "e2", "e3"], halt="HTTP 401"), [H, H, H], {}),
    ("halt over split", Outcomes(retry=["e1", "e2", "e3"], halt="HTTP 401", split="HTTP 422"), [H, H, H], {}),
    (
        "halt keeps the delivered",
        Outcomes(delivered=["e1"], retry=["e2", "e3"], halt="meter missing"),
        [A, H, H],
        {},
    ),
    ("no outcome: retry", Outcomes(delivered=["e1"]), [A, R, R], {}),
    ("delivered wins over dead", Outcomes(delivered=["e1", "e2", "e3"], dead={"e1": "bad"}), [A, A, A], {}),
    (
        "dead wins over retry",
        Outcomes(retry=["e1", "e2", "e3"], dead={"e1": "bad"}),
        [D, R, R],
        {"e1": "bad"},
    ),
]


@pytest.mark.parametrize(
    ("outcomes", "actions", "reasons"), [row[1:] for row in TABLE], ids=[row[0] for row in TABLE]
)
def test_each_outcome_gets_its_action(
    outcomes: Outcomes, actions: list[Action], reasons: dict[str, str]
) -> None:
    decision = decide(outcomes, ["e1", "e2", "e3"])
    assert list(decision.actions.items()) == list(zip(["e1", "e2", "e3"], actions, strict=True))
    assert decision.reasons == reasons


def test_the_only_event_refused_with_its_batch_is_dead_with_the_refusals_reason() -> None:
    decision = decide(Outcomes.split_batch([], "HTTP 422: bad"), ["e1"])
    assert decision.actions == {"e1": Action.DEAD}
    assert decision.reasons == {"e1": "HTTP 422: bad"}


def test_events_without_an_outcome_are_listed_as_unreported() -> None:
    assert decide(Outcomes(delivered=["e1"], retry=["e2"]), ["e1", "e2", "e3"]).unreported == ("e3",)


def test_an_event_sent_twice_in_a_batch_gets_one_action() -> None:
    assert decide(Outcomes(delivered=["e1"]), ["e1", "e1"]).actions == {"e1": Action.ACK}


@pytest.mark.parametrize(
    ("too_large", "refused", "expected"), [(True, 3, True), (True, 1, False), (False, 3, False)]
)
def test_too_large_is_kept_only_for_a_batch_to_split(too_large: bool, refused: int, expected: bool) -> None:
    ids = [f"e{n}" for n in range(refused)]
    outcomes = Outcomes(retry=ids, split="HTTP 413", too_large=too_large)
    assert decide(outcomes, ids).too_large is expected


def test_the_batchs_facts_go_with_the_actions() -> None:
    halt: Optional[str] = "HTTP 401"
    outcomes = Outcomes(
        delivered=["e1"], retry=["e2"], duplicates=1, retry_after=7.0, retry_reason="HTTP 503", halt=halt
    )
    decision = decide(outcomes, ["e1", "e2"])
    assert (decision.halt, decision.duplicates, decision.retry_after, decision.retry_reason) == (
        halt,
        1,
        7.0,
        "HTTP 503",
    )
    assert decision.of(Action.ACK) == ["e1"] and decision.of(Action.HALT) == ["e2"]
