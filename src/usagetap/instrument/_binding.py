"""What ``wrap()`` attaches to a client: its defaults and per-client memory."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Optional

from .._record import Scalar

if TYPE_CHECKING:
    from ._adapter import Adapter

__all__ = ["ATTR", "Binding", "binding_of"]

ATTR = "_usagetap_binding"  # the attribute of a wrapped client holding its Binding


@dataclass
class Binding:
    """Defaults bound to one wrapped client. A customer scope in effect at call time wins over them."""

    adapter: Adapter
    provider: str
    customer: Optional[str] = None
    dimensions: dict[str, Scalar] = field(default_factory=dict)
    meter: Optional[str] = None
    provider_override: Optional[str] = None
    stream_options_rejected: bool = False
    account: dict[str, Scalar] = field(default_factory=dict)
    """The client's account (``_account.account_dimensions``): added to its records' dimensions."""


def binding_of(client: Any) -> Optional[Binding]:
    """The binding of a wrapped client, or None."""
    try:
        binding = vars(client).get(ATTR)
    except TypeError:
        return None
    return binding if isinstance(binding, Binding) else None
