"""The toy's adapter: ``POST /v1/tallies`` is billable, streamed or not."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Optional

from tests.providers.toy_sdk import Stream, Tally
from usagetap.instrument._adapter import Adapter
from usagetap.instrument._binding import Binding
from usagetap.instrument._calls import Call, emit
from usagetap.instrument._hosts import provider_for_host
from usagetap.instrument._streams import StreamTap, attach_sync
from usagetap.providers.base import TokenUsage

from . import usage

_KNOWN_HOSTS = {"api.toy.example": "toy"}


class ToyAdapter(Adapter):
    def provider_for(self, client: Any) -> str:
        return provider_for_host(client.base_url.host, client.base_url.port, _KNOWN_HOSTS, "toy")

    def plan(self, binding: Binding, options: Any) -> Optional[Call]:
        if (options.method, options.url) != ("post", "/v1/tallies"):
            return None
        body = options.json_data or {}
        return Call(binding, usage.OPERATION, body.get("model"), bool(body.get("stream")), options)

    def on_result(self, call: Call, result: Any) -> Any:
        if isinstance(result, Stream):
            attach_sync(result, StreamTap(call, usage.TallyStreamObserver()))
        else:
            emit(call, usage.tally_usage, result)
        return result

    def describe(self, response: Any) -> Optional[tuple[str, Callable[[Any], TokenUsage]]]:
        return (usage.OPERATION, usage.tally_usage) if isinstance(response, Tally) else None


ADAPTER = ToyAdapter()
