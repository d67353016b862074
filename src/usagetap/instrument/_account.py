"""Which provider account a client bills: the dimensions ``usagetap reconcile`` matches records by.

``api_key_fingerprint`` is a short hash of the client's API key (never the key), ``openai_project``
the OpenAI project the client names (its ``project`` / ``OpenAI-Project`` header). A user's own
dimension of the same name wins.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .._record import Scalar

__all__ = ["FINGERPRINT", "PROJECT", "account_dimensions", "fingerprint"]

FINGERPRINT = "api_key_fingerprint"
PROJECT = "openai_project"


def fingerprint(key: str) -> str:
    """12 hex digits of the key's SHA-256: tells keys apart, reveals nothing of one."""
    import hashlib  # imported here: its OpenSSL set-up is a tenth of usagetap's import time

    return hashlib.sha256(key.encode()).hexdigest()[:12]


def account_dimensions(client: Any) -> dict[str, Scalar]:
    """The account dimensions of ``client`` (empty when it names none); never raises."""
    out: dict[str, Scalar] = {}
    try:
        key = vars(client).get("api_key")
        if isinstance(key, str) and key:
            out[FINGERPRINT] = fingerprint(key)
        project = vars(client).get("project")
        if not isinstance(project, str):
            headers = vars(client).get("_custom_headers")
            project = headers.get("OpenAI-Project") if isinstance(headers, Mapping) else None
        if isinstance(project, str) and project:
            out[PROJECT] = project
    except TypeError:  # a client without instance attributes
        pass
    return out
