"""Provider names for base URLs: known hosts, and loopback servers that impersonate a provider."""

from __future__ import annotations

from typing import Optional

from .._forksafe import module_lock

__all__ = ["impersonate", "provider_for_host", "stop_impersonating"]

_lock = module_lock(globals(), "_lock")
_impersonated: dict[str, str] = {}


def impersonate(netloc: str, provider: str) -> None:
    """Treat the server at ``netloc`` (``host:port``) as ``provider`` (used by ``usagetap.testing``)."""
    with _lock:
        _impersonated[netloc] = provider


def stop_impersonating(netloc: str) -> None:
    with _lock:
        _impersonated.pop(netloc, None)


def provider_for_host(host: str, port: Optional[int], known: dict[str, str]) -> str:
    """``known[host]`` (api.openai.com -> openai), an impersonated loopback server, or the host itself."""
    if port is not None:
        impersonated = _impersonated.get(f"{host}:{port}")
        if impersonated is not None:
            return impersonated
    return known.get(host, host)
