"""OpenAI's wire format for the loopback server: chat, legacy completions and embeddings
(:mod:`.chat_wire`), the Responses API (:mod:`.responses_wire`), and Azure OpenAI's paths onto them."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Optional

from ...testing._wire import Wire
from . import chat_wire, responses_wire

__all__ = ["WIRE"]

# Azure OpenAI paths, answered by the same routes as OpenAI's /v1/...: deployment paths and
# the data-plane paths need ?api-version=, the v1 API under /openai/v1 does not.
_AZURE_PATH = re.compile(r"^/openai(?:/deployments/(?P<deployment>[^/]+)|(?P<v1>/v1))?(?P<rest>/.*)$")


def path_for(path: str, query: Mapping[str, str]) -> Optional[str]:
    """The ``/v1/...`` path an Azure OpenAI path is answered at (None: it lacks ``api-version``)."""
    azure = _AZURE_PATH.match(path)
    if azure is None:
        return path
    if not azure.group("v1") and "api-version" not in query:
        return None
    return "/v1" + azure.group("rest")


WIRE = Wire({**chat_wire.ROUTES, **responses_wire.ROUTES}, path_for=path_for)
