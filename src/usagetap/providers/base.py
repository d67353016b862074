"""What extraction produces: token counts as the provider reported them, in usagetap's convention."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional

from ..record import Scalar

__all__ = ["TokenUsage", "field_of", "int_of"]


@dataclass
class TokenUsage:
    """Usage of one response. ``input_tokens`` includes cache reads and writes; ``output_tokens`` reasoning.

    ``reported`` is False when the provider sent no usage at all (the record will be ``partial``).
    """

    model: Optional[str] = None
    response_id: Optional[str] = None
    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    reasoning_tokens: int = 0
    dimensions: dict[str, Scalar] = field(default_factory=dict)
    reported: bool = True


def field_of(obj: Any, name: str) -> Any:
    """``obj[name]`` for mappings, ``obj.name`` otherwise; None when absent."""
    if isinstance(obj, dict):
        return obj.get(name)
    return getattr(obj, name, None)


def int_of(obj: Any, name: str) -> int:
    """An integer count from ``obj`` (0 when absent or null)."""
    value = field_of(obj, name)
    if type(value) is int:
        return value
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, int):
        if isinstance(value, float) and value.is_integer():
            return int(value)
        raise TypeError(f"usage field {name!r} is not an integer: {value!r}")
    return value
