"""The loopback HTTP server every fake backend builds on: auth, a request log, faults, its own clock."""

from __future__ import annotations

import email.utils
import json
import sys
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Optional
from urllib.parse import parse_qs, urlsplit

__all__ = ["Answer", "BackendFault", "LoopbackBackend", "Request"]


@dataclass
class Request:
    """One request as the backend received it (header names lower-cased)."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        """The body parsed as JSON."""
        return json.loads(self.body)


@dataclass
class Answer:
    """What a backend answers: a JSON body (or raw bytes, or nothing), a status and headers."""

    status: int = 200
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str = "application/json"


@dataclass
class BackendFault:
    """An injected failure. ``mode``: ``answer`` (send ``status``/``body``), ``drop`` (hang up before
    handling the request) or ``lose`` (handle it, then hang up: the client never learns it succeeded)."""

    status: int = 500
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    mode: str = "answer"


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        if not isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)):
            super().handle_error(request, client_address)


class LoopbackBackend:
    """A real HTTP server on 127.0.0.1 that keeps one billing backend's contract.

    Subclasses implement :meth:`handle`. Every backend enforces its auth with
    ``api_key``, keeps what it accepted (deduplicated on the backend's key),
    logs ``requests`` and can be told to fail: :meth:`fail_next`,
    :meth:`rate_limit_next`, :meth:`drop_next`, :meth:`lose_response_next`.
    ``clock_offset`` (seconds) moves the server's clock, as sent in ``Date``.
    """

    name = "backend"

    def __init__(self, *, api_key: str = "test-key", port: int = 0) -> None:
        self.api_key = api_key
        self.port = port
        self.clock_offset = 0.0
        self.requests: list[Request] = []
        self._faults: list[BackendFault] = []
        self._lock = threading.RLock()
        self._httpd: Optional[ThreadingHTTPServer] = None
        self._thread: Optional[threading.Thread] = None

    # -- lifecycle -------------------------------------------------------

    def start(self) -> LoopbackBackend:
        """Listen on 127.0.0.1 (``port``, or a free one) in a background thread."""
        self._httpd = _HTTPServer(("127.0.0.1", self.port), _make_handler(self))
        self.port = self._httpd.server_address[1]
        self._thread = threading.Thread(
            target=self._httpd.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"usagetap-{self.name}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop listening (idempotent)."""
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None

    def __enter__(self) -> Any:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        """``http://127.0.0.1:<port>``, the base URL to give the sink."""
        return f"http://127.0.0.1:{self.port}"

    def now(self) -> datetime:
        """This server's clock (``clock_offset`` applied), as the backend sees time."""
        return datetime.fromtimestamp(time.time() + self.clock_offset, timezone.utc)

    # -- faults ----------------------------------------------------------

    def fail_next(
        self,
        status: int = 500,
        *,
        count: int = 1,
        body: Any = None,
        headers: Optional[dict[str, str]] = None,
    ) -> None:
        """Answer the next ``count`` requests with ``status`` and ``body`` (default: the backend's error)."""
        fault = BackendFault(
            status, body if body is not None else self.error_body(status), dict(headers or {})
        )
        with self._lock:
            self._faults.extend([fault] * count)

    def rate_limit_next(self, retry_after: float = 1, *, count: int = 1) -> None:
        """Answer 429 with ``Retry-After``."""
        value = str(int(retry_after)) if float(retry_after).is_integer() else str(retry_after)
        self.fail_next(429, count=count, headers={"Retry-After": value})

    def drop_next(self, count: int = 1) -> None:
        """Hang up on the next ``count`` requests without handling them."""
        with self._lock:
            self._faults.extend([BackendFault(mode="drop")] * count)

    def lose_response_next(self, count: int = 1) -> None:
        """Handle the next ``count`` requests, then hang up instead of answering."""
        with self._lock:
            self._faults.extend([BackendFault(mode="lose")] * count)

    def error_body(self, status: int) -> Any:
        """The backend's error envelope for an injected ``status``."""
        return {"error": {"message": f"injected {status}"}}

    def _take_fault(self) -> Optional[BackendFault]:
        with self._lock:
            return self._faults.pop(0) if self._faults else None

    # -- contract --------------------------------------------------------

    def bearer(self, request: Request) -> Optional[str]:
        """The Bearer token of ``request``, or None."""
        header = request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        return token if scheme.lower() == "bearer" and token else None

    def authorized(self, request: Request) -> bool:
        """Whether ``request`` carries this backend's ``api_key``."""
        return self.bearer(request) == self.api_key

    def handle(self, request: Request) -> Answer:  # pragma: no cover - abstract
        """Answer one request as the backend does (after faults are applied)."""
        raise NotImplementedError

    def _dispatch(self, request: Request) -> Optional[Answer]:
        """The answer to send, or None to hang up."""
        with self._lock:
            self.requests.append(request)
        fault = self._take_fault()
        if fault is not None and fault.mode == "drop":
            return None
        if fault is not None and fault.mode == "answer":
            return Answer(fault.status, fault.body, fault.headers)
        answer = self.handle(request)
        return None if fault is not None else answer


def _make_handler(backend: LoopbackBackend) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def date_time_string(self, timestamp: Optional[float] = None) -> str:
            return email.utils.formatdate(backend.now().timestamp(), usegmt=True)

        def do_GET(self) -> None:
            self._serve("GET")

        def do_POST(self) -> None:
            self._serve("POST")

        def do_PUT(self) -> None:
            self._serve("PUT")

        def _serve(self, method: str) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            parts = urlsplit(self.path)
            request = Request(
                method,
                parts.path,
                parse_qs(parts.query),
                {k.lower(): v for k, v in self.headers.items()},
                body,
            )
            answer = backend._dispatch(request)
            if answer is None:
                self.close_connection = True
                return
            if answer.body is None:
                data = b""
            elif isinstance(answer.body, bytes):
                data = answer.body
            else:
                data = json.dumps(answer.body).encode()
            self.send_response(answer.status)
            if data:
                self.send_header("Content-Type", answer.content_type)
            self.send_header("Content-Length", str(len(data)))
            for key, value in answer.headers.items():
                self.send_header(key, value)
            self.end_headers()
            if data:
                self.wfile.write(data)

    return Handler
