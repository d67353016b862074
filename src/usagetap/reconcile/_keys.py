"""Which listed API key a record's ``api_key_hint`` names.

The providers list their keys with a redacted hint (OpenAI ``redacted_value``, Anthropic
``partial_key_hint``): the head of the key, ``...``, its tail. usagetap's records carry the hint in the
provider's form, never more of the key (``instrument._account.hint``); as the heads and tails may be of
different lengths, a hint names a listed key when each one's head starts the other's and each one's
tail ends the other's.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Optional

__all__ = ["compatible", "resolve"]


def _split(hint: str) -> Optional[tuple[str, str]]:
    head, dots, tail = hint.rpartition("...")
    return (head, tail) if dots and tail else None


def compatible(recorded: str, listed: str) -> bool:
    """Whether a record's hint and a listed key's hint can be the same key."""
    a, b = _split(recorded), _split(listed)
    if a is None or b is None:
        return False
    (head_a, tail_a), (head_b, tail_b) = a, b
    heads = head_a.startswith(head_b) or head_b.startswith(head_a)
    tails = tail_a.endswith(tail_b) or tail_b.endswith(tail_a)
    return heads and tails


def resolve(hints: Iterable[str], keys: Mapping[str, str]) -> dict[str, Optional[str]]:
    """Each hint's key id among ``keys`` (id -> listed hint); None when no key or several keys fit."""
    out: dict[str, Optional[str]] = {}
    for hint in set(hints):
        found = [key_id for key_id, listed in keys.items() if compatible(hint, listed)]
        out[hint] = found[0] if len(found) == 1 else None
    return out
