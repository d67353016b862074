"""Reading a provider's admin API: paging through ``has_more``/``next_page`` (reports) or
``has_more``/``last_id`` (listings), retrying rate limits
(429 + ``Retry-After``) and transient failures with tenacity. The admin key never appears in an error."""

from __future__ import annotations

import email.utils
import json
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from decimal import Decimal
from typing import Any, Optional

import httpx
from tenacity import RetryCallState, Retrying, retry_if_exception, stop_after_attempt, wait_exponential_jitter

__all__ = ["AdminAPI", "AdminError", "NotFound"]

Params = Sequence[tuple[str, str]]
_TRANSIENT = frozenset({408, 409, 429, 500, 502, 503, 504, 529})
MAX_RETRY_AFTER = 120.0


class AdminError(Exception):
    """The admin API refused or kept failing; the message names the path and status, never the key."""


class NotFound(AdminError):
    """The organization has no such endpoint (HTTP 404)."""


class _Transient(Exception):
    def __init__(self, status: int, retry_after: Optional[float], message: str) -> None:
        super().__init__(message)
        self.status = status
        self.retry_after = retry_after


class AdminAPI:
    """GET pages of one provider's admin API at ``base_url`` with ``headers`` (holding the key)."""

    def __init__(
        self,
        base_url: str,
        headers: Mapping[str, str],
        *,
        secret: str,
        progress: Optional[Callable[[str], None]] = None,
        attempts: int = 6,
        transport: Optional[httpx.BaseTransport] = None,
    ) -> None:
        self._client = httpx.Client(
            base_url=base_url, headers=dict(headers), timeout=60.0, transport=transport
        )
        self._secret = secret
        self._progress = progress
        self._attempts = attempts

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> AdminAPI:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def pages(
        self, path: str, params: Params, headers: Optional[Mapping[str, str]] = None
    ) -> Iterator[dict[str, Any]]:
        """Every page of ``GET path?params``, following ``next_page`` while ``has_more``."""
        token: Optional[str] = None
        count = 0
        while True:
            body = self.get(path, [*params, *([("page", token)] if token else [])], headers)
            count += 1
            if self._progress is not None:
                self._progress(f"{path}: page {count}")
            yield body
            token = body.get("next_page")
            if not body.get("has_more") or not token:
                return

    def listing(self, path: str, params: Params, cursor: str) -> Iterator[dict[str, Any]]:
        """Every item of a list endpoint, passing the page's ``last_id`` as ``cursor`` while ``has_more``."""
        after: Optional[str] = None
        count = 0
        while True:
            body = self.get(path, [*params, *([(cursor, after)] if after else [])])
            count += 1
            if self._progress is not None:
                self._progress(f"{path}: page {count}")
            yield from (item for item in body.get("data") or () if isinstance(item, dict))
            after = body.get("last_id")
            if not body.get("has_more") or not after:
                return

    def get(self, path: str, params: Params, headers: Optional[Mapping[str, str]] = None) -> dict[str, Any]:
        """One page, retried on 429 (after its ``Retry-After``), 5xx and connection errors."""
        retrying = Retrying(
            retry=retry_if_exception(lambda exc: isinstance(exc, (_Transient, httpx.TransportError))),
            stop=stop_after_attempt(self._attempts),
            wait=_wait,
            reraise=True,
        )
        try:
            result: dict[str, Any] = retrying(self._get_once, path, params, headers)
        except _Transient as exc:
            raise AdminError(f"{path}: {exc} (gave up after {self._attempts} attempts)") from None
        except httpx.TransportError as exc:
            raise AdminError(f"{path}: {self._clean(str(exc)) or type(exc).__name__}") from None
        return result

    def _get_once(self, path: str, params: Params, headers: Optional[Mapping[str, str]]) -> dict[str, Any]:
        response = self._client.get(path, params=list(params), headers=headers)
        status = response.status_code
        if status == 200:
            body = json.loads(response.content, parse_float=Decimal)  # money stays exact
            if not isinstance(body, dict):
                raise AdminError(f"{path}: the answer is not a JSON object")
            return body
        message = f"HTTP {status}: {self._clean(_error_message(response))}"
        if status in _TRANSIENT:
            raise _Transient(status, _retry_after(response), message)
        if status == 404:
            raise NotFound(f"{path}: {message}")
        if status in (401, 403):
            raise AdminError(f"{path}: the admin key was refused ({message})")
        raise AdminError(f"{path}: {message}")

    def _clean(self, text: str) -> str:
        return text.replace(self._secret, "[admin key]") if self._secret else text


def _error_message(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:200]
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict) and isinstance(error.get("message"), str):
        return str(error["message"])[:200]
    return str(body)[:200]


def _retry_after(response: httpx.Response) -> Optional[float]:
    value = response.headers.get("retry-after")
    if value is None:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            seconds = email.utils.parsedate_to_datetime(value).timestamp() - time.time()
        except (TypeError, ValueError):
            return None
    return min(max(seconds, 0.0), MAX_RETRY_AFTER)


_backoff = wait_exponential_jitter(initial=0.5, max=30.0)


def _wait(state: RetryCallState) -> float:
    """The server's ``Retry-After`` when it gave one, else exponential backoff with jitter."""
    exc = state.outcome.exception() if state.outcome is not None else None
    if isinstance(exc, _Transient) and exc.retry_after is not None:
        return exc.retry_after
    return float(_backoff(state))
