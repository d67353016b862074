"""Shared builders for tests."""

from __future__ import annotations

import importlib
from datetime import datetime, timezone
from types import ModuleType
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


def http_module(sdk: ModuleType) -> ModuleType:
    """The HTTP library an SDK's base client imports: httpx2 (openai 3.x, anthropic 2.x) or httpx."""
    base = importlib.import_module(sdk.__name__ + "._base_client")
    return importlib.import_module("httpx2" if hasattr(base, "httpx2") else "httpx")


def answering(sdk: ModuleType, body: bytes, content_type: str = "application/json") -> Any:
    """An ``http_client`` for ``sdk`` that answers every request with ``body`` (status 200), offline."""
    hx = http_module(sdk)

    def handler(request: Any) -> Any:
        return hx.Response(200, headers={"content-type": content_type}, content=body)

    return hx.Client(transport=hx.MockTransport(handler))
