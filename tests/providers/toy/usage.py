"""The toy's usage extraction: pure functions over its responses and stream events."""

from __future__ import annotations

from typing import Any, Optional

from usagetap.providers.base import TokenUsage, field_of, int_of
from usagetap.providers.observer import Observer

OPERATION = "tallies"


def tally_usage(tally: Any) -> TokenUsage:
    """The usage a finished tally reports (an SDK object or its JSON)."""
    usage = field_of(tally, "usage")
    return TokenUsage(
        model=field_of(tally, "model"),
        response_id=field_of(tally, "id"),
        input_tokens=int_of(usage, "in"),
        output_tokens=int_of(usage, "out"),
    )


class TallyStreamObserver(Observer):
    """A streamed tally: its id and model come first, its usage in the ``done`` event, last."""

    __slots__ = ("done", "model", "response_id")

    def __init__(self) -> None:
        self.response_id: Optional[str] = None
        self.model: Optional[str] = None
        self.done: Any = None

    def observe(self, event: Any) -> None:
        if field_of(event, "type") == "done":
            self.done = event
        elif self.response_id is None:
            self.response_id = field_of(event, "id")
            self.model = field_of(event, "model")

    def result(self) -> TokenUsage:
        if self.done is None:
            return TokenUsage(model=self.model, response_id=self.response_id, reported=False)
        usage = field_of(self.done, "usage")
        return tally_usage({"id": self.response_id, "model": self.model, "usage": usage})
