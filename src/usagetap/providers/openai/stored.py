"""Stored responses (OpenAI background mode): who created each one, and which were already metered.

A background response is billed when it completes, which the creating call
does not see: it is metered when a retrieval (``GET /responses/{id}``) finds it
complete. The book lets that record go to the customer in scope when the
response was *created* (in this process), and keeps a second retrieval from
making a second record. Both memories are bounded; across processes the event
id, derived from the response id, still deduplicates downstream.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Generic, Optional, TypeVar

__all__ = ["ResponseBook"]

T = TypeVar("T")

MAX_ENTRIES = 10_000


class ResponseBook(Generic[T]):
    """Creators of pending responses by response id, and the ids already metered."""

    def __init__(self, max_entries: int = MAX_ENTRIES) -> None:
        self._max = max_entries
        self._lock = threading.Lock()
        self._creators: OrderedDict[str, T] = OrderedDict()
        self._metered: OrderedDict[str, None] = OrderedDict()

    def remember(self, response_id: str, creator: T) -> None:
        """``creator`` made ``response_id``, whose usage is not known yet."""
        with self._lock:
            self._creators[response_id] = creator
            self._creators.move_to_end(response_id)
            while len(self._creators) > self._max:
                self._creators.popitem(last=False)

    def creator(self, response_id: str) -> Optional[T]:
        with self._lock:
            return self._creators.get(response_id)

    def first_metering(self, response_id: str) -> bool:
        """True the first time ``response_id``'s usage is metered (and forget its creator); False after."""
        with self._lock:
            self._creators.pop(response_id, None)
            if response_id in self._metered:
                return False
            self._metered[response_id] = None
            while len(self._metered) > self._max:
                self._metered.popitem(last=False)
            return True
