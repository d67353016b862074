"""The ``USAGETAP_`` variables a sink reads: for ``USAGETAP_SINK`` and for a constructor's missing arguments.

A sink constructor fills each argument it was not given from its documented
variable (``Spaire()`` takes ``USAGETAP_API_KEY``). The environment describes
one sink, so a key is never sent to a URL it was not meant for: a constructor
reads the variables when ``USAGETAP_SINK`` names its sink, or when
``USAGETAP_SINK`` is unset and the code gives it neither its key nor its URL;
never when ``USAGETAP_SINK`` names another sink. ``USAGETAP_TIMEOUT`` applies
to every sink.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Mapping
from typing import Any, Optional, overload

from ..errors import ConfigurationError
from .base import MAX_TIMEOUT

__all__ = ["EnvVars", "sink_kind"]

_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off", "")


def sink_kind(environ: Mapping[str, str]) -> str:
    """The sink ``USAGETAP_SINK`` names, normalized (``Open-Spanner`` -> ``open_spanner``); "" when unset."""
    return (environ.get("USAGETAP_SINK") or "").strip().lower().replace("-", "_")


class EnvVars:
    """One sink's view of the environment."""

    def __init__(self, environ: Mapping[str, str], sink: str) -> None:
        self._environ = environ
        self.sink = sink
        self.unread: Optional[str] = None

    @classmethod
    def for_constructor(cls, sink: str, *given: Optional[str]) -> EnvVars:
        """The variables a constructor of ``sink`` reads; ``given``: the key and URL its caller passed."""
        kind = sink_kind(os.environ)
        if kind == sink or (not kind and all(value is None for value in given)):
            return cls(os.environ, sink)
        view = cls({}, sink)
        view.unread = (
            f"USAGETAP_SINK={kind}, not {sink}"
            if kind
            else f"the key and URL are read from the environment together, or with USAGETAP_SINK={sink}"
        )
        return view

    def get(self, name: str) -> Optional[str]:
        value = self._environ.get(f"USAGETAP_{name}")
        return value.strip() if value is not None and value.strip() else None

    def required(self, name: str, what: str) -> str:
        value = self.get(name)
        if value is None:
            raise ConfigurationError(f"USAGETAP_SINK={self.sink} needs USAGETAP_{name} ({what})")
        return value

    def api_key(self) -> str:
        # Not stripped: a key with stray whitespace is reported by the sink, without echoing it.
        value = self._environ.get("USAGETAP_API_KEY")
        if value is None or not value.strip():
            raise ConfigurationError(
                f"USAGETAP_SINK={self.sink} needs USAGETAP_API_KEY (the backend's API key)"
            )
        return value

    def secret(self, name: str) -> Optional[str]:
        """A secret that is unset (None) or non-blank; a blank one is a mistake, never "unsigned"."""
        value = self._environ.get(f"USAGETAP_{name}")
        if value is not None and not value.strip():
            raise ConfigurationError(f"USAGETAP_{name} is set but blank; set a value or unset it")
        return None if value is None else value.strip()

    def flag(self, name: str) -> bool:
        value = (self.get(name) or "").lower()
        if value in _TRUE:
            return True
        if value in _FALSE:
            return False
        raise ConfigurationError(f"USAGETAP_{name} must be true or false, got {value!r}")

    def number(self, name: str, cast: Callable[[str], Any]) -> Any:
        value = self.get(name)
        if value is None:
            return None
        try:
            return cast(value)
        except ValueError:
            raise ConfigurationError(f"USAGETAP_{name} must be a number, got {value!r}") from None

    def within(self, name: str, cast: Callable[[str], Any], low: float, high: float) -> Any:
        """A number from ``low`` to ``high`` (finite), or None when unset."""
        value = self.number(name, cast)
        if value is not None and not (math.isfinite(value) and low <= value <= high):
            raise ConfigurationError(f"USAGETAP_{name} must be from {low:g} to {high:g}, got {value!r}")
        return value

    def common(self) -> dict[str, Any]:
        timeout = self.number("TIMEOUT", float)
        if timeout is not None and not (math.isfinite(timeout) and 0 < timeout <= MAX_TIMEOUT):
            raise ConfigurationError(
                f"USAGETAP_TIMEOUT must be a number of seconds > 0 and <= {MAX_TIMEOUT:g}, got {timeout!r}"
            )
        return {} if timeout is None else {"timeout": timeout}

    def options(self, **names: str) -> dict[str, Any]:
        """``{keyword: value}`` for each ``keyword=VARIABLE`` that is set."""
        return {key: value for key, name in names.items() if (value := self.get(name)) is not None}

    # -- a constructor's missing arguments --------------------------------

    def key_or(self, given: Optional[str]) -> Optional[str]:
        """``given``, else ``USAGETAP_API_KEY`` (unstripped, so the sink reports stray whitespace)."""
        if given is not None:
            return given
        return self._environ.get("USAGETAP_API_KEY")

    def required_key(self, given: Optional[str]) -> Optional[str]:
        """:meth:`key_or`, saying why ``USAGETAP_API_KEY`` was not read when it is set but not this sink's."""
        key = self.key_or(given)
        if key is None and self.unread is not None and "USAGETAP_API_KEY" in os.environ:
            raise ConfigurationError(
                f"{self.sink}: an API key is required (pass api_key=...); USAGETAP_API_KEY is not read "
                f"here: {self.unread}"
            )
        return key

    @overload
    def text_or(self, given: Optional[str], name: str, default: str) -> str: ...
    @overload
    def text_or(self, given: Optional[str], name: str, default: None = None) -> Optional[str]: ...
    def text_or(self, given: Optional[str], name: str, default: Optional[str] = None) -> Optional[str]:
        """``given``, else ``USAGETAP_{name}``, else ``default``."""
        if given is not None:
            return given
        value = self.get(name)
        return default if value is None else value

    def flag_or(self, given: Optional[bool], name: str) -> bool:
        """``given``, else ``USAGETAP_{name}`` as a boolean (unset: False)."""
        return self.flag(name) if given is None else given

    def timeout_or(self, given: Optional[float], default: float) -> float:
        """``given``, else ``USAGETAP_TIMEOUT`` (read for every sink), else ``default``."""
        if given is not None:
            return given
        timeout: float = EnvVars(os.environ, self.sink).common().get("timeout", default)
        return timeout
