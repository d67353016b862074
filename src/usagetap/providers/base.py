"""What extraction produces: token counts as the provider reported them, in usagetap's convention."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any, Optional

from .._log import internal_error
from .._record import MAX_TOKENS, TOKEN_FIELDS, Scalar

__all__ = [
    "TokenUsage",
    "field_of",
    "fit_usage",
    "int_of",
    "is_object",
    "sse_payloads",
    "unreadable",
    "unreported",
]


@dataclass
class TokenUsage:
    """Usage of one response. ``input_tokens`` includes cache reads and writes; ``output_tokens`` reasoning.

    ``reported`` is False when the provider sent no usage at all (the record will be ``partial``).
    ``issue`` says why usage that was reported cannot be billed as exact (the record will be
    ``partial``, with the issue in its ``usage_issue`` dimension).
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
    issue: Optional[str] = None


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


def unreported(obj: Any, *names: str) -> Optional[str]:
    """An issue naming the counts among ``names`` that ``obj`` leaves out or reports as null, or None.

    A count a provider always sends, missing, is unknown: never billed as a silent zero.
    """
    absent = [name for name in names if field_of(obj, name) is None]
    return f"{', '.join(absent)} not reported" if absent else None


def is_object(value: Any) -> bool:
    """Whether a usage value can hold fields: a mapping or an object, not a string, a number or a list."""
    return not isinstance(value, (str, bytes, bytearray, int, float, list, tuple))


def unreadable(usage: Any, *, model: Optional[str], response_id: Optional[str]) -> TokenUsage:
    """Usage that is not an object: nothing can be counted, so the record is flagged and the error counted."""
    issue = f"usage is a {type(usage).__name__}, not an object"
    internal_error("usage", TypeError(issue))
    return TokenUsage(model=model, response_id=response_id, issue=issue)


# (part, total) pairs: a part larger than its total is cut down to it
_PARTS = (
    ("cache_write_tokens", "input_tokens"),
    ("cache_read_tokens", "input_tokens"),
    ("reasoning_tokens", "output_tokens"),
)


def _shown(value: object) -> str:
    """A reported value for an issue text: its repr, cut short (it is the provider's, unchecked)."""
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def fit_usage(usage: TokenUsage) -> list[str]:
    """Fit ``usage`` to the record's rules in place, noting each change in ``issue``; return their kinds.

    A count above :data:`~usagetap._record.MAX_TOKENS` cannot be a real call's: it is not billed
    (set to 0) and the reported value is kept in the issue (``out_of_range``). A part larger than
    its total (reasoning above output, cache reads and writes above input) is cut down to what the
    total leaves; the totals, which the provider bills, stay as reported (``parts_exceed_total``).
    A count that is no count (negative, fractional, not a number) is not billed either
    (``not_a_count``); a whole float is taken as its integer.
    """
    notes: dict[str, list[str]] = {}
    for name in TOKEN_FIELDS:
        value = getattr(usage, name)
        if type(value) is float and value.is_integer() and 0 <= value <= MAX_TOKENS:
            setattr(usage, name, int(value))
        elif type(value) is not int or value < 0:
            notes.setdefault("not_a_count", []).append(f"{name} {_shown(value)} is not a count, not billed")
            setattr(usage, name, 0)
        elif value > MAX_TOKENS:
            notes.setdefault("out_of_range", []).append(f"{name} {value} over {MAX_TOKENS}, not billed")
            setattr(usage, name, 0)
    for part, total in _PARTS:
        value, whole = getattr(usage, part), getattr(usage, total)
        room = whole - usage.cache_write_tokens if part == "cache_read_tokens" else whole
        if type(value) is int and type(room) is int and 0 <= room < value:
            notes.setdefault("parts_exceed_total", []).append(
                f"{part} {value} over {total} {whole}, cut to {room}"
            )
            setattr(usage, part, room)
    if notes:
        texts = [text for kind in notes.values() for text in kind]
        usage.issue = "; ".join(([usage.issue] if usage.issue else []) + texts)
    return list(notes)


def sse_payloads(body: bytes) -> list[Any]:
    """The JSON payloads of the events in an SSE body (``[DONE]`` and non-JSON data skipped)."""
    payloads: list[Any] = []
    for block in re.split(rb"\r\n\r\n|\n\n|\r\r", body):
        lines = [line[5:] for line in block.splitlines() if line.startswith(b"data:")]
        data = b"\n".join(line[1:] if line.startswith(b" ") else line for line in lines)
        if not data or data == b"[DONE]":
            continue
        try:
            payloads.append(json.loads(data))
        except ValueError:
            continue
    return payloads
