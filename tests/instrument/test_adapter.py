"""instrument._adapter.Adapter: the per-SDK half, a base class whose optional members have defaults."""

from __future__ import annotations

import logging
from typing import Any, Optional

import pytest

from usagetap.instrument._adapter import Adapter
from usagetap.instrument._binding import Binding
from usagetap.instrument._calls import Call


class _Minimal(Adapter):
    def provider_for(self, client: Any) -> str:
        return "minimal"

    def plan(self, binding: Binding, options: Any) -> Optional[Call]:
        return None

    def on_result(self, call: Call, result: Any) -> Any:
        return result


def test_an_adapter_defining_the_three_required_methods_gets_the_optional_ones(
    caplog: pytest.LogCaptureFixture,
) -> None:
    adapter = _Minimal()
    call = Call.__new__(Call)
    assert adapter.fallback(call, RuntimeError("refused")) is None
    assert adapter.describe({"object": "anything"}) is None
    with caplog.at_level(logging.DEBUG, logger="usagetap"):
        adapter.note_unmetered(object())
    assert caplog.records == [], "nothing unmetered to name"


def test_an_adapter_must_define_how_to_plan_a_call() -> None:
    class NoPlan(Adapter):
        def provider_for(self, client: Any) -> str:
            return "x"

        def on_result(self, call: Call, result: Any) -> Any:
            return result

    with pytest.raises(TypeError, match="plan"):
        NoPlan()  # type: ignore[abstract]
