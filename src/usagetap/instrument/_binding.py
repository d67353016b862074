"""What ``wrap()`` attaches to a client: its defaults and per-client memory."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Optional

from .._record import Scalar

if TYPE_CHECKING:
    from ._adapter import Adapter

__all__ = ["Binding"]


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
