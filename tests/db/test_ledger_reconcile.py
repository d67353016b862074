"""The ledger query ``usagetap reconcile`` matches with: one provider's records within UTC days."""

from __future__ import annotations

from datetime import date, datetime, timezone
from decimal import Decimal
from pathlib import Path

from tests.helpers import make_record
from usagetap.db import ledger as ledger_db


def test_reconcile_rows_are_one_providers_records_within_the_days(tmp_path: Path) -> None:
    conn = ledger_db.connect(tmp_path / "ledger.db")
    nov = [datetime(2026, 11, d, 23, 59, tzinfo=timezone.utc) for d in (1, 2, 3)]
    ledger_db.insert(
        conn,
        [
            make_record(timestamp=nov[0], input_tokens=1),
            make_record(timestamp=nov[1], input_tokens=2, cost=Decimal("0.5"), dimensions={"batch": True}),
            make_record(timestamp=nov[1], provider="anthropic", model="claude-sonnet-4-0", input_tokens=3),
            make_record(timestamp=nov[2], input_tokens=4),
        ],
    )
    rows = ledger_db.reconcile_rows(conn, "openai", date(2026, 11, 2), date(2026, 11, 3))
    assert sorted(rows, key=lambda r: r[3]) == [
        ("2026-11-02", "gpt-4.1", {"batch": True}, 2, 20, Decimal("0.5")),
        ("2026-11-03", "gpt-4.1", {}, 4, 20, None),
    ]
