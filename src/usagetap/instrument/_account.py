"""Which provider account a client bills: the dimensions ``usagetap reconcile`` matches records by.

``api_key_fingerprint`` is a short hash of the client's API key (never the key), ``api_key_hint``
the key as the provider itself shows it in its console and key listings (no more of it: the key's
type prefix and last characters), ``openai_project`` the OpenAI project the client names (its
``project`` / ``OpenAI-Project`` header). A user's own dimension of the same name wins.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Optional

from .._record import Scalar

__all__ = ["FINGERPRINT", "HINT", "PROJECT", "account_dimensions", "fingerprint", "hint"]

FINGERPRINT = "api_key_fingerprint"
HINT = "api_key_hint"
PROJECT = "openai_project"
MIN_HINTED_LENGTH = 24
"""Shorter keys (test keys, proxies' tokens) get no hint: its few characters would be much of the key."""
_ANTHROPIC_HEAD = 16  # "sk-ant-api03-" and 3 characters, as Anthropic's ``partial_key_hint`` shows
_TAIL = 4


def fingerprint(key: str) -> str:
    """12 hex digits of the key's SHA-256: tells keys apart, reveals nothing of one."""
    import hashlib  # imported here: its OpenSSL set-up is a tenth of usagetap's import time

    return hashlib.sha256(key.encode()).hexdigest()[:12]


def hint(key: str, provider: str) -> Optional[str]:
    """``key`` as ``provider`` shows it publicly, or None for a key too short to hint at.

    Anthropic (``partial_key_hint`` of ``GET /v1/organizations/api_keys``, e.g.
    ``sk-ant-api03-R2D...igAA``): the first 16 characters and the last 4. OpenAI (``redacted_value``
    of the project key listings, e.g. ``sk-abc...def``): its own head length is not documented, so
    usagetap keeps less than it shows, the key's type prefix (``sk-``, ``sk-proj-``, ``sk-svcacct-``)
    and the last 4; ``usagetap reconcile`` matches hints by prefix and suffix.
    """
    if len(key) < MIN_HINTED_LENGTH:
        return None
    if provider == "anthropic":
        return f"{key[:_ANTHROPIC_HEAD]}...{key[-_TAIL:]}"
    head = ""
    if key.startswith("sk-"):
        kind, dash, _ = key[3:].partition("-")
        head = f"sk-{kind}-" if dash and kind.isalpha() and kind.islower() else "sk-"
    return f"{head}...{key[-_TAIL:]}"


def account_dimensions(client: Any) -> dict[str, Scalar]:
    """The account dimensions of ``client`` (empty when it names none); never raises."""
    out: dict[str, Scalar] = {}
    try:
        key = vars(client).get("api_key")
        if isinstance(key, str) and key:
            out[FINGERPRINT] = fingerprint(key)
            shown = hint(key, "anthropic" if type(client).__module__.startswith("anthropic") else "openai")
            if shown is not None:
                out[HINT] = shown
        project = vars(client).get("project")
        if not isinstance(project, str):
            headers = vars(client).get("_custom_headers")
            project = headers.get("OpenAI-Project") if isinstance(headers, Mapping) else None
        if isinstance(project, str) and project:
            out[PROJECT] = project
    except TypeError:  # a client without instance attributes
        pass
    return out
