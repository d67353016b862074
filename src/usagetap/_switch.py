"""The kill switch: with metering off, ``wrap()`` and ``instrument()`` pass every call straight through.

Off when ``USAGETAP_DISABLED`` is set to a true value (read when usagetap is
imported) or after ``usagetap.configure(enabled=False)``. Each metered call
reads :data:`enabled` once.
"""

from __future__ import annotations

import os

from ._log import log

__all__ = ["enabled", "set_enabled"]

_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off", "")


def _from_env() -> bool:
    value = os.environ.get("USAGETAP_DISABLED", "").strip().lower()
    if value in _TRUE:
        return False
    if value not in _FALSE:
        log.error("usagetap: USAGETAP_DISABLED must be true or false, got %r; metering stays on", value)
    return True


enabled: bool = _from_env()


def set_enabled(value: bool) -> None:
    """Turn metering by ``wrap()`` and ``instrument()`` on or off for the whole process."""
    global enabled
    enabled = bool(value)


def reset() -> None:
    """Back to what ``USAGETAP_DISABLED`` says (for tests)."""
    set_enabled(_from_env())
