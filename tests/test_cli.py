from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import make_record
from usagetap.cli import main
from usagetap.sinks import Ledger


@pytest.fixture
def ledger(tmp_path: Path) -> Path:
    path = tmp_path / "ledger.db"
    day1 = datetime(2026, 11, 1, 10, tzinfo=timezone.utc)
    day2 = datetime(2026, 11, 2, 10, tzinfo=timezone.utc)
    Ledger(path).send(
        [
            make_record(
                customer="acme",
                model="gpt-4.1",
                timestamp=day1,
                input_tokens=100,
                output_tokens=10,
                cache_read_tokens=64,
                cost=Decimal("0.0005"),
                dimensions={"feature": "chat"},
            ),
            make_record(
                customer="acme",
                model="gpt-4.1",
                timestamp=day2,
                input_tokens=50,
                output_tokens=5,
                cost=Decimal("0.00025"),
                dimensions={"feature": "search"},
            ),
            make_record(
                customer="globex",
                model="gpt-4.1-mini",
                timestamp=day2,
                input_tokens=7,
                output_tokens=3,
                cost=Decimal("0.000004"),
            ),
            make_record(
                customer="globex",
                model="secret-ft",
                timestamp=day2,
                input_tokens=9,
                output_tokens=1,
                cost=None,
            ),
        ]
    )
    return path


def run_json(capsys: pytest.CaptureFixture[str], *args: str) -> list:
    assert main(["report", "--format", "json", *args]) == 0
    return json.loads(capsys.readouterr().out)


def test_json_report_groups_by_customer_and_model(ledger: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rows = run_json(capsys, "--db", str(ledger))
    assert [(r["customer"], r["model"], r["calls"]) for r in rows] == [
        ("acme", "gpt-4.1", 2),
        ("globex", "gpt-4.1-mini", 1),
        ("globex", "secret-ft", 1),
    ]
    acme = rows[0]
    assert (acme["input_tokens"], acme["output_tokens"], acme["cache_read_tokens"]) == (150, 15, 64)
    assert acme["cost"] == "0.00075" and acme["currency"] == "USD"
    assert rows[2]["cost"] is None and rows[2]["unpriced_calls"] == 1


def test_report_by_customer_only_and_by_feature(ledger: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rows = run_json(capsys, "--db", str(ledger), "--by", "customer")
    assert [(r["customer"], r["model"], r["calls"], r["unpriced_calls"]) for r in rows] == [
        ("acme", None, 2, 0),
        ("globex", None, 2, 1),
    ]
    assert rows[1]["cost"] == "0.000004"
    rows = run_json(capsys, "--db", str(ledger), "--by", "feature")
    assert {r["feature"]: r["calls"] for r in rows} == {None: 2, "chat": 1, "search": 1}


def test_report_date_window(ledger: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rows = run_json(capsys, "--db", str(ledger), "--by", "day", "--since", "2026-11-02")
    assert [(r["day"], r["calls"]) for r in rows] == [("2026-11-02", 3)]
    rows = run_json(capsys, "--db", str(ledger), "--by", "day", "--until", "2026-11-01")
    assert [(r["day"], r["calls"]) for r in rows] == [("2026-11-01", 1)]


def test_csv_report(ledger: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["report", "--db", str(ledger), "--format", "csv", "--by", "customer"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("customer,model,calls,input_tokens")
    assert lines[1].split(",")[:3] == ["acme", "", "2"]
    assert ",0.00075," in lines[1]


def test_table_report_has_rows_and_a_total(ledger: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["report", "--db", str(ledger)]) == 0
    out = capsys.readouterr().out
    assert "acme" in out and "globex" in out and "Total" in out
    assert "<$0.01" in out
    assert "unknown" in out
    assert "1 call(s) have no price" in out


def test_missing_ledger_is_one_clear_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["report", "--db", str(tmp_path / "none.db")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("usagetap: error: no ledger at")


def test_bad_group_key_is_one_clear_line(ledger: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["report", "--db", str(ledger), "--by", "planet"]) == 1
    assert capsys.readouterr().err.strip() == (
        "usagetap: error: cannot group by planet; choose from "
        "customer, model, provider, operation, feature, day, month, run, status; "
        "dimensions in this ledger: feature"
    )


@pytest.mark.parametrize("command", [[], ["report"], ["demo"], ["status"], ["replay"]])
def test_help_with_examples(command: list, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main([*command, "--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert "usage: usagetap" in out
    assert "examples:" in out and f"  usagetap {command[0] if command else 'demo'}" in out


def test_demo_writes_a_ledger_with_several_priced_customers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("USAGETAP_DB")
    assert main(["demo"]) == 0
    out = capsys.readouterr().out
    assert "calls metered through the real OpenAI SDK" in out
    rows = run_json(capsys, "--by", "customer")
    assert len(rows) >= 2
    for row in rows:
        assert row["input_tokens"] > 0
        assert Decimal(row["cost"]) > 0
    assert (tmp_path / ".usagetap" / "ledger.db").exists()


def test_json_totals_are_opt_in_and_never_a_row(ledger: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rows = run_json(capsys, "--db", str(ledger))
    assert isinstance(rows, list) and all(r["customer"] for r in rows)
    data = run_json(capsys, "--db", str(ledger), "--totals")
    assert data["rows"] == rows
    total = data["totals"]
    assert (total["calls"], total["input_tokens"], total["output_tokens"]) == (4, 166, 19)
    assert total["cost"] == "0.000754" and total["unpriced_calls"] == 1


def test_csv_totals_row(ledger: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["report", "--db", str(ledger), "--format", "csv", "--by", "customer", "--totals"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 1 + 2 + 1
    assert lines[-1].split(",") == [
        "(total)",
        "",
        "4",
        "166",
        "19",
        "64",
        "0",
        "0",
        "0.000754",
        "",
        "USD",
        "1",
    ]


def test_csv_cost_is_empty_when_nothing_is_priced(ledger: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["report", "--db", str(ledger), "--format", "csv", "--by", "model"]) == 0
    secret = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("secret-ft"))
    assert secret.split(",")[-4:] == ["", "", "USD", "1"]


def test_report_by_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "runs.db"
    Ledger(path).send(
        [
            make_record(run_id="run_a", cost=Decimal("0.001")),
            make_record(run_id="run_a", cost=Decimal("0.002")),
            make_record(run_id=None, cost=Decimal("0.004")),
        ]
    )
    rows = run_json(capsys, "--db", str(path), "--by", "run")
    assert [(r["run"], r["calls"], r["cost"]) for r in rows] == [(None, 1, "0.004"), ("run_a", 2, "0.003")]


@pytest.mark.parametrize(
    ("args", "prog", "message"),
    [
        (["--format", "xml"], "usagetap report", "argument --format: invalid choice: 'xml'"),
        (
            ["--since", "yesterday"],
            "usagetap report",
            "argument --since: not a date (YYYY-MM-DD): 'yesterday'",
        ),
        (["--bogus"], "usagetap", "unrecognized arguments: --bogus"),
    ],
)
def test_usage_errors_are_one_line_with_exit_2(
    ledger: Path, args: list, prog: str, message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["report", "--db", str(ledger), *args])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert err[0].startswith(f"{prog}: error: {message}")
    assert err[0].endswith(f"(see '{prog} --help')")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--by", ","], "--by needs at least one key: customer, model, provider"),
        (
            ["--since", "2026-11-02", "--until", "2026-11-01"],
            "--since 2026-11-02 is after --until 2026-11-01",
        ),
        (["--html", "-", "--format", "csv"], "--html - and --format both print to stdout; choose one"),
    ],
)
def test_bad_option_combinations_are_one_line(
    ledger: Path, args: list, message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["report", "--db", str(ledger), *args]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"usagetap: error: {message}")


def test_unreadable_ledger_is_one_clear_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "not-a-db.db"
    path.write_text("this is not sqlite " * 100)
    assert main(["report", "--db", str(path)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"usagetap: error: cannot open the ledger at {path}")


def run_cli(*args: str, env: dict[str, str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "usagetap.cli", *args],
        env={**os.environ, **env},
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
        **kwargs,
    )


@pytest.mark.parametrize("command", [["status"], ["report"], ["replay", "--dead"]])
def test_an_over_long_path_is_a_one_line_error_not_a_traceback(command: list[str], tmp_path: Path) -> None:
    long = str(tmp_path / ("a" * 300))
    env = {
        "USAGETAP_SPOOL": long,
        "USAGETAP_DB": long,
        "USAGETAP_SINK": "http",
        "USAGETAP_URL": "http://127.0.0.1:9/usage",
    }
    done = run_cli(*command, env=env)
    assert done.returncode == 1
    lines = done.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("usagetap: error: ")
    assert "File name too long" in lines[0] and "Traceback" not in done.stderr


def test_a_reader_that_stops_early_ends_the_report_quietly(tmp_path: Path) -> None:
    path = tmp_path / "big.db"
    Ledger(path).send([make_record(customer=f"c{n}") for n in range(5000)])
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "usagetap.cli",
            "report",
            "--db",
            str(path),
            "--by",
            "customer",
            "--format",
            "json",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.readline()
    proc.stdout.close()  # what `| head -1` does
    stderr = proc.stderr.read().decode()
    assert proc.wait(timeout=120) == 141, "128 + SIGPIPE, as a tool the signal ends"
    assert stderr == "", stderr


def test_an_html_report_is_written_readable_by_its_owner_only(ledger: Path, tmp_path: Path) -> None:
    target = tmp_path / "usage.html"
    assert main(["report", "--db", str(ledger), "--html", str(target)]) == 0
    assert stat.S_IMODE(target.stat().st_mode) == 0o600


def test_version_prints_the_package_version(capsys: pytest.CaptureFixture[str]) -> None:
    from usagetap._version import __version__

    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out.strip() == f"usagetap {__version__}"


def test_demo_help_names_both_providers(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["demo", "--help"])
    out = capsys.readouterr().out
    assert "OpenAI" in out and "Anthropic" in out


def test_demo_says_it_appends_to_a_ledger_that_holds_records(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "used.db"
    Ledger(db).send([make_record(customer="earlier", cost=Decimal("1.5")) for _ in range(3)])
    assert main(["demo", "--db", str(db)]) == 0
    out = capsys.readouterr().out
    assert f"appending to the ledger at {db}, which already holds 3 records" in out
    assert "earlier" in out  # the report after it includes them, as it says
