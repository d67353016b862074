"""providers.observer.Observer: what a stream observer may ask of a stream tap, with defaults."""

from __future__ import annotations

from typing import Any, Optional

import pytest

from usagetap.providers.base import TokenUsage
from usagetap.providers.observer import Observer


class _Counting(Observer):
    __slots__ = ("items",)

    def __init__(self) -> None:
        self.items = 0

    def observe(self, item: Any) -> None:
        self.items += 1

    def result(self) -> Optional[TokenUsage]:
        return TokenUsage(input_tokens=self.items)


def test_an_observer_defining_only_observe_and_result_gets_every_default() -> None:
    observer = _Counting()
    assert (observer.kinds, observer.tail, observer.usage_final) == (None, 0, True)
    assert observer.wants_more() is False
    assert observer.hidden({"usage": {}}) is False


def test_an_observer_must_define_observe_and_result() -> None:
    class Partial(Observer):
        def observe(self, item: Any) -> None:
            return None

    with pytest.raises(TypeError, match="result"):
        Partial()  # type: ignore[abstract]
