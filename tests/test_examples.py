"""Every example runs offline and does what it says."""

from __future__ import annotations

import runpy
from decimal import Decimal
from pathlib import Path

EXAMPLES = Path(__file__).parent.parent / "examples"


def test_quickstart_meters_two_customers(capsys) -> None:  # type: ignore[no-untyped-def]
    namespace = runpy.run_path(str(EXAMPLES / "quickstart.py"))
    records = namespace["main"]()
    assert [r.customer for r in records] == ["org_1", "org_2"]
    assert all(r.input_tokens > 0 and r.cost and r.cost > 0 for r in records)
    assert "org_1:" in capsys.readouterr().out


def test_agent_runs_totals_a_run_per_call_and_refuses_what_the_guard_refuses(capsys) -> None:  # type: ignore[no-untyped-def]
    runs = runpy.run_path(str(EXAMPLES / "agent_runs.py"))["main"]()
    paid, free, refused = runs
    assert (paid.customer, paid.calls, paid.error) == ("org_paid", 4, None)
    assert paid.cost is not None and paid.billed_cost == paid.cost * Decimal("1.3")
    assert (free.calls, refused.calls, refused.error) == (4, 1, "BudgetExceeded")
    out = capsys.readouterr().out
    assert "refused: org_free used" in out and "refused: a call with no customer" in out
