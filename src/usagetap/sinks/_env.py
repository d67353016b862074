"""A sink from environment variables, for configuration without code.

``USAGETAP_SINK`` names the backend; the rest depends on it:

==============  ===================================================================================
USAGETAP_SINK   variables (``USAGETAP_`` prefix omitted; * = required)
==============  ===================================================================================
ledger          DB (default ``./.usagetap/ledger.db``)
spaire, polar   API_KEY*, BASE_URL, EVENT_NAME, CUSTOMER_FIELD, ORGANIZATION_ID, SANDBOX (polar)
open_spanner    API_KEY*, BASE_URL*, METER, SPLIT_BY_TOKEN_TYPE, DIMENSIONS (comma-separated)
solvapay        API_KEY*, BASE_URL, PRODUCT_REF, ACTION_TYPE, SPLIT_BY_TOKEN_TYPE
openmeter       API_KEY (* unless BASE_URL is set), BASE_URL, SOURCE, EVENT_TYPE
stripe          API_KEY*, BASE_URL, EVENT_NAME, SPLIT_BY_TOKEN_TYPE, CONCURRENCY
http            URL* (or BASE_URL), SECRET, API_KEY (sent as ``Authorization: Bearer``)
otel            CUSTOMER_ATTRIBUTE (the measurements' customer attribute; off when unset); the global
                ``MeterProvider``
==============  ===================================================================================

Every sink also reads ``USAGETAP_TIMEOUT`` (seconds, finite, > 0). A missing
or malformed value (``nan``, ``inf``, a blank ``USAGETAP_SECRET``, a
``USAGETAP_CONCURRENCY`` out of range) raises :class:`usagetap.ConfigurationError`;
its message names the variable and never contains the key.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Optional

from .._record import UsageRecord
from ..errors import ConfigurationError
from .base import MAX_TIMEOUT, BaseSink, Outcomes

__all__ = ["SINKS", "Unbuildable", "sink_from_env", "sink_name_from_env"]

_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off", "")


class _Env:
    def __init__(self, environ: Mapping[str, str], sink: str) -> None:
        self._environ = environ
        self.sink = sink

    def get(self, name: str) -> Optional[str]:
        value = self._environ.get(f"USAGETAP_{name}")
        return value.strip() if value is not None and value.strip() else None

    def required(self, name: str, what: str) -> str:
        value = self.get(name)
        if value is None:
            raise ConfigurationError(f"USAGETAP_SINK={self.sink} needs USAGETAP_{name} ({what})")
        return value

    def api_key(self) -> str:
        # Not stripped: a key with stray whitespace is reported by the sink, without echoing it.
        value = self._environ.get("USAGETAP_API_KEY")
        if value is None or not value.strip():
            raise ConfigurationError(
                f"USAGETAP_SINK={self.sink} needs USAGETAP_API_KEY (the backend's API key)"
            )
        return value

    def secret(self, name: str) -> Optional[str]:
        """A secret that is unset (None) or non-blank; a blank one is a mistake, never "unsigned"."""
        value = self._environ.get(f"USAGETAP_{name}")
        if value is not None and not value.strip():
            raise ConfigurationError(f"USAGETAP_{name} is set but blank; set a value or unset it")
        return None if value is None else value.strip()

    def flag(self, name: str) -> bool:
        value = (self.get(name) or "").lower()
        if value in _TRUE:
            return True
        if value in _FALSE:
            return False
        raise ConfigurationError(f"USAGETAP_{name} must be true or false, got {value!r}")

    def number(self, name: str, cast: Callable[[str], Any]) -> Any:
        value = self.get(name)
        if value is None:
            return None
        try:
            return cast(value)
        except ValueError:
            raise ConfigurationError(f"USAGETAP_{name} must be a number, got {value!r}") from None

    def within(self, name: str, cast: Callable[[str], Any], low: float, high: float) -> Any:
        """A number from ``low`` to ``high`` (finite), or None when unset."""
        value = self.number(name, cast)
        if value is not None and not (math.isfinite(value) and low <= value <= high):
            raise ConfigurationError(f"USAGETAP_{name} must be from {low:g} to {high:g}, got {value!r}")
        return value

    def common(self) -> dict[str, Any]:
        timeout = self.number("TIMEOUT", float)
        if timeout is not None and not (math.isfinite(timeout) and 0 < timeout <= MAX_TIMEOUT):
            raise ConfigurationError(
                f"USAGETAP_TIMEOUT must be a number of seconds > 0 and <= {MAX_TIMEOUT:g}, got {timeout!r}"
            )
        return {} if timeout is None else {"timeout": timeout}

    def options(self, **names: str) -> dict[str, Any]:
        """``{keyword: value}`` for each ``keyword=VARIABLE`` that is set."""
        return {key: value for key, name in names.items() if (value := self.get(name)) is not None}


def _ledger(env: _Env) -> BaseSink:
    from .ledger import Ledger

    return Ledger(env.get("DB"))


def _spaire(env: _Env) -> BaseSink:
    from .spaire import Polar, Spaire

    options = env.options(
        base_url="BASE_URL",
        event_name="EVENT_NAME",
        customer_field="CUSTOMER_FIELD",
        organization_id="ORGANIZATION_ID",
    )
    if env.sink == "polar":
        return Polar(env.api_key(), sandbox=env.flag("SANDBOX"), **options, **env.common())
    return Spaire(env.api_key(), **options, **env.common())


def _open_spanner(env: _Env) -> BaseSink:
    from .open_spanner import OpenSpanner

    dimensions = [d.strip() for d in (env.get("DIMENSIONS") or "").split(",") if d.strip()]
    return OpenSpanner(
        env.api_key(),
        base_url=env.required("BASE_URL", "your Open Spanner URL"),
        split_by_token_type=env.flag("SPLIT_BY_TOKEN_TYPE"),
        dimensions=dimensions,
        **env.options(meter="METER"),
        **env.common(),
    )


def _solvapay(env: _Env) -> BaseSink:
    from .solvapay import SolvaPay

    return SolvaPay(
        env.api_key(),
        split_by_token_type=env.flag("SPLIT_BY_TOKEN_TYPE"),
        **env.options(base_url="BASE_URL", product_ref="PRODUCT_REF", action_type="ACTION_TYPE"),
        **env.common(),
    )


def _openmeter(env: _Env) -> BaseSink:
    from .openmeter import OpenMeter

    base_url = env.get("BASE_URL")
    api_key = env.api_key() if base_url is None or env.get("API_KEY") is not None else None
    return OpenMeter(
        api_key,
        base_url=base_url,
        **env.options(source="SOURCE", event_type="EVENT_TYPE"),
        **env.common(),
    )


def _stripe(env: _Env) -> BaseSink:
    from .stripe import MAX_CONCURRENCY, Stripe

    concurrency = env.within("CONCURRENCY", int, 1, MAX_CONCURRENCY)
    return Stripe(
        env.api_key(),
        split_by_token_type=env.flag("SPLIT_BY_TOKEN_TYPE"),
        **env.options(base_url="BASE_URL", event_name="EVENT_NAME"),
        **({} if concurrency is None else {"concurrency": concurrency}),
        **env.common(),
    )


def _http(env: _Env) -> BaseSink:
    from .http import HTTP

    url = env.get("URL") or env.required("BASE_URL", "the URL to POST batches to; or set USAGETAP_URL")
    headers = {}
    if env.get("API_KEY") is not None:
        headers["Authorization"] = f"Bearer {env.api_key()}"
    return HTTP(url, secret=env.secret("SECRET"), headers=headers, **env.common())


def _otel(env: _Env) -> BaseSink:
    from .otel import OpenTelemetry

    return OpenTelemetry(customer_attribute=env.get("CUSTOMER_ATTRIBUTE"))


SINKS: dict[str, Callable[[_Env], BaseSink]] = {
    "ledger": _ledger,
    "spaire": _spaire,
    "polar": _spaire,
    "open_spanner": _open_spanner,
    "solvapay": _solvapay,
    "openmeter": _openmeter,
    "stripe": _stripe,
    "http": _http,
    "otel": _otel,
}


def _kind(environ: Mapping[str, str]) -> str:
    return (environ.get("USAGETAP_SINK") or "").strip().lower().replace("-", "_")


def sink_name_from_env(environ: Mapping[str, str]) -> str:
    """The name (and so the spool key) of the sink the environment names, even one that cannot be built."""
    return _kind(environ) or "ledger"


class Unbuildable(BaseSink):
    """Stands for a sink the environment names but that cannot be built (``reason``).

    It delivers nothing: every record stays pending under the real sink's name, so a process whose
    environment is fixed delivers them; the pipeline keeps its delivery halted with ``reason``.
    """

    max_batch = 500

    def __init__(self, name: str, reason: str) -> None:
        self.name = name
        self.reason = reason
        self.unavailable = reason

    def send(self, records: Sequence[UsageRecord]) -> Outcomes:
        """Keep every record; delivery stays halted."""
        return Outcomes.halted(records, self.reason)

    def __repr__(self) -> str:
        return f"Unbuildable(name={self.name!r})"


def sink_from_env(environ: Mapping[str, str]) -> Optional[BaseSink]:
    """The sink ``USAGETAP_SINK`` and its variables describe, or None when ``USAGETAP_SINK`` is unset.

    Raises :class:`usagetap.ConfigurationError` for an unknown sink or a missing or malformed variable.
    """
    kind = _kind(environ)
    if not kind:
        return None
    build = SINKS.get(kind)
    if build is None:
        raise ConfigurationError(f"USAGETAP_SINK={kind!r} is not one of {', '.join(sorted(SINKS))}")
    return build(_Env(environ, kind))
