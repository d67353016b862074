"""The toy's wire format for the loopback server: ``POST /v1/tallies``, as JSON or as SSE events."""

from __future__ import annotations

import uuid
from typing import Any

from usagetap.testing import Issued, ProviderServer, Reply
from usagetap.testing._wire import Event, Wire, count_tokens, reply_words


def tallies(server: ProviderServer, body: dict[str, Any], headers: dict[str, str]) -> Reply:
    model, stream = str(body.get("model", "toy-1")), bool(body.get("stream"))
    tally_id = f"tally_{uuid.uuid4().hex[:12]}"
    words = reply_words(3 + count_tokens(body.get("prompt", "")) % 5)
    usage = {"in": count_tokens(body.get("prompt", "")), "out": len(words)}
    server.issue(Issued(tally_id, "/v1/tallies", model, stream, usage["in"], usage["out"]))
    if not stream:
        return Reply(body={"id": tally_id, "model": model, "words": words, "usage": usage})
    events: list[Event] = [(None, {"type": "start", "id": tally_id, "model": model})]
    events += [(None, {"type": "word", "word": word}) for word in words]
    events.append((None, {"type": "done", "usage": usage}))
    return Reply(events=events)


WIRE = Wire({"POST /v1/tallies": tallies})
