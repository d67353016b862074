"""``usagetap report`` for finance: exact money in files, cents for people, billed cost, invoice lines."""

from __future__ import annotations

import csv
import io
import json
import re
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path

import pytest

from tests.helpers import make_record
from usagetap._report import format_usd
from usagetap.cli import main
from usagetap.sinks import Ledger

OCT = datetime(2026, 10, 20, 9, tzinfo=timezone.utc)
NOV = datetime(2026, 11, 3, 9, tzinfo=timezone.utc)


@pytest.fixture
def ledger(tmp_path: Path) -> Path:
    """Two customers over two months; acme's calls carry a markup (billed_cost), one call is unpriced."""
    path = tmp_path / "ledger.db"
    Ledger(path).send(
        [
            make_record(
                customer="acme",
                timestamp=OCT,
                input_tokens=1000,
                cache_read_tokens=400,
                output_tokens=200,
                reasoning_tokens=50,
                cost=Decimal("1.2345678"),
                billed_cost=Decimal("1.48148136"),
                dimensions={"product": "copilot"},
            ),
            make_record(
                customer="acme",
                timestamp=NOV,
                input_tokens=10,
                output_tokens=2,
                cost=Decimal("0.0000166"),
                billed_cost=Decimal("0.00001992"),
                dimensions={"product": "search"},
            ),
            make_record(
                customer="globex",
                timestamp=NOV,
                input_tokens=5000,
                cache_write_tokens=1000,
                output_tokens=900,
                cost=Decimal("7.5"),
                dimensions={"product": "copilot"},
            ),
            make_record(customer="globex", model="secret-ft", timestamp=NOV, cost=None),
        ]
    )
    return path


def _out(capsys: pytest.CaptureFixture[str], *args: str) -> str:
    assert main(["report", *args]) == 0
    return capsys.readouterr().out


def _csv(capsys: pytest.CaptureFixture[str], *args: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(_out(capsys, "--format", "csv", *args))))


def test_json_money_is_an_exact_decimal_string_never_a_float(
    ledger: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = _out(capsys, "--db", str(ledger), "--format", "json", "--since", "2026-11-01", "--by", "customer")
    assert "e-" not in text
    acme = next(r for r in json.loads(text) if r["customer"] == "acme")
    assert (acme["cost"], acme["billed_cost"], acme["currency"]) == ("0.0000166", "0.00001992", "USD")


def test_csv_and_json_name_the_money_columns_cost_and_billed_cost(
    ledger: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    header = _out(capsys, "--db", str(ledger), "--format", "csv").splitlines()[0].split(",")
    assert header[-4:] == ["cost", "billed_cost", "currency", "unpriced_calls"]
    row = json.loads(_out(capsys, "--db", str(ledger), "--format", "json"))[0]
    assert {"cost", "billed_cost", "currency"} <= set(row) and "cost_usd" not in header


def test_billed_cost_is_empty_where_no_call_carries_a_markup(
    ledger: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = {r["customer"]: r for r in _csv(capsys, "--db", str(ledger), "--by", "customer")}
    assert rows["acme"]["billed_cost"] == "1.48150128"
    assert rows["globex"]["billed_cost"] == "" and rows["globex"]["cost"] == "7.5"


def test_rows_are_sorted_by_cost_the_largest_first(ledger: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rows = _csv(capsys, "--db", str(ledger), "--by", "customer,model")
    assert [(r["customer"], r["model"]) for r in rows] == [
        ("globex", "gpt-4.1"),
        ("acme", "gpt-4.1"),
        ("globex", "secret-ft"),  # unpriced: last
    ]


def test_period_rows_stay_in_time_order_and_by_cost_within_a_period(
    ledger: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = _csv(capsys, "--db", str(ledger), "--by", "month,customer")
    assert [(r["month"], r["customer"]) for r in rows] == [
        ("2026-10", "acme"),
        ("2026-11", "globex"),
        ("2026-11", "acme"),
    ]


def test_report_groups_by_any_dimension_the_records_carry(
    ledger: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = json.loads(_out(capsys, "--db", str(ledger), "--format", "json", "--by", "product"))
    assert [(r["product"], r["calls"], r["cost"]) for r in rows] == [
        ("copilot", 2, "8.7345678"),
        ("search", 1, "0.0000166"),
        (None, 1, None),
    ]


def test_an_unknown_group_key_names_the_dimensions_the_ledger_has(
    ledger: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["report", "--db", str(ledger), "--by", "region"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("usagetap: error: cannot group by region; choose from customer, model")
    assert err.endswith("; dimensions in this ledger: product")


def test_invoice_export_has_one_line_per_customer_and_month(
    ledger: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = _csv(capsys, "--db", str(ledger), "--by", "customer,month")
    lines = {(r["customer"], r["period_start"], r["period_end"]): r for r in rows}
    assert set(lines) == {
        ("acme", "2026-10-01", "2026-10-31"),
        ("acme", "2026-11-01", "2026-11-30"),
        ("globex", "2026-11-01", "2026-11-30"),
    }
    october = lines["acme", "2026-10-01", "2026-10-31"]
    assert {
        k: october[k] for k in ("input_tokens", "cache_read_tokens", "output_tokens", "reasoning_tokens")
    } == {
        "input_tokens": "1000",
        "cache_read_tokens": "400",
        "output_tokens": "200",
        "reasoning_tokens": "50",
    }
    assert (october["cost"], october["billed_cost"], october["currency"]) == (
        "1.2345678",
        "1.48148136",
        "USD",
    )
    assert lines["globex", "2026-11-01", "2026-11-30"]["unpriced_calls"] == "1"


def test_invoice_periods_end_at_the_asked_window(ledger: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rows = _csv(
        capsys,
        "--db",
        str(ledger),
        "--by",
        "customer,month",
        "--since",
        "2026-10-15",
        "--until",
        "2026-11-10",
    )
    assert {(r["period_start"], r["period_end"]) for r in rows} == {
        ("2026-10-15", "2026-10-31"),
        ("2026-11-01", "2026-11-10"),
    }


def test_the_table_shows_cents_and_the_billed_cost(ledger: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = _out(capsys, "--db", str(ledger), "--by", "customer")
    assert "Billed cost (USD)" in out
    assert "$7.50 *" in out and "$1.23" in out and "$1.48" in out and "$8.73 *" in out
    assert "1.2345" not in out


def test_the_table_has_no_billed_column_without_a_markup(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "plain.db"
    Ledger(path).send([make_record(cost=Decimal("2.5"))])
    out = _out(capsys, "--db", str(path))
    assert re.search(r"\$2\.50\b", out) and "Billed" not in out


@pytest.mark.parametrize(
    ("amount", "text"),
    [
        ("0", "$0.00"),
        ("0.0000166", "<$0.01"),
        ("0.005", "$0.01"),
        ("12.345", "$12.35"),
        ("99.999", "$100.00"),
    ],
)
def test_money_for_people_is_rounded_to_cents(amount: str, text: str) -> None:
    assert format_usd(Decimal(amount)) == text


def test_a_dimension_name_with_dots_quotes_or_accents_groups_too(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "odd.db"
    name = 'plan."tier" é'
    Ledger(path).send(
        [
            make_record(cost=Decimal("2"), dimensions={name: "pro"}),
            make_record(cost=Decimal("1"), dimensions={name: "free"}),
            make_record(cost=Decimal("3"), dimensions={name: "pro"}),
        ]
    )
    rows = json.loads(_out(capsys, "--db", str(path), "--format", "json", "--by", name))
    assert [(r[name], r["calls"], r["cost"]) for r in rows] == [("pro", 2, "5"), ("free", 1, "1")]
