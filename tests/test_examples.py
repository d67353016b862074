"""Every example runs offline and does what it says."""

from __future__ import annotations

import runpy
from pathlib import Path

EXAMPLES = Path(__file__).parent.parent / "examples"


def test_quickstart_meters_two_customers(capsys) -> None:  # type: ignore[no-untyped-def]
    namespace = runpy.run_path(str(EXAMPLES / "quickstart.py"))
    records = namespace["main"]()
    assert [r.customer for r in records] == ["org_1", "org_2"]
    assert all(r.input_tokens > 0 and r.cost and r.cost > 0 for r in records)
    assert "org_1:" in capsys.readouterr().out
