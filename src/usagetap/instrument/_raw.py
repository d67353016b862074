"""``with_raw_response`` / ``with_streaming_response``: meter the object when the caller parses it.

The SDK hands the caller a raw response wrapper; usagetap leaves it as it is
and hooks its ``parse()`` on the instance, so the first parse meters the
parsed result (a model, or a stream that is then metered as it is read).
"""

from __future__ import annotations

import inspect
import threading
import weakref
from typing import Any, Callable

from .._log import internal_error

__all__ = ["attach_raw", "is_raw_response"]


def is_raw_response(result: Any) -> bool:
    """A Stainless SDK raw response wrapper (``LegacyAPIResponse``, ``APIResponse``, ``AsyncAPIResponse``)."""
    return hasattr(result, "http_response") and callable(getattr(type(result), "parse", None))


class _Once:
    __slots__ = ("_done", "_lock", "on_parsed")

    def __init__(self, on_parsed: Callable[[Any], None]) -> None:
        self.on_parsed = on_parsed
        self._done = False
        self._lock = threading.Lock()

    def __call__(self, parsed: Any) -> None:
        with self._lock:
            if self._done:
                return
            self._done = True
        try:
            self.on_parsed(parsed)
        except Exception as exc:
            internal_error("raw.parse", exc)


def attach_raw(raw: Any, on_parsed: Callable[[Any], None]) -> None:
    """Call ``on_parsed(result)`` the first time ``raw.parse()`` returns."""
    parse, ref, once = type(raw).parse, weakref.ref(raw), _Once(on_parsed)

    if inspect.iscoroutinefunction(parse):

        async def parse_async(*args: Any, **kwargs: Any) -> Any:
            parsed = await parse(ref(), *args, **kwargs)
            once(parsed)
            return parsed

        raw.parse = parse_async
        return

    def parse_sync(*args: Any, **kwargs: Any) -> Any:
        parsed = parse(ref(), *args, **kwargs)
        once(parsed)
        return parsed

    raw.parse = parse_sync
