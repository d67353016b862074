"""``usagetap reconcile``: the ledger against the provider's own usage and cost APIs.

Reads OpenAI's or Anthropic's organization usage and cost reports with an admin key
(``USAGETAP_OPENAI_ADMIN_KEY``, ``USAGETAP_ANTHROPIC_ADMIN_KEY``) and matches them with the
metered records by UTC day x model x project/workspace x service tier x batch: per bucket, the
provider's tokens (and cost, where the provider splits it by model), the metered ones, the coverage
and the residual. OpenAI's costs have no model, so its cost is compared per day.

By API key too when every record carries an ``api_key_hint`` (the key as the provider shows it) and
each hint names exactly one key of the provider's key listing (``by_key=None``, automatic), or when
asked (``by_key=True``: records naming no key go to a bucket without a key); costs are then compared
per day.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from datetime import date
from decimal import Decimal
from types import ModuleType
from typing import Optional

import httpx

from ._http import AdminAPI, AdminError
from ._keys import resolve
from ._match import HINT_DIMENSION, LedgerRow, hinted, match
from ._model import Bucket, Day, Key, Result, UsageRow

__all__ = [
    "ADMIN_KEY_VARIABLES",
    "AdminError",
    "Bucket",
    "Day",
    "Key",
    "PROVIDERS",
    "Result",
    "base_url_for",
    "reconcile",
]

PROVIDERS = ("openai", "anthropic")
ADMIN_KEY_VARIABLES = {"openai": "USAGETAP_OPENAI_ADMIN_KEY", "anthropic": "USAGETAP_ANTHROPIC_ADMIN_KEY"}
_BASE_URL_VARIABLES = {"openai": "OPENAI_BASE_URL", "anthropic": "ANTHROPIC_BASE_URL"}


def _client_module(provider: str) -> ModuleType:
    from . import anthropic, openai

    return {"openai": openai, "anthropic": anthropic}[provider]


def base_url_for(provider: str, given: Optional[str] = None) -> str:
    """``given``, else the SDK's variable (``OPENAI_BASE_URL``, ``ANTHROPIC_BASE_URL``), else the API's."""
    return given or os.environ.get(_BASE_URL_VARIABLES[provider]) or _client_module(provider).DEFAULT_URL


def reconcile(
    provider: str,
    since: date,
    until: date,
    ledger: Sequence[LedgerRow],
    *,
    admin_key: str,
    base_url: Optional[str] = None,
    max_drift: Decimal = Decimal(1),
    progress: Optional[Callable[[str], None]] = None,
    transport: Optional[httpx.BaseTransport] = None,
    by_key: Optional[bool] = None,
) -> Result:
    """Read the provider's usage and cost for the UTC days ``since`` .. ``until`` and match ``ledger``
    (by API key: ``by_key`` True, False, or None: when every record's key hint names a listed key)."""
    if provider not in PROVIDERS:
        raise ValueError(f"reconcile supports {', '.join(PROVIDERS)}, not {provider!r}")
    client = _client_module(provider)
    with AdminAPI(
        base_url_for(provider, base_url),
        client.headers(admin_key),
        secret=admin_key,
        progress=progress,
        transport=transport,
    ) as api:
        keyed = by_key is True or (by_key is None and hinted(ledger))
        usage = list(client.usage(api, since, until, by_key=keyed))
        costs = list(client.costs(api, since, until))
        keys = (
            _key_listing(provider, api, usage, ledger, forced=by_key is True, progress=progress)
            if keyed
            else None
        )
    return match(
        provider,
        since.isoformat(),
        until.isoformat(),
        usage,
        costs,
        ledger,
        max_drift=max_drift,
        costs_per_bucket=provider == "anthropic",
        api_keys=keys,
    )


def _key_listing(
    provider: str,
    api: AdminAPI,
    usage: Sequence[UsageRow],
    ledger: Sequence[LedgerRow],
    *,
    forced: bool,
    progress: Optional[Callable[[str], None]],
) -> Optional[dict[str, str]]:
    """The provider's key ids with their hints; None (not by key) when, not ``forced``, the listing
    is refused or a record's hint names no single listed key."""
    from . import anthropic, openai

    try:
        if provider == "openai":
            keys = openai.api_keys(api, {row.key.scope for row in usage if row.key.scope})
        else:
            keys = anthropic.api_keys(api)
    except AdminError as exc:
        if forced:
            raise
        if progress is not None:
            progress(f"API keys: not matched by key ({exc})")
        return None
    if forced:
        return keys
    owners = resolve((str(dims.get(HINT_DIMENSION)) for _, _, dims, *_ in ledger), keys)
    if all(owners.values()):
        return keys
    if progress is not None:
        progress("API keys: not matched by key (a record's key is not in the listing, or is ambiguous)")
    return None
