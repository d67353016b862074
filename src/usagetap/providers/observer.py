"""What a provider's stream observer is: it follows one stream item by item and says its usage at the end.

A stream tap (:mod:`usagetap.instrument._streams`) feeds it every item (or only the ones it asks
for) and, when the stream ends, emits one record with :meth:`Observer.result`. The members with
defaults say what an observer may ask of the tap; an observer leaves alone what it doesn't need.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, Any, ClassVar, Optional

from .base import TokenUsage

__all__ = ["Observer"]


class Observer(ABC):
    """Follows one stream and keeps what its record needs. ``observe`` runs on the caller's thread."""

    __slots__ = ()

    kinds: ClassVar[Optional[frozenset[str]]] = None
    """The only event types (an item's ``type``) :meth:`observe` reads; None: every item."""

    tail: int = 0
    """When > 0, :meth:`observe` needs only the first item and the last ``tail`` ones, in order: a sync
    stream may hand it those at its end, and :meth:`hidden` then decides from the item alone."""

    @abstractmethod
    def observe(self, item: Any) -> None:
        """Take in one item of the stream."""

    @abstractmethod
    def result(self) -> Optional[TokenUsage]:
        """The stream's usage, once it has ended; None when there is nothing to bill."""

    if TYPE_CHECKING:

        @property
        def usage_final(self) -> bool:
            """Whether the usage seen is the provider's final figure; False for a stream broken off before
            it (its record is ``partial``). Read once, when the stream ends: an observer may make it a
            property."""
            return True

    else:
        usage_final = True  # a plain attribute by default: reading it costs the caller's thread no call

    def wants_more(self) -> bool:
        """Whether the provider's usage is the next item: a stream closed now first reads a few more."""
        return False

    def hidden(self, item: Any) -> bool:
        """Whether to keep ``item`` from the caller (an item usagetap asked for); must not raise."""
        return False
