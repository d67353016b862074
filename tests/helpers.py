"""Shared builders for tests."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from usagetap.record import UsageRecord, new_event_id


def make_record(**overrides: Any) -> UsageRecord:
    values: dict = {
        "event_id": new_event_id(),
        "timestamp": datetime.now(timezone.utc),
        "customer": "org_1",
        "provider": "openai",
        "model": "gpt-4.1",
        "request_model": "gpt-4.1",
        "operation": "chat",
        "input_tokens": 100,
        "output_tokens": 20,
    }
    values.update(overrides)
    return UsageRecord(**values)
