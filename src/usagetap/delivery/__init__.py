"""Delivery: from capture to a sink's acknowledgement.

The pipeline (its threads, the spool, pricing) is imported on first use, not with ``usagetap``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .settings import DURABILITY, FlushResult, Settings, default_spool_path

if TYPE_CHECKING:
    from .pipeline import Pipeline

__all__ = ["DURABILITY", "FlushResult", "Pipeline", "Settings", "default_spool_path"]


def __getattr__(name: str) -> Any:
    if name == "Pipeline":
        from . import pipeline

        return getattr(pipeline, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
