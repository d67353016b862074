"""A loopback HTTP server that speaks LLM provider wire formats, for tests, demos and benchmarks."""

from __future__ import annotations

import importlib
import json
import re
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Optional, Union
from urllib.parse import parse_qsl, urlsplit

from ..providers import family_for, registered
from ._wire import Issued, PatternRoute, Reply, Route, Wire

__all__ = ["Fault", "Issued", "ProviderServer", "Reply"]


@dataclass
class Fault:
    """An error to answer instead of a normal response."""

    status: int
    body: dict[str, Any] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128  # many concurrent clients (the default backlog is 5)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Clients that hang up mid-response (a stream broken off early) are normal here."""
        import sys

        if not isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)):
            super().handle_error(request, client_address)


class ProviderServer:
    """A real HTTP server on 127.0.0.1 that answers like OpenAI and Anthropic (and other providers).

    One server serves every SDK family on that family's own paths (each registered provider's
    ``wire.py``, see :mod:`usagetap.providers`): OpenAI clients on :attr:`openai_url`
    (``/v1/chat/completions``, ``/v1/responses``, ``/v1/embeddings``, ``/v1/completions``),
    Anthropic clients on :attr:`anthropic_url` (``/v1/messages``, ``/v1/messages/count_tokens``,
    ``/v1/messages/batches``), and Bedrock, Vertex, Gemini and Mistral clients on theirs;
    :meth:`base_url` gives a family's base URL by name.

    Token counts are deterministic: input tokens from the words of the
    prompt, output tokens from ``max_tokens`` (default 16). Every response's
    usage is kept in :attr:`issued`, keyed by response id, so a test can
    compare what was metered with what the server reported::

        with ProviderServer() as server:
            client = usagetap.wrap(OpenAI(base_url=server.openai_url, api_key="test"))
            ...
            assert sum(i.input_tokens for i in server.issued.values()) == ...

    While running, usagetap takes the server for the provider each SDK family
    talks to (``impersonate=True``, the default): an OpenAI client's records
    say ``openai``, an Anthropic client's ``anthropic``, each priced like it.
    ``impersonate`` may also name one provider, for the family that reports it
    (``"anthropic"`` for Anthropic clients; a name no family lists, such as ``"groq"``,
    for OpenAI clients), map families to providers (``{"openai": "azure"}``), or be
    ``None``: then the server is an unknown host and records say ``127.0.0.1``.
    """

    def __init__(
        self,
        *,
        port: int = 0,
        impersonate: Union[bool, str, Mapping[str, str], None] = True,
        stream_delay: float = 0.0,
    ):
        self.port = port
        self.impersonate: dict[str, str] = _identities(impersonate)
        """The provider usagetap reports for this server, by SDK family (``openai``, ``anthropic``)."""
        self.stream_delay = stream_delay
        self.issued: dict[str, Issued] = {}
        self.requests: list[dict[str, Any]] = []
        self.record_requests = True
        self.report_usage = True
        self.reject_stream_options = False
        self.stream_error_after: Optional[int] = None
        self.anthropic_max_output = 48
        """Output tokens of an Anthropic reply: ``min(max_tokens, anthropic_max_output)``."""
        self.background_polls = 2
        """Retrievals of a background response until it completes (the first ones find it in progress)."""
        self.stored: dict[str, Any] = {}
        """What a provider keeps between requests (stored and background responses), by id."""
        self._faults: list[Fault] = []
        self._seen_prompts: set[str] = set()
        self._lock = threading.Lock()
        self._httpd: Optional[ThreadingHTTPServer] = None
        self._thread: Optional[threading.Thread] = None
        self.wires: list[Wire] = _wires()
        self.routes: dict[str, Route] = {}
        for wire in self.wires:
            self.routes.update(wire.routes)
        self.patterns: list[tuple[str, re.Pattern[str], PatternRoute]] = [
            pattern for wire in self.wires for pattern in wire.patterns
        ]
        self.state: dict[str, Any] = {}  # what a wire format keeps between requests (batches, ...)
        self.on_issue: list[Callable[[Issued, Mapping[str, str]], None]] = []
        """Called with each issued usage and its request's headers (the admin API fakes read them)."""
        self._request = threading.local()

    # -- lifecycle -------------------------------------------------------

    def start(self) -> ProviderServer:
        """Serve on 127.0.0.1 (``port``, or a free one) in a thread; usagetap takes it for ``impersonate``."""
        handler = _make_handler(self)
        self._httpd = _HTTPServer(("127.0.0.1", self.port), handler)
        self.port = self._httpd.server_address[1]
        self._thread = threading.Thread(
            target=self._httpd.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="usagetap-provider",
            daemon=True,
        )
        self._thread.start()
        if self.impersonate:
            from ..instrument._hosts import impersonate

            impersonate(f"127.0.0.1:{self.port}", self.impersonate)
        return self

    def stop(self) -> None:
        """Stop listening (idempotent)."""
        if self._httpd is not None:
            if self.impersonate:
                from ..instrument._hosts import stop_impersonating

                stop_impersonating(f"127.0.0.1:{self.port}")
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None

    def __enter__(self) -> ProviderServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        """``http://127.0.0.1:<port>``."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def openai_url(self) -> str:
        """Base URL for ``OpenAI(base_url=...)``."""
        return f"{self.url}/v1"

    @property
    def anthropic_url(self) -> str:
        """Base URL for ``Anthropic(base_url=...)`` and ``AnthropicBedrock(base_url=...)``."""
        return self.url

    @property
    def vertex_url(self) -> str:
        """Base URL for ``AnthropicVertex(base_url=...)``."""
        return f"{self.url}/v1"

    @property
    def mistral_url(self) -> str:
        """Server URL for ``Mistral(server_url=...)`` (Mistral's API is mounted under ``/mistral``)."""
        return f"{self.url}/mistral"

    def base_url(self, family: str) -> str:
        """The base URL a client of SDK ``family`` takes: ``"openai"``, ``"anthropic"``, ``"vertex"``,
        ``"mistral"``, or ``"bedrock"`` / ``"google"`` (the server's root URL)."""
        urls = {
            "openai": self.openai_url,
            "anthropic": self.anthropic_url,
            "vertex": self.vertex_url,
            "mistral": self.mistral_url,
            "bedrock": self.url,
            "google": self.url,
        }
        if family not in urls:
            raise ValueError(f"no SDK family {family!r}; one of {', '.join(urls)}")
        return urls[family]

    # -- behaviour -------------------------------------------------------

    def fail_next(
        self,
        status: int = 500,
        *,
        count: int = 1,
        body: Optional[dict[str, Any]] = None,
        headers: Optional[dict[str, str]] = None,
    ) -> None:
        """Answer the next ``count`` requests with ``status`` (an error body in the provider's shape)."""
        fault = Fault(
            status,
            body or {"error": {"message": f"injected {status}", "type": "server_error"}},
            headers or {},
        )
        with self._lock:
            self._faults.extend([fault] * count)

    def issue(self, issued: Issued) -> None:
        """Remember the usage a response reports, for :meth:`totals`."""
        with self._lock:
            self.issued[issued.response_id] = issued
        for hook in self.on_issue:
            hook(issued, getattr(self._request, "headers", {}))

    def remember(self, prompt_key: str) -> bool:
        """Whether ``prompt_key`` was seen before (and remember it from now on)."""
        with self._lock:
            seen = prompt_key in self._seen_prompts
            self._seen_prompts.add(prompt_key)
        return seen

    def cached_prefix(self, prompt_key: str, input_tokens: int) -> int:
        """Cache-read tokens for a prompt: none the first time, then its 64-token blocks."""
        with self._lock:
            seen = prompt_key in self._seen_prompts
            self._seen_prompts.add(prompt_key)
        return (input_tokens // 64) * 64 if seen else 0

    def totals(self, response_ids: Optional[Iterable[str]] = None) -> dict[str, int]:
        """Sum of issued usage (over ``response_ids`` when given)."""
        with self._lock:
            items = (
                list(self.issued.values()) if response_ids is None else [self.issued[i] for i in response_ids]
            )
        keys = (
            "input_tokens",
            "output_tokens",
            "cache_read_tokens",
            "cache_write_tokens",
            "reasoning_tokens",
        )
        return {k: sum(getattr(i, k) for i in items) for k in keys}

    def match_pattern(
        self, method: str, path: str, body: dict[str, Any], headers: dict[str, str]
    ) -> Optional[Reply]:
        """The reply of the first regular-expression route matching ``method path``, or None."""
        for verb, pattern, pattern_route in self.patterns:
            match = pattern.fullmatch(path) if verb == method else None
            if match is not None:
                return pattern_route(self, body, headers, match)
        return None

    def _take_fault(self) -> Optional[Fault]:
        with self._lock:
            return self._faults.pop(0) if self._faults else None

    def resolve(
        self, method: str, path: str, query: dict[str, str]
    ) -> tuple[Optional[Route], Optional[dict[str, str]]]:
        """The route for a request, and the params of a route with placeholders (else None).

        A provider's other spellings of its paths (Azure OpenAI's) map onto its routes.
        """
        for wire in self.wires:
            mapped = wire.path_for(path, query)
            if mapped is None:
                return None, None
            path = mapped
        route = self.routes.get(f"{method} {path}")
        if route is not None:
            return route, None
        for key, candidate in self.routes.items():
            verb, _, pattern = key.partition(" ")
            if verb != method or "{" not in pattern:
                continue
            match = re.fullmatch(re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", pattern), path)
            if match is not None:
                return candidate, {**query, **match.groupdict()}
        return None, None

    # -- answering -------------------------------------------------------

    def answer(self, method: str, target: str, headers: Mapping[str, str], raw: bytes) -> Reply:
        """The reply to one request (``target``: its path and query string), whatever carries it:
        this server's HTTP handler, or :mod:`usagetap.testing.respx`."""
        url = urlsplit(target)
        path, query = url.path, dict(parse_qsl(url.query))
        headers = {k.lower(): v for k, v in headers.items()}
        if not any(headers.get(k) for k in ("authorization", "x-api-key", "api-key", "x-goog-api-key")):
            return Reply(401, {"error": {"message": "missing API key", "type": "invalid_request_error"}})
        try:
            body = json.loads(raw) if raw else {}
        except ValueError:
            return Reply(400, {"error": {"message": "invalid JSON", "type": "invalid_request_error"}})
        if self.record_requests:
            with self._lock:
                self.requests.append({"method": method, "path": path, "body": body, "headers": headers})
        fault = self._take_fault()
        if fault is not None:
            return Reply(fault.status, fault.body, headers=dict(fault.headers))
        self._request.headers = headers
        route, params = self.resolve(method, path, query)
        if route is not None:
            reply: Optional[Reply] = (
                route(self, body, headers) if params is None else route(self, body, headers, params)
            )
        else:
            reply = self.match_pattern(method, path, body, headers)
        if reply is None:
            return Reply(
                404, {"error": {"message": self._no_route(method, path, query), "type": "not_found"}}
            )
        return reply

    def _no_route(self, method: str, path: str, query: dict[str, str]) -> str:
        """A 404's message; a client given another family's base URL is told which one to take."""
        hint = ""
        if path.startswith("/v1/v1/") and self.resolve(method, path[3:], query)[0] is not None:
            hint = " (Anthropic clients take ProviderServer.anthropic_url, which has no /v1)"
        elif self.resolve(method, "/v1" + path, query)[0] is not None:
            hint = " (OpenAI clients take ProviderServer.openai_url, which ends in /v1)"
        return f"no route {method} {path}{hint}"

    def frames(self, reply: Reply) -> list[bytes]:
        """The SSE frames of a streamed reply, cut short by ``stream_error_after`` when set."""
        frames = [_frame(name, data) for name, data in reply.events or ()]
        if self.stream_error_after is not None:
            frames = frames[: self.stream_error_after]
            error = reply.error_event or (
                None,
                {"error": {"message": "injected mid-stream failure", "type": "server_error"}},
            )
            frames.append(_frame(*error))
        return frames


def _wires() -> list[Wire]:
    """The wire format of every registered provider (see :mod:`usagetap.providers`)."""
    return [importlib.import_module(provider.wire_module).WIRE for provider in registered()]


def _identities(impersonate: Union[bool, str, Mapping[str, str], None]) -> dict[str, str]:
    """``ProviderServer(impersonate=...)`` as a provider name per SDK family."""
    if impersonate is True:
        return {provider.family: provider.family for provider in registered()}
    if not impersonate:
        return {}
    if isinstance(impersonate, str):
        return {family_for(impersonate).family: impersonate}
    return dict(impersonate)


def _make_handler(server: ProviderServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def do_GET(self) -> None:
            self._dispatch("GET")

        def do_POST(self) -> None:
            self._dispatch("POST")

        def do_DELETE(self) -> None:
            self._dispatch("DELETE")

        def _dispatch(self, method: str) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            reply = server.answer(method, self.path, dict(self.headers.items()), raw)
            if reply.raw is not None:
                self._raw(reply)
            elif reply.events is not None:
                self._sse(reply)
            else:
                self._json(reply.status, reply.body, reply.headers)

        def _raw(self, reply: Reply) -> None:
            data = reply.raw or b""
            self.send_response(reply.status)
            for key, value in reply.headers.items():
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _json(self, status: int, body: Any, headers: Optional[dict[str, str]] = None) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for key, value in (headers or {}).items():
                self.send_header(key, value)
            self.end_headers()
            self.wfile.write(data)

        def _sse(self, reply: Reply) -> None:
            frames = server.frames(reply)
            self.send_response(reply.status)
            self.send_header("Content-Type", "text/event-stream")
            for key, value in reply.headers.items():
                self.send_header(key, value)
            if server.stream_delay <= 0:
                payload = b"".join(frames)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)
                return
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            try:
                for frame in frames:
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(frame), frame))
                    self.wfile.flush()
                    time.sleep(server.stream_delay)
                self.wfile.write(b"0\r\n\r\n")
            except (BrokenPipeError, ConnectionResetError):
                self.close_connection = True

    return Handler


def _frame(name: Optional[str], data: Union[str, dict[str, Any]]) -> bytes:
    text = data if isinstance(data, str) else json.dumps(data, separators=(",", ":"))
    head = f"event: {name}\n" if name else ""
    return f"{head}data: {text}\n\n".encode()
