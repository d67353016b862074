"""What HTTP sinks share: one fork-safe ``httpx.Client``, the server's clock, and HTTP answers as outcomes.

A sink owns its wire format; this module owns the generic part of talking to
a backend: connection reuse, timeouts, reading ``Retry-After`` and ``Date``,
turning a refusal into a reason that never contains the API key, and the
status -> outcome table every sink follows:

==========================  ===================================================
answer                      outcome
==========================  ===================================================
401, 403                    halt (never dead-letter on an auth error)
3xx, 404, 405               halt: the URL is wrong, not the events
408, 429, 5xx, no answer    retry (``retry_after`` from ``Retry-After``)
413                         split the batch (a single event: dead)
other 4xx, atomic batch     split the batch: one bad event refuses them all
other 4xx                   dead, with the backend's reason
==========================  ===================================================
"""

from __future__ import annotations

import email.utils
import math
import os
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta, timezone
from typing import Any, Optional

import httpx

from .._record import UsageRecord
from .._version import __version__
from ..errors import ConfigurationError
from ._items import OutcomeTally, WireItem
from ._redact import Redactor, redact_url, watch_httpx_log
from .base import MAX_TIMEOUT, Outcomes

__all__ = [
    "Endpoint",
    "answer_outcomes",
    "check_api_key",
    "check_timeout",
    "is_retryable",
    "post_batch",
    "retry_after_of",
    "rfc3339",
]

USER_AGENT = f"usagetap/{__version__}"
DEFAULT_TIMEOUT = 30.0
MAX_REASON = 500
MAX_RETRY_AFTER = 3600.0


def check_api_key(api_key: Optional[str], sink: str, *, env: str = "USAGETAP_API_KEY") -> str:
    """Return ``api_key`` or raise :class:`ConfigurationError` (whose message never contains the key)."""
    if api_key is None or not isinstance(api_key, str) or not api_key.strip():
        raise ConfigurationError(f"{sink}: an API key is required (pass api_key=... or set {env})")
    if api_key != api_key.strip() or any(c.isspace() for c in api_key):
        raise ConfigurationError(
            f"{sink}: the API key contains whitespace; check for a stray newline or space"
        )
    if not api_key.isascii() or not api_key.isprintable():
        raise ConfigurationError(f"{sink}: the API key contains non-printable or non-ASCII characters")
    return api_key


def check_timeout(timeout: object, sink: str) -> float:
    """``timeout`` as a float, or :class:`ConfigurationError` unless it is a finite number of seconds > 0."""
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)):
        raise ConfigurationError(f"{sink}: timeout must be a number of seconds")
    if not (math.isfinite(timeout) and 0 < timeout <= MAX_TIMEOUT):
        raise ConfigurationError(f"{sink}: timeout must be seconds > 0 and <= {MAX_TIMEOUT:g}, got {timeout}")
    return float(timeout)


def rfc3339(moment: datetime) -> str:
    """``2025-01-31T12:00:00.123456Z``: UTC, microseconds, a ``Z``."""
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def retry_after_of(response: httpx.Response) -> Optional[float]:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or an HTTP date), or None."""
    value = response.headers.get("retry-after")
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=timezone.utc)
        seconds = (when - datetime.now(timezone.utc)).total_seconds()
    if math.isnan(seconds):
        return None
    return min(max(seconds, 0.0), MAX_RETRY_AFTER)


def _message(body: Any) -> Optional[str]:
    """The human part of the common error shapes (FastAPI, Stripe, NestJS, problem+json, Go)."""
    if isinstance(body, str):
        return body
    if isinstance(body, list):
        parts = [m for m in (_message(item) for item in body[:5]) if m]
        return "; ".join(parts) or None
    if not isinstance(body, dict):
        return None
    if "msg" in body:
        loc = body.get("loc")
        where = ".".join(str(p) for p in loc if p != "body") if isinstance(loc, list) else ""
        return f"{where}: {body['msg']}" if where else str(body["msg"])
    for key in ("error", "detail", "message", "title", "error_description"):
        value = body.get(key)
        if key == "error" and isinstance(value, str) and isinstance(body.get("error_description"), str):
            return f"{value}: {body['error_description']}"
        found = _message(value)
        if found:
            extra = body.get("errors")
            if key == "message" and isinstance(extra, list) and extra:
                more = _message(extra)
                return f"{found}: {more}" if more else found
            return found
    return None


def is_retryable(status: int) -> bool:
    return status in (408, 429) or status >= 500


class Endpoint:
    """One backend base URL: a lazily built ``httpx.Client`` (rebuilt after ``fork()``) and its clock.

    ``secrets`` (and the credentials and query values of ``base_url``) are
    redacted from every reason this endpoint produces and from httpx's log.
    """

    def __init__(
        self,
        sink: str,
        base_url: str,
        *,
        headers: Optional[Mapping[str, str]] = None,
        timeout: float = DEFAULT_TIMEOUT,
        secrets: Sequence[str] = (),
        max_connections: int = 10,
    ) -> None:
        if not isinstance(base_url, str) or not base_url.startswith(("http://", "https://")):
            shown = redact_url(base_url) if isinstance(base_url, str) else type(base_url).__name__
            raise ConfigurationError(f"{sink}: base URL must start with http:// or https://, got {shown!r}")
        timeout = check_timeout(timeout, sink)
        self.sink = sink
        self.base_url = base_url.rstrip("/")
        self._headers = {"User-Agent": USER_AGENT, **(headers or {})}
        self._timeout = httpx.Timeout(timeout, connect=min(timeout, 10.0))
        self._limits = httpx.Limits(
            max_connections=max_connections,
            max_keepalive_connections=max_connections,
            keepalive_expiry=30.0,
        )
        self.redact = Redactor([*secrets, *(headers or {}).values()], [base_url, self.base_url])
        watch_httpx_log(self.redact)
        self._client: Optional[httpx.Client] = None
        self._pid = os.getpid()
        self._lock = threading.Lock()
        self._skew = 0.0
        self._margin = 0.0

    # -- connection ------------------------------------------------------

    def client(self) -> httpx.Client:
        client = self._client
        if client is not None and self._pid == os.getpid():
            return client
        with self._lock:
            if self._client is None or self._pid != os.getpid():
                # After fork() the parent's pooled sockets are not ours to use or close.
                self._pid = os.getpid()
                self._client = httpx.Client(
                    base_url=self.base_url,
                    headers=self._headers,
                    timeout=self._timeout,
                    limits=self._limits,
                    follow_redirects=False,
                )
            return self._client

    def post(self, path: str, **kwargs: Any) -> httpx.Response:
        """POST ``path``; transport failures raise ``httpx.TransportError``."""
        response = self.client().post(path, **kwargs)
        self._observe(response)
        return response

    def get(self, path: str, **kwargs: Any) -> httpx.Response:
        response = self.client().get(path, **kwargs)
        self._observe(response)
        return response

    def close(self) -> None:
        with self._lock:
            client, self._client = self._client, None
        if client is not None and self._pid == os.getpid():
            client.close()

    # -- the backend's clock ---------------------------------------------

    def _observe(self, response: httpx.Response) -> None:
        date = response.headers.get("date")
        if not date:
            return
        try:
            server = email.utils.parsedate_to_datetime(date)
        except (TypeError, ValueError, IndexError):
            return
        if server.tzinfo is None:
            server = server.replace(tzinfo=timezone.utc)
        self._skew = server.timestamp() - time.time()

    def now(self) -> datetime:
        """The backend's idea of now: ours, moved back when its ``Date`` header says it is behind.

        ``Date`` has whole seconds, so a skew under a second is indistinguishable from none.
        """
        behind = self._skew if self._skew < -1.0 else 0.0
        return datetime.now(timezone.utc) + timedelta(seconds=behind - self._margin)

    def not_after_now(self, moment: datetime) -> datetime:
        """``moment``, or the backend's now if ``moment`` is ahead of it (a client clock running fast)."""
        limit = self.now()
        return limit if moment > limit else moment

    def widen_margin(self) -> None:
        """The backend still found a timestamp in the future: keep further back from its now."""
        self._margin = min(max(self._margin * 2, 1.0), 300.0)

    # -- answers ---------------------------------------------------------

    @property
    def shown_url(self) -> str:
        """The base URL as reprs and messages may show it."""
        return redact_url(self.base_url)

    @property
    def host(self) -> str:
        """``host[:port]`` of the base URL, without credentials."""
        return httpx.URL(self.base_url).netloc.decode("ascii", "replace").rpartition("@")[2]

    def unreachable(self, exc: BaseException) -> str:
        """``"http: no answer from api.example.com: ConnectError: [Errno 111] Connection refused"``."""
        text = f"{self.sink}: no answer from {self.host}: {type(exc).__name__}: {exc}".rstrip(": ")
        return _short(self.redact(" ".join(text.split())))

    def reason(self, response: httpx.Response, what: str = "") -> str:
        """``"spaire: HTTP 422: events.0.metadata.x: String should have at most 500 characters"``."""
        try:
            body: Any = response.json()
        except ValueError:
            body = response.text
        detail = _message(body) or response.reason_phrase or ""
        text = f"{self.sink}: HTTP {response.status_code}{' ' + what if what else ''}: {detail}".rstrip(": ")
        return _short(self.redact(" ".join(text.split())))


def _short(text: str) -> str:
    return text if len(text) <= MAX_REASON else text[: MAX_REASON - 3] + "..."


def answer_outcomes(
    endpoint: Endpoint,
    response: httpx.Response,
    records: Sequence[UsageRecord],
    *,
    atomic: bool,
    missing_route: bool = True,
) -> Outcomes:
    """Outcomes for every record of a request the backend refused as a whole (a non-2xx answer).

    ``atomic``: the backend refuses the whole batch when one event is invalid, so
    a 4xx on several events asks the pipeline to split the batch and find it.
    ``missing_route``: a 404 means the URL is wrong (False where a 404 is about an event).
    """
    status = response.status_code
    reason = endpoint.reason(response)
    if status in (401, 403):
        return Outcomes.halted(
            records,
            f"{reason} (the API key was refused; delivery is paused and nothing is dropped)",
            retry_after=retry_after_of(response),
        )
    if 300 <= status < 400 or status == 405 or (status == 404 and missing_route):
        where = response.headers.get("location")
        return Outcomes.halted(
            records,
            f"{reason} (check the sink's URL{': redirected to ' + where if where else ''}; "
            "delivery is paused and nothing is dropped)",
        )
    if is_retryable(status):
        return Outcomes.all_retry(
            records, retry_after=retry_after_of(response), reason=f"{reason} (from {endpoint.host})"
        )
    if len(records) > 1 and (status == 413 or atomic):
        return Outcomes.split_batch(records, reason, too_large=status == 413)
    return Outcomes.all_dead(records, reason)


def _every_404(response: httpx.Response) -> bool:
    return True


def post_batch(
    endpoint: Endpoint,
    path: str,
    items: Sequence[WireItem],
    tally: OutcomeTally,
    *,
    read: Optional[Callable[[httpx.Response], bool]] = None,
    atomic: bool = True,
    missing_route: Callable[[httpx.Response], bool] = _every_404,
    **request: Any,
) -> Optional[httpx.Response]:
    """POST one request carrying ``items`` (``request``: its body and headers) and tally the answer.

    No answer: every item is retried, with the reason. An answer goes to ``read`` first, which
    tallies what it understands (per-item results, a refusal naming its events) and says whether
    it did; otherwise a 2xx delivers every item and a refusal follows the table above
    (``atomic``, and ``missing_route(response)`` for a 404: see :func:`answer_outcomes`).
    Returns the answer, or None when there was none.
    """
    try:
        response = endpoint.post(path, **request)
    except httpx.TransportError as exc:
        reason = endpoint.unreachable(exc)
        for item in items:
            tally.retry(item, reason=reason)
        return None
    if read is not None and read(response):
        return response
    if response.is_success:
        for item in items:
            tally.delivered(item)
        return response
    records = list({item.record.event_id: item.record for item in items}.values())
    refusal = answer_outcomes(
        endpoint, response, records, atomic=atomic, missing_route=missing_route(response)
    )
    tally.apply(refusal, items)
    return response
