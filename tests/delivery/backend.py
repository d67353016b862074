"""A loopback ingest backend with fault injection, and a minimal HTTP sink for it (test doubles).

The backend keeps a bulk-ingest contract: ``POST /ingest`` with
``{"events": [{"id", "customer", "input_tokens", "output_tokens"}]}`` and a
Bearer key; it dedupes on ``id`` and answers per item
(``accepted`` / ``duplicate`` / ``failed`` with ``retryable``).
"""

from __future__ import annotations

import collections
import json
import random
import socket
import threading
import time
from collections.abc import Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Optional

import httpx

from usagetap._record import UsageRecord
from usagetap.sinks import Outcomes

FAULTS = ("500", "503", "429", "reset", "slow", "stored_then_500", "partial")


class FaultyBackend:
    def __init__(
        self,
        *,
        fault_rate: float = 0.0,
        faults: Sequence[str] = FAULTS,
        seed: int = 7,
        max_items: int = 10_000,
        api_key: str = "test-key",
    ) -> None:
        self.fault_rate = fault_rate
        self.faults = tuple(faults)
        self.rng = random.Random(seed)
        self.max_items = max_items
        self.api_key = api_key
        self.mode: Optional[str] = None  # forced fault for every request: "down", "hang", "slow_stored"
        self.stored: dict[str, dict[str, Any]] = {}
        self.receipts: collections.Counter[str] = collections.Counter()
        self.requests = 0
        self.faults_injected: collections.Counter[str] = collections.Counter()
        self._lock = threading.Lock()
        self._httpd: Optional[ThreadingHTTPServer] = None

    @property
    def url(self) -> str:
        assert self._httpd is not None
        return f"http://127.0.0.1:{self._httpd.server_address[1]}/ingest"

    def __enter__(self) -> FaultyBackend:
        backend = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True

            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                backend._handle(self)

        class Server(ThreadingHTTPServer):
            daemon_threads = True

            def handle_error(self, request: Any, client_address: Any) -> None:
                pass

        self._httpd = Server(("127.0.0.1", 0), Handler)
        threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        ).start()
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._httpd is not None
        self._httpd.shutdown()
        self._httpd.server_close()

    # -- the contract --------------------------------------------------------

    def _store(self, events: list[dict[str, Any]]) -> list[dict[str, Any]]:
        results = []
        with self._lock:
            for event in events:
                self.receipts[event["id"]] += 1
                if event["id"] in self.stored:
                    results.append({"id": event["id"], "status": "duplicate"})
                else:
                    self.stored[event["id"]] = event
                    results.append({"id": event["id"], "status": "accepted"})
        return results

    def _handle(self, h: BaseHTTPRequestHandler) -> None:
        body = h.rfile.read(int(h.headers.get("Content-Length") or 0))
        with self._lock:
            self.requests += 1
            fault = None
            if self.rng.random() < self.fault_rate:  # which requests fail is random; the kinds take turns
                fault = self.faults[sum(self.faults_injected.values()) % len(self.faults)]
        if self.mode == "hang":
            time.sleep(3600)
        if h.headers.get("Authorization") != f"Bearer {self.api_key}":
            return _answer(h, 401, {"error": "invalid API key"})
        events = json.loads(body)["events"]
        if self.mode == "down":
            return _answer(h, 503, {"error": "maintenance"})
        if len(events) > self.max_items:
            return _answer(h, 413, {"error": f"at most {self.max_items} events per request"})
        if self.mode == "slow_stored":
            results = self._store(events)
            time.sleep(2.0)
            return _answer(h, 200, {"results": results})
        if fault is not None:
            self.faults_injected[fault] += 1
        if fault == "500":
            return _answer(h, 500, {"error": "internal"})
        if fault == "503":
            return _answer(h, 503, {"error": "unavailable"}, {"Retry-After": "0"})
        if fault == "429":
            return _answer(h, 429, {"error": "slow down"}, {"Retry-After": "0.05"})
        if fault == "reset":
            h.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
            h.close_connection = True
            h.connection.close()
            return None
        if fault == "slow":
            time.sleep(0.2)
        if fault == "stored_then_500":
            self._store(events)
            return _answer(h, 500, {"error": "stored, then failed"})
        if fault == "partial":
            keep = [e for e in events if self.rng.random() < 0.5]
            kept_ids = {e["id"] for e in keep}
            results = self._store(keep) + [
                {"id": e["id"], "status": "failed", "retryable": True, "error": "temporarily unavailable"}
                for e in events
                if e["id"] not in kept_ids
            ]
            return _answer(h, 200, {"results": results})
        return _answer(h, 200, {"results": self._store(events)})

    def totals_by_customer(self) -> dict[str, tuple[int, int]]:
        out: dict[str, list[int]] = {}
        for event in self.stored.values():
            t = out.setdefault(event["customer"], [0, 0])
            t[0] += event["input_tokens"]
            t[1] += event["output_tokens"]
        return {k: (v[0], v[1]) for k, v in out.items()}


def _answer(
    h: BaseHTTPRequestHandler, status: int, body: Any, headers: Optional[dict[str, str]] = None
) -> None:
    data = json.dumps(body).encode()
    h.send_response(status)
    h.send_header("Content-Type", "application/json")
    h.send_header("Content-Length", str(len(data)))
    for key, value in (headers or {}).items():
        h.send_header(key, value)
    h.end_headers()
    h.wfile.write(data)


class IngestSink:
    """A minimal sink for :class:`FaultyBackend` (the real sinks live in usagetap.sinks)."""

    name = "ingest"

    def __init__(
        self, url: str, api_key: str = "test-key", max_batch: int = 100, timeout: float = 5.0
    ) -> None:
        self.url = url
        self.max_batch = max_batch
        self._headers = {"Authorization": f"Bearer {api_key}"}
        self._timeout = timeout
        self._client: Optional[httpx.Client] = None

    def _http(self) -> httpx.Client:
        if self._client is None:
            self._client = httpx.Client(timeout=self._timeout, headers=self._headers)
        return self._client

    def after_fork(self) -> None:
        self._client = None

    def send(self, records: Sequence[UsageRecord]) -> Outcomes:
        events = [
            {
                "id": r.event_id,
                "customer": r.customer,
                "input_tokens": r.input_tokens,
                "output_tokens": r.output_tokens,
            }
            for r in records
        ]
        try:
            response = self._http().post(self.url, json={"events": events})
        except httpx.HTTPError:
            return Outcomes.all_retry(records)
        if response.status_code == 200:
            out = Outcomes()
            for item in response.json()["results"]:
                if item["status"] in ("accepted", "duplicate"):
                    out.delivered.append(item["id"])
                    out.duplicates += item["status"] == "duplicate"
                elif item.get("retryable"):
                    out.retry.append(item["id"])
                else:
                    out.dead[item["id"]] = item.get("error", "rejected")
            return out
        if response.status_code == 401:
            return Outcomes.halted(records, "401 invalid API key")
        if response.status_code == 413:
            return Outcomes.split_batch(records, "413 too large")
        if response.status_code in (408, 429) or response.status_code >= 500:
            after = response.headers.get("Retry-After")
            return Outcomes.all_retry(records, retry_after=float(after) if after else None)
        return Outcomes.all_dead(records, f"{response.status_code} {response.text[:200]}")

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
