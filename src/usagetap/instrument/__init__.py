"""Interception: ``wrap()`` one client, or (later) ``instrument()`` the SDK classes globally."""

from ._wrap import wrap

__all__ = ["wrap"]
