from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

FIXTURES = Path(__file__).parent.parent / "fixtures"


def _load_json(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text())


def _load_sse(name: str) -> list[Any]:
    """The JSON payloads of an SSE recording, without the ``[DONE]`` sentinel."""
    events = []
    for block in (FIXTURES / name).read_text().split("\n\n"):
        data = "\n".join(line[5:].strip() for line in block.splitlines() if line.startswith("data:"))
        if data and data != "[DONE]":
            events.append(json.loads(data))
    return events


@pytest.fixture
def load_json() -> Callable[[str], Any]:
    return _load_json


@pytest.fixture
def load_sse() -> Callable[[str], list[Any]]:
    return _load_sse
