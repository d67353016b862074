"""Retry delays: exponential with jitter, capped (tenacity's wait strategies); Retry-After as a minimum."""

from __future__ import annotations

from typing import Any, Optional

__all__ = ["Backoff"]


class _Attempt:
    """The one field of tenacity's RetryCallState its wait strategies read."""

    __slots__ = ("attempt_number",)

    def __init__(self, attempt_number: int) -> None:
        self.attempt_number = attempt_number


class Backoff:
    """``delay(attempts, retry_after)``: seconds to wait before the next attempt of an event."""

    def __init__(self, initial: float = 0.5, cap: float = 300.0, jitter: float = 1.0) -> None:
        import tenacity

        self.cap = cap
        self._wait: Any = tenacity.wait_exponential(multiplier=initial, max=cap) + tenacity.wait_random(
            0, jitter
        )

    def delay(self, attempts: int, retry_after: Optional[float] = None) -> float:
        wait = min(float(self._wait(_Attempt(max(1, attempts)))), self.cap)
        return max(wait, retry_after) if retry_after is not None else wait
