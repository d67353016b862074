"""Helpers shared by the benchmarks: loopback servers in their own process, workloads, RSS, machine."""

from __future__ import annotations

import contextlib
import importlib
import os
import platform
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))


@contextlib.contextmanager
def provider_process(fast: bool = True) -> Iterator[str]:
    """Start the loopback provider in a child process; yield its base URL.

    ``fast``: ``bench/_provider.py`` (the wire formats of ``usagetap.testing``, pre-encoded, on one
    asyncio loop; it also answers ``200 {}`` to any other POST, so it doubles as a fast receiver);
    else ``python -m usagetap.testing`` (http.server, a thread per connection).
    """
    if fast:
        command = [sys.executable, os.path.join(HERE, "_provider.py")]
    else:
        command = [sys.executable, "-m", "usagetap.testing"]
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        url = proc.stdout.readline().strip()
        if not url.startswith("http"):
            raise RuntimeError("loopback provider did not start")
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def in_temp_dir(label: str) -> str:
    """Work in a fresh temporary directory (the ledger and the spool go there)."""
    path = tempfile.mkdtemp(prefix=f"usagetap-bench-{label}-")
    os.chdir(path)
    return path


def completion(i: int) -> dict[str, Any]:
    """A chat completion's JSON as the provider sends it; token counts vary (as prices' memo would see)."""
    return {
        "id": f"chatcmpl-bench{i:012d}",
        "object": "chat.completion",
        "created": 1_767_225_600,
        "model": "gpt-4.1-2025-04-14",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "ok"}, "finish_reason": "stop"}],
        "usage": {
            "prompt_tokens": 1000 + i % 4000,
            "completion_tokens": 50 + i % 997,
            "total_tokens": 1050 + i % 4000 + i % 997,
            "prompt_tokens_details": {"cached_tokens": (i % 7) * 64},
        },
    }


class ChatCalls:
    """Chat completions metered as a wrapped OpenAI client meters them, without HTTP.

    ``new()`` plans a call; ``emit(source)`` queues the usage of a completion's JSON (extraction
    and the record happen on the intake thread).
    """

    def __init__(self) -> None:
        from usagetap.instrument._binding import Binding
        from usagetap.providers.openai.usage import chat_usage

        adapter: Any = importlib.import_module("usagetap.providers.openai.adapter")
        self.adapter = adapter.ADAPTER
        self._binding = Binding(adapter=self.adapter, provider="openai")
        self._call, self._emit, self._usage = adapter.OpenAICall, adapter.emit, chat_usage

    def new(self) -> Any:
        return self._call(self._binding, "chat", "gpt-4.1", False, None)

    def emit(self, source: dict[str, Any]) -> None:
        self._emit(self.new(), self._usage, source)


def rss_bytes() -> int:
    """Resident set size of this process (Linux)."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def median_ratio(wrapped: list[float], bare: list[float]) -> float:
    return statistics.median(wrapped) / statistics.median(bare)


def machine() -> str:
    return f"{os.cpu_count()} cores, Python {platform.python_version()}, {platform.machine()}"
