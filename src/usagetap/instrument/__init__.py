"""Interception: ``wrap()`` one client, or ``instrument()`` the SDK classes globally."""

from ._manual import record
from ._patch import instrument, instrumented, uninstrument
from ._wrap import wrap

__all__ = ["instrument", "instrumented", "record", "uninstrument", "wrap"]
