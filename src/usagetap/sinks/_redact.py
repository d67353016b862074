"""Keeping configured secrets out of every text usagetap writes: reasons, reprs, logs, status.

A sink's :class:`Redactor` knows its secrets (API keys, header values, the
credentials and query values of its URL). Text goes through it before it is
stored or shown; a URL is redacted by structure (its user info and every
query value), so a short token in a query is hidden too. httpx logs each
request's URL at INFO on the ``httpx`` logger: :func:`watch_httpx_log` puts a
filter there that redacts the URLs and secrets of every live redactor.
"""

from __future__ import annotations

import logging
import re
import weakref
from collections.abc import Iterable
from typing import Any, Optional
from urllib.parse import parse_qsl, unquote, urlsplit, urlunsplit

from .._forksafe import module_lock

__all__ = [
    "CREDENTIALS",
    "KEYLIKE",
    "REDACTED",
    "USERINFO",
    "Redactor",
    "redact_url",
    "url_secrets",
    "watch_httpx_log",
]

REDACTED = "[redacted]"
MIN_SECRET = 6  # redacting a very short "secret" in free text would mangle every reason

# Things that look like credentials in a backend's error text (Stripe echoes a masked key, for one).
KEYLIKE = re.compile(r"\b(?:sk|rk|pk|whsec|polar_[a-z]+|osp)_[A-Za-z0-9_*\-]{6,}")
# In text no sink wrote (an exception's message): a credential after its label, a URL's user info.
CREDENTIALS = re.compile(
    r"(?i)(bearer\s+|basic\s+|(?:api[_-]?key|token|secret|password|authorization)[\"']?\s*[=:]\s*[\"']?"
    r"(?:bearer\s+|basic\s+)?)"
    r"[^\s\"',;&]+"
)
USERINFO = re.compile(r"(//)[^/@\s]+@")


def url_secrets(url: str) -> list[str]:
    """The credentials and query values of ``url``, as written and decoded."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return []
    found = [parts.username or "", parts.password or ""]
    found += [value for _, value in parse_qsl(parts.query, keep_blank_values=True)]
    found += [value for pair in parts.query.split("&") for value in pair.split("=", 1)[1:]]
    out = []
    for value in found:
        out += [value, unquote(value)]
    return [value for value in dict.fromkeys(out) if value]


def redact_url(url: str) -> str:
    """``url`` with its user info and every query value replaced by ``[redacted]``."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return REDACTED
    netloc = parts.netloc
    if "@" in netloc:
        netloc = f"{REDACTED}@{netloc.rpartition('@')[2]}"
    query = "&".join(
        f"{pair.split('=', 1)[0]}={REDACTED}" if "=" in pair else pair for pair in parts.query.split("&")
    )
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


class Redactor:
    """Removes ``secrets`` and the secret parts of ``urls`` from text."""

    def __init__(self, secrets: Iterable[str] = (), urls: Iterable[str] = ()) -> None:
        urls = tuple(u for u in urls if isinstance(u, str))
        found: set[str] = set()
        for url in urls:
            found.update(url_secrets(url))
        for secret in secrets:
            if isinstance(secret, str):
                found.update((secret, secret.strip(), secret.partition(" ")[2].strip()))
        self.secrets = tuple(sorted((s for s in found if len(s) >= MIN_SECRET), key=len, reverse=True))
        self.origins = frozenset(o for o in map(_origin, urls) if o is not None)
        self.urls = urls

    def __call__(self, text: str) -> str:
        for url in self.urls:
            if url in text:
                text = text.replace(url, redact_url(url))
        for secret in self.secrets:
            text = text.replace(secret, REDACTED)
        return KEYLIKE.sub(REDACTED, text)

    def free_text(self, text: str) -> str:
        """Text from outside any sink (an exception's message): also every labelled credential
        (``Bearer ...``, ``api_key=...``, ``password: ...``) and every URL's user info."""
        text = CREDENTIALS.sub(rf"\1{REDACTED}", self(text))
        return USERINFO.sub(rf"\1{REDACTED}@", text)

    def url(self, text: str) -> str:
        """A URL (or any text) as it may be shown: redacted by structure when it is one of ours."""
        if _origin(text) in self.origins:
            text = redact_url(text)
        return self(text)


def _origin(url: str) -> Optional[tuple[str, str, Optional[int]]]:
    try:
        parts = urlsplit(url)
        return (parts.scheme.lower(), parts.hostname or "", parts.port) if parts.scheme else None
    except ValueError:
        return None


_URL = re.compile(r"https?://[^\s\"'<>]+")


class _HttpxFilter(logging.Filter):
    """Redacts the arguments of httpx's log records with every live :class:`Redactor`."""

    def __init__(self) -> None:
        super().__init__()
        self.redactors: weakref.WeakSet[Redactor] = weakref.WeakSet()

    def filter(self, record: logging.LogRecord) -> bool:
        redactors = list(self.redactors)
        if redactors and isinstance(record.args, tuple) and record.args:
            record.args = tuple(_clean(arg, redactors) for arg in record.args)
        elif redactors and isinstance(record.msg, str):  # formatted by a filter before ours (LiteLLM's)
            text = _URL.sub(lambda url: str(_clean(url.group(0), redactors)), record.msg)
            record.msg = _clean(text, redactors)
        return True


def _clean(arg: Any, redactors: list[Redactor]) -> Any:
    if isinstance(arg, (int, float)) or arg is None:
        return arg
    text = original = str(arg)
    for redactor in redactors:
        text = redactor.url(text)
    return arg if text == original else text


_filter = _HttpxFilter()
_installed = module_lock(globals(), "_installed")
_done = False


def watch_httpx_log(redactor: Redactor) -> None:
    """Redact ``redactor``'s secrets from the ``httpx`` logger's records while it lives."""
    global _done
    with _installed:
        if not _done:
            logging.getLogger("httpx").addFilter(_filter)
            _done = True
        _filter.redactors.add(redactor)
