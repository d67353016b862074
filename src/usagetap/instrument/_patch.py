"""``instrument()`` / ``uninstrument()``: meter every client of the installed SDKs, wrapped or not.

For code that constructs its own clients. The SDK's base client class gets a
wrapt wrapper around ``request()``; a client that is also ``wrap()``-ed is
metered by its own hook only, so it still yields one record per call.
"""

from __future__ import annotations

import importlib.util

from .. import _runtime, _switch
from .._forksafe import module_lock
from .._log import DEBUG, WARNING, log_once
from .._state import STATE, UNDO, on_reset
from ..providers import registered
from ._adapter import client_classes, load

__all__ = ["instrument", "instrumented", "uninstrument"]

_lock = module_lock(globals(), "_lock")
_patched = STATE.patched  # (owner class, attribute) -> the original


def instrument() -> list[str]:
    """Meter every client of the installed provider SDKs, including ones created later.

    An alternative to :func:`usagetap.wrap` for code that builds its own
    clients. Idempotent; returns the SDK families it patched. A client both
    wrapped and instrumented is metered once::

        usagetap.instrument()                 # once, at startup
        client = OpenAI()                     # metered, like every client made by any library
        with usagetap.customer("org_123"):
            client.chat.completions.create(model="gpt-4.1", messages=[...])

    With metering off (``USAGETAP_DISABLED=1`` or ``configure(enabled=False)``)
    nothing is patched and it returns ``[]``.
    """
    if not _switch.enabled:
        return []
    done: list[str] = []
    with _lock:
        for provider in registered():
            if not _installed(provider.sdk):
                missing = provider.sdk
                log_once(DEBUG, f"instrument-missing:{missing}", "usagetap: %s is not installed", missing)
                continue
            load(provider).patch(client_classes(provider), _patched)
            done.append(provider.family)
    _runtime.start()
    return done


def _installed(module: str) -> bool:
    """Whether ``module`` can be imported (a submodule's missing parent package: no)."""
    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:
        return False


def uninstrument() -> None:
    """Undo :func:`instrument`. Clients made with :func:`usagetap.wrap` stay metered."""
    with _lock:
        for (owner, name), original in list(_patched.items()):
            current = vars(owner).get(name)
            if getattr(current, "__wrapped__", None) is original:
                setattr(owner, name, original)
            else:
                log_once(
                    WARNING,
                    f"uninstrument:{owner.__qualname__}.{name}",
                    "usagetap: %s.%s was re-patched by someone else; leaving it in place",
                    owner.__qualname__,
                    name,
                )
            del _patched[owner, name]


def instrumented() -> bool:
    """Whether :func:`instrument` is in effect."""
    return bool(_patched)


on_reset(uninstrument, UNDO)
