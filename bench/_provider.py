"""A fast loopback provider for the benchmarks: ``usagetap.testing``'s wire formats, pre-encoded.

``python bench/_provider.py`` prints its base URL on the first line, then
serves until killed. The first request of each shape (method, path, body) is
answered by the real routes of :class:`usagetap.testing.ProviderServer`; its
whole HTTP response is encoded once and replayed for identical requests with
a fresh response id of the same length (so every call still gets its own id
and event). One asyncio event loop, HTTP/1.1 keep-alive, no per-request
header parsing beyond the request line and ``Content-Length``: a request
costs the server a few tens of microseconds, so the client is what is measured.

Gemini streams are re-cut one token a chunk (the wire sends its reply in three chunks of running
totals; each word becomes a chunk with its own running totals), so a 200-token Gemini stream is
201 chunks, like the other 200-token streams measured.

Anything it has no route for (telemetry endpoints of the peer libraries:
PostHog's ``/batch/``, OTLP's ``/v1/traces``, ...) gets ``200 {}``.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import itertools
import json
import re
import sys
from typing import Any, Optional

from usagetap.providers.bedrock import wire as bedrock_wire
from usagetap.testing import ProviderServer
from usagetap.testing._server import Reply, _frame

_HEX_TAIL = re.compile(rb"[0-9a-f]+$")
_OK = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}"


def _encode(reply: Reply) -> bytes:
    """The whole HTTP/1.1 response for a route's reply."""
    given = {k.lower(): v for k, v in reply.headers.items()}
    if reply.raw is not None:
        body, ctype = reply.raw, given.get("content-type", "application/octet-stream")
    elif reply.events is not None:
        body, ctype = b"".join(_frame(name, data) for name, data in reply.events), "text/event-stream"
    else:
        body, ctype = json.dumps(reply.body).encode(), "application/json"
    headers = {k: v for k, v in reply.headers.items() if k.lower() not in ("content-type", "content-length")}
    head = f"HTTP/1.1 {reply.status} X\r\nContent-Type: {ctype}\r\nContent-Length: {len(body)}\r\n"
    head += "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    return head.encode() + b"\r\n" + body


def per_token(events: list[tuple[Optional[str], Any]]) -> list[tuple[Optional[str], Any]]:
    """A Gemini stream's chunks cut one word a chunk, each with the running totals at that word."""
    cut: list[tuple[Optional[str], Any]] = []
    done = 0
    for name, chunk in events:
        meta = chunk["usageMetadata"]
        words = chunk["candidates"][0]["content"]["parts"][0]["text"].split()
        if not words:
            cut.append((name, chunk))
            continue
        for k, word in enumerate(words):
            piece = copy.deepcopy(chunk)
            count = done + k + 1
            piece["usageMetadata"]["totalTokenCount"] += count - meta.get("candidatesTokenCount", 0)
            piece["usageMetadata"]["candidatesTokenCount"] = count
            candidate = piece["candidates"][0]
            candidate["content"]["parts"][0]["text"] = word if count == 1 else f" {word}"
            if k < len(words) - 1:
                candidate.pop("finishReason", None)
            cut.append((name, piece))
        done = meta.get("candidatesTokenCount", done)
    return cut


class Canned:
    """One pre-encoded response: its bytes split around the response id, rejoined with a fresh one."""

    __slots__ = ("parts", "prefix", "width")

    def __init__(self, data: bytes, response_id: Optional[str]) -> None:
        if not response_id:
            self.parts, self.prefix, self.width = [data], b"", 0
            return
        rid = response_id.encode()
        tail = _HEX_TAIL.search(rid)
        self.width = len(tail.group()) if tail else 0
        self.prefix = rid[: len(rid) - self.width]
        self.parts = data.split(rid)

    def render(self, n: int) -> bytes:
        if len(self.parts) == 1 or not self.width:
            return self.parts[0] if len(self.parts) == 1 else self.prefix.join(self.parts)
        fresh = self.prefix + b"%0*x" % (self.width, n)
        return fresh.join(self.parts)


class App:
    def __init__(self) -> None:
        self.server = ProviderServer(impersonate=None)
        self.server.record_requests = False
        self.server.anthropic_max_output = 4096  # replies as long as asked, as the OpenAI routes answer
        bedrock_wire._MAX_OUTPUT = 4096  # the same for Bedrock (its wire caps replies at 48 tokens)
        self.cache: dict[tuple[bytes, bytes, bytes], Canned] = {}
        self.counter = itertools.count(1)
        self.sinks: dict[str, list[int]] = {}
        """Requests without a route (telemetry that peers export), by path: [requests, bytes]."""

    def respond(self, method: bytes, target: bytes, body: bytes, head: bytes) -> bytes:
        key = (method, target, body)
        canned = self.cache.get(key)
        if canned is None:
            if target.startswith(b"/__bench/sinks"):
                data = json.dumps(self.sinks).encode()
                if target.endswith(b"?reset"):
                    self.sinks = {}
                return b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(data), data)
            made = self._make(method.decode(), target.decode(), body, head)
            if made is None:
                seen = self.sinks.setdefault(target.decode().split("?")[0], [0, 0])
                seen[0] += 1
                seen[1] += len(body)
                return _OK
            canned = self.cache[key] = made
        return canned.render(next(self.counter))

    def _make(self, method: str, target: str, raw: bytes, head: bytes) -> Optional[Canned]:
        from urllib.parse import parse_qsl, urlsplit

        server = self.server
        url = urlsplit(target)
        try:
            body: dict[str, Any] = json.loads(raw) if raw else {}
        except ValueError:
            return None
        headers = {}
        for line in head.decode("latin-1").split("\r\n")[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        route, params = server.resolve(method, url.path, dict(parse_qsl(url.query)))
        before = list(server.issued)
        if route is not None:
            reply = route(server, body, headers) if params is None else route(server, body, headers, params)
        else:
            reply = server.match_pattern(method, url.path, body, headers)
        if reply is None:
            return None
        if reply.events is not None and url.path.endswith(":streamGenerateContent"):
            reply.events = per_token(reply.events)
        issued = [rid for rid in server.issued if rid not in before]
        return Canned(_encode(reply), issued[-1] if issued else None)


class Connection(asyncio.Protocol):
    def __init__(self, app: App) -> None:
        self.app = app
        self.buf = b""
        self.transport: Any = None

    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.buf += data
        while True:
            buf = self.buf
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                return
            head = buf[:end]
            length = 0
            at = head.lower().find(b"\r\ncontent-length:")
            if at >= 0:
                stop = head.find(b"\r\n", at + 2)
                length = int(head[at + 17 : stop if stop > 0 else len(head)])
            total = end + 4 + length
            if len(buf) < total:
                return
            body, self.buf = buf[end + 4 : total], buf[total:]
            line_end = head.find(b"\r\n")
            method, target, _ = (head if line_end < 0 else head[:line_end]).split(b" ", 2)
            self.transport.write(self.app.respond(method, target, body, head))


async def serve(port: int = 0) -> None:
    app = App()
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: Connection(app), "127.0.0.1", port, backlog=128)
    print(f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}", flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(int(sys.argv[1]) if len(sys.argv) > 1 else 0))
