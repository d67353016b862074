"""A sink from environment variables, for configuration without code.

``USAGETAP_SINK`` names the backend; the rest depends on it:

==============  ===================================================================================
USAGETAP_SINK   variables (``USAGETAP_`` prefix omitted; * = required)
==============  ===================================================================================
ledger          DB (default ``./.usagetap/ledger.db``)
spaire, polar   API_KEY*, BASE_URL, EVENT_NAME, CUSTOMER_FIELD, ORGANIZATION_ID, SANDBOX (polar)
open_spanner    API_KEY*, BASE_URL*, METER, SPLIT_BY_TOKEN_TYPE, DIMENSIONS (comma-separated), ENSURE_METER
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
its message names the variable and never contains the key. A sink built in
code reads the same variables for the arguments it is not given (:mod:`._vars`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Optional

from .._record import UsageRecord
from ..errors import ConfigurationError
from ._vars import EnvVars, sink_kind
from .base import BaseSink, Outcomes

__all__ = ["SINKS", "Unbuildable", "sink_from_env", "sink_name_from_env"]


def _ledger(env: EnvVars) -> BaseSink:
    from .ledger import Ledger

    return Ledger(env.get("DB"))


def _spaire(env: EnvVars) -> BaseSink:
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


def _open_spanner(env: EnvVars) -> BaseSink:
    from .open_spanner import OpenSpanner

    dimensions = [d.strip() for d in (env.get("DIMENSIONS") or "").split(",") if d.strip()]
    return OpenSpanner(
        env.api_key(),
        base_url=env.required("BASE_URL", "your Open Spanner URL"),
        split_by_token_type=env.flag("SPLIT_BY_TOKEN_TYPE"),
        dimensions=dimensions,
        ensure_meter=env.flag("ENSURE_METER"),
        **env.options(meter="METER"),
        **env.common(),
    )


def _solvapay(env: EnvVars) -> BaseSink:
    from .solvapay import SolvaPay

    return SolvaPay(
        env.api_key(),
        split_by_token_type=env.flag("SPLIT_BY_TOKEN_TYPE"),
        **env.options(base_url="BASE_URL", product_ref="PRODUCT_REF", action_type="ACTION_TYPE"),
        **env.common(),
    )


def _openmeter(env: EnvVars) -> BaseSink:
    from .openmeter import OpenMeter

    base_url = env.get("BASE_URL")
    api_key = env.api_key() if base_url is None or env.get("API_KEY") is not None else None
    return OpenMeter(
        api_key,
        base_url=base_url,
        **env.options(source="SOURCE", event_type="EVENT_TYPE"),
        **env.common(),
    )


def _stripe(env: EnvVars) -> BaseSink:
    from .stripe import MAX_CONCURRENCY, Stripe

    concurrency = env.within("CONCURRENCY", int, 1, MAX_CONCURRENCY)
    return Stripe(
        env.api_key(),
        split_by_token_type=env.flag("SPLIT_BY_TOKEN_TYPE"),
        **env.options(base_url="BASE_URL", event_name="EVENT_NAME"),
        **({} if concurrency is None else {"concurrency": concurrency}),
        **env.common(),
    )


def _http(env: EnvVars) -> BaseSink:
    from .http import HTTP

    url = env.get("URL") or env.required("BASE_URL", "the URL to POST batches to; or set USAGETAP_URL")
    headers = {}
    if env.get("API_KEY") is not None:
        headers["Authorization"] = f"Bearer {env.api_key()}"
    return HTTP(url, secret=env.secret("SECRET"), headers=headers, **env.common())


def _otel(env: EnvVars) -> BaseSink:
    from .otel import OpenTelemetry

    return OpenTelemetry(customer_attribute=env.get("CUSTOMER_ATTRIBUTE"))


SINKS: dict[str, Callable[[EnvVars], BaseSink]] = {
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


def sink_name_from_env(environ: Mapping[str, str]) -> str:
    """The name (and so the spool key) of the sink the environment names, even one that cannot be built."""
    return sink_kind(environ) or "ledger"


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
    kind = sink_kind(environ)
    if not kind:
        return None
    build = SINKS.get(kind)
    if build is None:
        raise ConfigurationError(f"USAGETAP_SINK={kind!r} is not one of {', '.join(sorted(SINKS))}")
    return build(EnvVars(environ, kind))
