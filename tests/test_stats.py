"""Process-wide counters."""

from __future__ import annotations

import usagetap
from usagetap import _stats


def test_every_documented_counter_is_present_at_zero_before_it_counts() -> None:
    counts = usagetap.stats()
    assert {name: counts[name] for name in _stats.COUNTERS} == dict.fromkeys(_stats.COUNTERS, 0)
    assert counts["dead"] == 0 and counts["dropped.invalid"] == 0


def test_the_stats_docstring_lists_every_counter() -> None:
    doc = usagetap.stats.__doc__ or ""
    assert [name for name in _stats.COUNTERS if f"``{name}``" not in doc] == []
