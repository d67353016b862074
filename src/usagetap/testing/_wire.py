"""What a provider's wire module (``providers/<family>/wire.py``) builds its loopback replies from."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Optional, Union

if TYPE_CHECKING:
    from ._server import ProviderServer

__all__ = ["Event", "Issued", "PatternRoute", "Reply", "Route", "Wire", "count_tokens", "reply_words"]

Event = tuple[Optional[str], Union[str, dict[str, Any]]]
"""An SSE event: its ``event:`` name (or None) and its data."""

_WORDS = ("usage", "is", "metered", "per", "customer", "and", "billed", "to", "the", "token")


@dataclass
class Issued:
    """Usage the server reported for one response, in usagetap's convention (input includes cache)."""

    response_id: str
    path: str
    model: str
    stream: bool
    input_tokens: int
    output_tokens: int
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    reasoning_tokens: int = 0
    reported: bool = True
    dimensions: dict[str, Any] = field(default_factory=dict)


@dataclass
class Reply:
    """What a route answers: a JSON body, SSE events ``(event name or None, data)``, or raw bytes.

    ``error_event`` is the SSE event that ends the stream when ``stream_error_after`` is set
    (default: an OpenAI-style ``data: {"error": ...}``).
    """

    status: int = 200
    body: Any = None
    events: Optional[list[tuple[Optional[str], Union[str, dict[str, Any]]]]] = None
    headers: dict[str, str] = field(default_factory=dict)
    raw: Optional[bytes] = None
    error_event: Optional[tuple[Optional[str], dict[str, Any]]] = None


Route = Callable[..., Reply]
"""``route(server, body, headers)``; a route whose key has ``{placeholders}`` (``"GET /v1/responses/{id}"``)
also gets ``params``: the path's placeholders and the query string's values."""

PatternRoute = Callable[["ProviderServer", dict[str, Any], dict[str, str], "re.Match[str]"], Reply]
"""A route whose path is a regular expression: it also gets the match (Anthropic's batches, Bedrock)."""


def _as_is(path: str, query: Mapping[str, str]) -> Optional[str]:
    return path


@dataclass(frozen=True)
class Wire:
    """One provider's wire format, as its ``wire.py`` declares it (``WIRE``).

    ``routes``: by ``"METHOD /path"``; ``patterns``: ``(method, regular expression, route)``, tried
    in order after ``routes``; ``path_for(path, query)``: the path its routes answer a request for
    (another spelling of one, such as Azure's deployment paths), or None to refuse it (404).
    """

    routes: Mapping[str, Route] = field(default_factory=dict)
    patterns: Sequence[tuple[str, re.Pattern[str], PatternRoute]] = ()
    path_for: Callable[[str, Mapping[str, str]], Optional[str]] = _as_is


def count_tokens(value: Any) -> int:
    """A deterministic token count: whitespace-separated words in every string of ``value``."""
    if isinstance(value, str):
        return len(value.split())
    if isinstance(value, dict):
        return sum(count_tokens(v) for k, v in value.items() if k not in ("role", "type", "name"))
    if isinstance(value, (list, tuple)):
        return sum(count_tokens(v) for v in value)
    return 0


def reply_words(n: int) -> list[str]:
    """``n`` words of a deterministic reply text."""
    return [_WORDS[i % len(_WORDS)] for i in range(n)]
