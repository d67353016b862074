"""Any HTTP endpoint: JSON batches, signed with HMAC-SHA256 so the receiver can trust them.

Each batch is one ``POST`` to ``url`` with body ``{"events": [<record>, ...]}``,
every record as :meth:`usagetap.UsageRecord.to_dict` gives it (``event_id`` is
the deduplication key; ``cost`` is a decimal string in USD)::

    POST /usage
    Content-Type: application/json
    X-Usagetap-Timestamp: <Unix time of signing, in seconds>
    X-Usagetap-Signature: sha256=<hex HMAC-SHA256 of "<timestamp>.<raw body>", keyed with the shared secret>

To verify, recompute the HMAC over the timestamp and the raw bytes received
(before parsing), compare in constant time and refuse old timestamps, so a
captured request cannot be replayed later::

    from usagetap.sinks.http import verify
    if not verify(raw_body, request.headers.get("X-Usagetap-Signature"), SECRET,
                  timestamp=request.headers.get("X-Usagetap-Timestamp")):
        return 401

Answer 2xx when the batch is stored. The answer may say what became of
single events: ``{"duplicates": [event_id, ...], "rejected": {event_id: reason}}``
(rejected events are dead-lettered with that reason; every other event is
delivered). 401/403 pause delivery, 408/429/5xx are retried (``Retry-After``
honoured), 413 and other 4xx make the pipeline split the batch down to the
event that is refused.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timezone
from decimal import Decimal
from typing import Any, Optional, Union

import httpx

from .._record import FIELD_KINDS, FIELDS, UsageRecord, field_values
from ..errors import ConfigurationError
from ._http import DEFAULT_TIMEOUT, Endpoint, check_api_key, post_batch
from ._items import OutcomeTally, WireItem, clean_scalars
from ._vars import EnvVars
from .base import BaseSink, Outcomes

__all__ = ["HTTP", "SIGNATURE_HEADER", "TIMESTAMP_HEADER", "sign", "verify"]

SIGNATURE_HEADER = "X-Usagetap-Signature"
TIMESTAMP_HEADER = "X-Usagetap-Timestamp"
DEFAULT_TOLERANCE = 300.0


def _secret_bytes(secret: object) -> bytes:
    if not isinstance(secret, str) or not secret.strip():
        raise ConfigurationError("http: the signing secret must be a non-empty string")
    return secret.encode()


def sign(body: bytes, secret: str, timestamp: int) -> str:
    """The ``X-Usagetap-Signature`` value for ``body`` sent at ``timestamp`` (Unix seconds).

    ``sha256=<hex HMAC-SHA256 of b"<timestamp>." + body>``.
    """
    message = str(int(timestamp)).encode() + b"." + body
    return "sha256=" + hmac.new(_secret_bytes(secret), message, hashlib.sha256).hexdigest()


def verify(
    body: bytes,
    signature: Union[str, bytes, None],
    secret: str,
    timestamp: Union[str, bytes, int, None] = None,
    *,
    tolerance: float = DEFAULT_TOLERANCE,
    now: Optional[float] = None,
) -> bool:
    """Whether ``signature`` and ``timestamp`` (the two headers' values) sign ``body`` under ``secret``
    at most ``tolerance`` seconds from ``now`` (default: the current time).

    Never raises on what the request carries (a missing, malformed or non-ASCII header is False);
    raises :class:`usagetap.ConfigurationError` for an empty ``secret``.
    """
    key = _secret_bytes(secret)
    if isinstance(timestamp, bytes):
        timestamp = timestamp.decode("ascii", "replace")
    if isinstance(timestamp, str):
        timestamp = timestamp.strip()
        if not (timestamp.isascii() and timestamp.isdigit() and len(timestamp) <= 12):
            return False
    if isinstance(timestamp, bool) or not isinstance(timestamp, (int, str)):
        return False
    moment = int(timestamp)
    if abs((time.time() if now is None else now) - moment) > tolerance:
        return False
    if isinstance(signature, str):
        signature = signature.encode("utf-8", "replace")
    if not isinstance(signature, bytes) or not signature.strip():
        return False
    message = str(moment).encode() + b"." + body
    expected = b"sha256=" + hmac.new(key, message, hashlib.sha256).hexdigest().encode()
    return hmac.compare_digest(expected, signature.strip())


_quote: Callable[[str], str] = getattr(json.encoder, "encode_basestring_ascii", json.dumps)
_dumps = json.JSONEncoder(separators=(",", ":"), allow_nan=False).encode
_SLOTS = [f'"{name}":%{"d" if FIELD_KINDS[name][0] == "count" else "s"}' for name in FIELDS]
_EVENT = "{" + ",".join(_SLOTS) + "}"  # to_dict()'s keys in the record's field order; token counts %d


def payload(records: Sequence[UsageRecord]) -> bytes:
    """The request body for ``records``: compact JSON, non-finite numbers dropped from dimensions."""
    return ('{"events":[' + ",".join(map(_event, records)) + "]}").encode()


def _event(r: UsageRecord) -> str:
    """``r.to_dict()`` as ``json.dumps`` writes it (cleaned dimensions), without building the dict.

    Token counts go in as ``%d``: a record is validated (its counts are ints) before it is queued.
    """
    return _EVENT % tuple([put(value) for put, value in zip(_PUT, field_values(r), strict=True)])


def _time(ts: datetime) -> str:
    if ts.tzinfo is not timezone.utc:
        ts = ts.astimezone(timezone.utc)
    return _quote(ts.isoformat())


def _mapping(value: Mapping[str, Any]) -> str:
    return _dumps(clean_scalars(value)) if value else "{}"


def _json(value: Any) -> str:
    if type(value) is str:
        return _quote(value)
    return "null" if value is None else _dumps(value)


def _decimal(value: Optional[Decimal]) -> str:
    return "null" if value is None else _quote(str(value))


_KIND_PUT: dict[str, Callable[[Any], Any]] = {
    "time": _time,
    "decimal": _decimal,
    "mapping": _mapping,
    "count": int,
    "text": _json,
}
_PUT = [_KIND_PUT[FIELD_KINDS[name][0]] for name in FIELDS]  # each field's value as it goes on the wire


class HTTP(BaseSink):
    """POST batches of records as JSON to ``url``.

    ::

        usagetap.configure(sink=usagetap.sinks.HTTP("https://billing.example.com/usage", secret="..."))

    ``secret`` signs every body with the time of sending (``X-Usagetap-Signature``,
    ``X-Usagetap-Timestamp``); ``headers`` are added to every request (an
    ``Authorization`` header, for instance). The secret, every header value
    and the URL's credentials and query values are kept out of reasons, logs
    and ``repr()``. An argument not given is read from its variable
    (``USAGETAP_URL`` or ``USAGETAP_BASE_URL``, ``USAGETAP_SECRET``, ``USAGETAP_TIMEOUT``;
    ``USAGETAP_API_KEY`` is sent as ``Authorization: Bearer`` unless ``headers``
    has an ``Authorization``) when the environment describes this sink:
    ``USAGETAP_SINK`` names it, or is unset and no URL is passed.
    """

    name = "http"
    max_batch = 500

    def __init__(
        self,
        url: Optional[str] = None,
        *,
        secret: Optional[str] = None,
        headers: Optional[Mapping[str, str]] = None,
        timeout: Optional[float] = None,
    ) -> None:
        env = EnvVars.for_constructor(self.name, url)
        url = env.text_or(url, "URL") or env.get("BASE_URL")
        if url is None:
            raise ConfigurationError(
                "http: a URL is required (pass url=... or set USAGETAP_URL or USAGETAP_BASE_URL)"
            )
        secret = env.secret("SECRET") if secret is None else secret
        headers = dict(headers or {})
        api_key = env.key_or(None)
        if api_key is not None and api_key.strip() and not any(k.lower() == "authorization" for k in headers):
            headers["Authorization"] = f"Bearer {check_api_key(api_key, self.name)}"
        timeout = env.timeout_or(timeout, DEFAULT_TIMEOUT)
        if secret is not None:
            _secret_bytes(secret)
        for key, value in (headers or {}).items():
            if not isinstance(key, str) or not isinstance(value, str):
                raise ConfigurationError("http: header names and values must be strings")
            if not value.isprintable() or not value.isascii():
                raise ConfigurationError(
                    f"http: the value of header {key!r} contains non-printable or non-ASCII characters"
                )
        self.url = url
        self._secret = secret
        self._endpoint = Endpoint(self.name, url, headers=headers, timeout=timeout, secrets=[secret or ""])

    def send(self, records: Sequence[UsageRecord]) -> Outcomes:
        """POST the batch as one signed JSON request and read per-event duplicates and rejections."""
        tally = OutcomeTally(records)
        items = [WireItem(r, r.event_id, r.total_tokens) for r in tally.records]
        if not items:
            return tally.outcomes()
        body = payload(tally.records)
        headers = {"Content-Type": "application/json"}
        if self._secret is not None:
            now = int(time.time())
            headers[TIMESTAMP_HEADER] = str(now)
            headers[SIGNATURE_HEADER] = sign(body, self._secret, now)
        post_batch(
            self._endpoint,
            self.url,
            items,
            tally,
            read=lambda response: self._read(response, items, tally),
            content=body,
            headers=headers,
        )
        return tally.outcomes()

    def _read(self, response: httpx.Response, items: list[WireItem], tally: OutcomeTally) -> bool:
        """A 2xx answer: every event delivered, but those it lists as duplicates or rejected."""
        if not response.is_success:
            return False
        answer = _json_object(response)
        duplicates = set(_strings(answer.get("duplicates")))
        rejected = answer.get("rejected")
        if not isinstance(rejected, dict):
            rejected = {}
        for item in items:
            event_id = item.record.event_id
            if event_id in rejected:
                tally.dead(item, self._endpoint.redact(f"http: rejected: {rejected[event_id]}")[:500])
            else:
                tally.delivered(item, duplicate=event_id in duplicates)
        return True

    def close(self) -> None:
        """Close the HTTP connection pool."""
        self._endpoint.close()

    def __repr__(self) -> str:
        return f"HTTP(url={self._endpoint.shown_url!r}, signed={self._secret is not None})"


def _json_object(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _strings(value: Any) -> list[str]:
    return [v for v in value if isinstance(v, str)] if isinstance(value, list) else []
