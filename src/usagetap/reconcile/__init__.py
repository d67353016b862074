"""``usagetap reconcile``: the ledger against the provider's own usage and cost APIs.

Reads OpenAI's or Anthropic's organization usage and cost reports with an admin key
(``USAGETAP_OPENAI_ADMIN_KEY``, ``USAGETAP_ANTHROPIC_ADMIN_KEY``) and matches them with the
metered records by UTC day x model x project/workspace x service tier x batch: per bucket, the
provider's tokens (and cost, where the provider splits it by model), the metered ones, the coverage
and the residual. OpenAI's costs have no model, so its cost is compared per day.
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
from ._match import LedgerRow, match
from ._model import Bucket, Day, Key, Result

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
) -> Result:
    """Read the provider's usage and cost for the UTC days ``since`` .. ``until`` and match ``ledger``."""
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
        usage = list(client.usage(api, since, until))
        costs = list(client.costs(api, since, until))
    return match(
        provider,
        since.isoformat(),
        until.isoformat(),
        usage,
        costs,
        ledger,
        max_drift=max_drift,
        costs_per_bucket=provider == "anthropic",
    )
