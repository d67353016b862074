"""What configures delivery and what a flush reports: light, imported with ``usagetap``.

The pipeline itself (its threads, the spool, pricing) is imported on first use.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Optional

if TYPE_CHECKING:
    from .._record import UsageRecord

__all__ = ["DURABILITY", "FlushResult", "Settings", "default_spool_path"]

DURABILITY = ("memory", "spool", "sync")


def default_spool_path() -> str:
    """``$USAGETAP_SPOOL``, or ``./.usagetap/spool.db`` (in a read-only working directory, the
    per-user data directory: see :mod:`usagetap._paths`)."""
    from .._paths import default_dir

    return os.environ.get("USAGETAP_SPOOL") or os.path.join(default_dir(), "spool.db")


@dataclass(frozen=True)
class FlushResult:
    """What a flush achieved: events ``sent`` and ``dead`` while it ran, ``pending`` when it returned."""

    sent: int
    pending: int
    dead: int

    def __bool__(self) -> bool:
        return self.pending == 0


@dataclass
class Settings:
    """How the pipeline buffers, stores and batches. See ``usagetap.configure()``."""

    durability: str = "memory"
    spool_path: str = field(default_factory=default_spool_path)
    flush_interval: float = 1.0
    batch_size: int = 500
    commit_interval: float = 0.1
    max_queue: int = 10_000
    max_queue_bytes: int = 64 << 20
    max_spool_bytes: int = 1 << 30
    overflow: str = "drop_newest"
    block_timeout: float = 1.0
    on_drop: Optional[Callable[[Optional[UsageRecord], str], None]] = None
    lease_seconds: float = 120.0
