"""Shared builders for tests."""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
import textwrap
from collections.abc import Mapping
from datetime import datetime, timezone
from pathlib import Path
from types import ModuleType
from typing import Any, Optional

from usagetap._record import UsageRecord, new_event_id


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


def run_script(
    code: str, cwd: Path, env: Optional[Mapping[str, str]] = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """Run ``code`` in a fresh interpreter in ``cwd``, with no ``USAGETAP_*`` variable but ``env``'s."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("USAGETAP_")}
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        env={**base, **(env or {})},
    )


def deliver(record: UsageRecord) -> None:
    """Validate ``record`` and publish it as a finished call: the path ``usagetap.record()`` takes."""
    from usagetap.delivery.intake import Capture
    from usagetap.publish import publish

    publish(Capture.of(record.validate()))
