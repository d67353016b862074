"""Provider names for base URLs: known hosts, and loopback servers that impersonate a provider.

A host usagetap does not know (a gateway, a proxy, a self-hosted server) keeps its host
name as the provider. A loopback server impersonates per SDK family: the same server may
answer OpenAI and Anthropic clients, each under its own provider name.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Optional

from .._forksafe import module_lock
from .._state import STATE

__all__ = ["impersonate", "provider_for_host", "stop_impersonating"]

_lock = module_lock(globals(), "_lock")
_impersonated = STATE.impersonated


def impersonate(netloc: str, providers: Mapping[str, str]) -> None:
    """Treat the server at ``netloc`` (``host:port``) as ``providers[family]`` for clients of each SDK
    family named there (``{"openai": "openai", "anthropic": "anthropic"}``; used by ``usagetap.testing``)."""
    with _lock:
        _impersonated[netloc] = dict(providers)


def stop_impersonating(netloc: str) -> None:
    with _lock:
        _impersonated.pop(netloc, None)


def provider_for_host(host: str, port: Optional[int], known: dict[str, str], family: str) -> str:
    """``known[host]`` (api.openai.com -> openai), what a loopback server impersonates for ``family``
    (the SDK family of the client), or the host itself."""
    if port is not None:
        providers = _impersonated.get(f"{host}:{port}")
        if providers is not None and family in providers:
            return providers[family]
    return known.get(host, host)
