"""``usagetap report --html``: a self-contained page whose charts render in a real browser (Chromium)."""

from __future__ import annotations

import json
import os
import re
import shutil
import struct
import subprocess
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from html.parser import HTMLParser
from pathlib import Path
from typing import Optional

import pytest

from tests.helpers import make_record
from usagetap.cli import main
from usagetap.sinks import Ledger

HOSTILE = '<img src=x onerror="alert(1)">'
DAY = datetime(2026, 11, 1, 12, tzinfo=timezone.utc)
DAY3 = DAY + timedelta(days=2)


@pytest.fixture
def ledger(tmp_path: Path) -> Path:
    """Three days of usage (the middle one empty), four customers, one unpriced model."""
    path = tmp_path / "ledger.db"
    Ledger(path).send(
        [
            make_record(customer="acme", model="gpt-4.1", timestamp=DAY, cost=Decimal("0.0030")),
            make_record(customer="acme", model="gpt-4.1", timestamp=DAY, cost=Decimal("0.0010")),
            make_record(customer="globex", model="gpt-4.1-mini", timestamp=DAY, cost=Decimal("0.0020")),
            make_record(customer=None, model="gpt-4.1-mini", timestamp=DAY, cost=Decimal("0.0005")),
            make_record(
                customer="acme", model="gpt-4.1", timestamp=DAY + timedelta(days=2), cost=Decimal("0.0001")
            ),
            make_record(
                customer=HOSTILE, model="gpt-4.1", timestamp=DAY + timedelta(days=2), cost=Decimal("0.0002")
            ),
            make_record(customer="globex", model="secret-ft", timestamp=DAY + timedelta(days=2), cost=None),
        ]
    )
    return path


class _Dom(HTMLParser):
    """Elements of a page as (tag, attributes, text inside), in document order."""

    def __init__(self, html: str) -> None:
        super().__init__(convert_charrefs=True)
        self.elements: list[tuple[str, dict[str, str], list[str]]] = []
        self._open: list[list[str]] = []
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, Optional[str]]]) -> None:
        texts: list[str] = []
        self.elements.append((tag, {k: v or "" for k, v in attrs}, texts))
        if tag not in ("meta", "br", "img", "input", "link", "line", "rect"):
            self._open.append(texts)

    def handle_endtag(self, tag: str) -> None:
        if self._open and tag not in ("meta", "br", "img", "input", "link", "line", "rect"):
            self._open.pop()

    def handle_data(self, data: str) -> None:
        for texts in self._open:
            texts.append(data)

    def find(self, tag: str, **attrs: str) -> list[tuple[dict[str, str], str]]:
        return [
            (a, "".join(t))
            for name, a, t in self.elements
            if name == tag and all(attrs[k] in a.get(k.rstrip("_"), "").split() for k in attrs)
        ]


def _table_cells(dom: _Dom, table_id: str) -> list[list[tuple[dict[str, str], str]]]:
    """The cells (attributes, text) of each row of the table ``table_id``."""
    inside = False
    rows: list[list[tuple[dict[str, str], str]]] = []
    for tag, attrs, texts in dom.elements:
        if tag == "table":
            inside = attrs.get("id") == table_id
        elif tag == "tr" and inside:
            rows.append([])
        elif tag in ("td", "th") and inside:
            rows[-1].append((attrs, "".join(texts)))
    return rows


def _table_rows(dom: _Dom, table_id: str) -> list[list[str]]:
    """The cell texts of each row of the table ``table_id``."""
    return [[text for _, text in row] for row in _table_cells(dom, table_id)]


def _chromium() -> str:
    for name in ("chromium", "chromium-browser"):
        found = shutil.which(name)
        if found:
            return found
    if os.environ.get("USAGETAP_REQUIRE_CHROMIUM"):
        pytest.fail("Chromium is required (USAGETAP_REQUIRE_CHROMIUM) but not installed")
    pytest.skip("Chromium is not installed (apt-get install -y chromium)")


def test_a_missing_chromium_fails_the_browser_tests_when_ci_requires_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(shutil, "which", lambda name: None)
    monkeypatch.setenv("USAGETAP_REQUIRE_CHROMIUM", "1")
    with pytest.raises(pytest.fail.Exception, match="USAGETAP_REQUIRE_CHROMIUM"):
        _chromium()


def test_a_missing_chromium_skips_the_browser_tests_when_not_required(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(shutil, "which", lambda name: None)
    monkeypatch.delenv("USAGETAP_REQUIRE_CHROMIUM", raising=False)
    with pytest.raises(pytest.skip.Exception, match="not installed"):
        _chromium()


def _rendered_dom(page: Path, tmp_path: Path) -> str:
    """The DOM of ``page`` after headless Chromium loaded, laid out and ran it."""
    browser = _chromium()
    done = subprocess.run(
        [
            browser,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            f"--user-data-dir={tmp_path / 'chromium-profile'}",
            "--window-size=1200,1600",
            "--dump-dom",
            page.resolve().as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "<html" in done.stdout, done.stderr[-2000:]
    return done.stdout


_MEASURE = """
<script>
const box = (el) => { const r = el.getBoundingClientRect(); return [r.left, r.top, r.width, r.height]; };
const out = {};
for (const id of ["cost-by-day", "cost-by-model"]) {
  const svg = document.getElementById(id);
  out[id] = { svg: box(svg), bars: [...svg.querySelectorAll("rect.bar")].map((r) =>
    ({ box: box(r), customer: r.dataset.customer, day: r.dataset.day, cost: r.dataset.cost,
       color: getComputedStyle(r).fill })) };
}
out.legend = [...document.querySelectorAll("#cost-by-day-legend li")].map((li) => box(li));
document.body.dataset.measured = JSON.stringify(out);
</script>
"""


def _write_report(ledger: Path, tmp_path: Path, *extra: str) -> Path:
    out = tmp_path / "report.html"
    assert main(["report", "--db", str(ledger), "--html", str(out), *extra]) == 0
    return out


def test_chromium_renders_the_charts_and_table(ledger: Path, tmp_path: Path) -> None:
    dom = _Dom(_rendered_dom(_write_report(ledger, tmp_path), tmp_path))

    day_bars = dom.find("rect", class_="bar")
    by_day = [
        (a["data-day"], a["data-customer"], Decimal(a["data-cost"])) for a, _ in day_bars if "data-day" in a
    ]
    assert sorted(by_day) == sorted(
        [
            ("2026-11-01", "acme", Decimal("0.0040")),
            ("2026-11-01", "globex", Decimal("0.0020")),
            ("2026-11-01", "(no customer)", Decimal("0.0005")),
            ("2026-11-03", "acme", Decimal("0.0001")),
            ("2026-11-03", HOSTILE, Decimal("0.0002")),
        ]
    )
    assert [t for _, t in dom.find("text", class_="day")] == ["Nov 1", "Nov 2", "Nov 3"]
    assert [t for _, t in dom.find("text", class_="tick")][:2] == ["$0.000", "$0.002"]
    legend = next(t for _, t in dom.find("ul", id="cost-by-day-legend"))
    assert "acme <$0.01" in legend and HOSTILE in legend

    model_bars = [a["data-model"] for a, _ in day_bars if "data-model" in a]
    assert model_bars == ["gpt-4.1", "gpt-4.1-mini"]
    values = [t for _, t in dom.find("text", class_="value")]
    assert values[0].startswith("<$0.01 · 63.2% · 4 calls")
    assert values[-1] == "price unknown · 1 call"

    rows = _table_rows(dom, "usage-table")
    assert len(rows) == 1 + 5 + 1  # header, one row per (customer, model), total
    assert "Total" in rows[-1] and "$0.01 *" in rows[-1]
    assert dom.find("p", id="unpriced-note")

    assert not dom.find("script"), "the page runs no script, even with a hostile customer name"
    assert not dom.find("img")
    external = [a for _, a, _ in dom.elements for k in ("src", "href") if a.get(k, "#").split(":")[0] != "#"]
    assert external == [], "the page loads nothing from outside"


def test_chromium_lays_out_bars_in_proportion_to_cost(ledger: Path, tmp_path: Path) -> None:
    """Measured by a script the test adds to a copy of the page (the page itself allows no script)."""
    page = _write_report(ledger, tmp_path).read_text(encoding="utf-8")
    csp = page[page.index('<meta http-equiv="Content-Security-Policy"') :]
    probe = tmp_path / "probe.html"
    probe.write_text(
        page.replace(csp[: csp.index(">") + 1], "").replace("</body>", _MEASURE + "</body>"), encoding="utf-8"
    )
    dom = _Dom(_rendered_dom(probe, tmp_path))
    measured = json.loads(dom.find("body")[0][0]["data-measured"])

    chart = measured["cost-by-day"]
    left, top, width, height = chart["svg"]
    assert width > 600 and height > 150
    first_day = [b for b in chart["bars"] if b["day"] == "2026-11-01"]
    assert len(first_day) == 3
    for bar in chart["bars"]:
        x, y, w, h = bar["box"]
        assert w > 0 and h > 0
        assert left <= x and x + w <= left + width + 0.5 and top <= y and y + h <= top + height + 0.5
    per_dollar = [b["box"][3] / float(b["cost"]) for b in first_day]
    assert max(per_dollar) == pytest.approx(min(per_dollar), rel=0.05)
    assert len({b["color"] for b in chart["bars"] if b["day"] == "2026-11-01"}) == 3
    assert len(measured["legend"]) == 4 and all(w > 0 for _, _, w, _ in measured["legend"])

    models = measured["cost-by-model"]["bars"]
    assert [float(b["cost"]) for b in models] == [0.0043, 0.0025]
    assert models[0]["box"][2] / models[1]["box"][2] == pytest.approx(43 / 25, rel=0.05)


def test_page_escapes_customer_names(ledger: Path, tmp_path: Path) -> None:
    html = _write_report(ledger, tmp_path).read_text(encoding="utf-8")
    assert HOSTILE not in html
    assert "&lt;img src=x onerror=&quot;alert(1)&quot;&gt;" in html
    assert "<script" not in html


def test_many_customers_fold_into_one_series(tmp_path: Path) -> None:
    path = tmp_path / "many.db"
    Ledger(path).send(
        [make_record(customer=f"org_{i:02}", timestamp=DAY, cost=Decimal(i + 1) / 1000) for i in range(12)]
    )
    dom = _Dom(_write_report(path, tmp_path, "--by", "customer").read_text(encoding="utf-8"))
    series = {a["data-customer"] for a, _ in dom.find("rect", class_="bar") if "data-customer" in a}
    assert series == {f"org_{i:02}" for i in range(2, 12)} | {"2 other customers"}
    assert len(_table_rows(dom, "usage-table")) == 1 + 12 + 1


def test_empty_window_renders_a_page_without_charts(ledger: Path, tmp_path: Path) -> None:
    html = _write_report(ledger, tmp_path, "--since", "2027-01-01").read_text(encoding="utf-8")
    dom = _Dom(html)
    assert dom.find("p", id="cost-by-day") and dom.find("p", id="cost-by-model")
    assert not dom.find("rect")
    assert "<td>Total</td>" in html and "2027-01-01" in dom.find("title")[0][1]


def test_html_to_stdout(ledger: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["report", "--db", str(ledger), "--html", "-"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("<!DOCTYPE html>") and out.rstrip().endswith("</html>")


def test_html_with_a_format_prints_both(
    ledger: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "r.html"
    assert main(["report", "--db", str(ledger), "--html", str(out), "--format", "json", "--by", "day"]) == 0
    captured = capsys.readouterr()
    assert [r["day"] for r in json.loads(captured.out)] == ["2026-11-01", "2026-11-03"]
    assert captured.err.strip() == f"wrote {out}: 7 calls, $0.01 *"
    assert out.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")


def test_unwritable_html_path_is_one_clear_line(
    ledger: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "missing-dir" / "r.html"
    assert main(["report", "--db", str(ledger), "--html", str(target)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"usagetap: error: cannot write {target}: No such file or directory"]


@pytest.mark.parametrize(
    ("window", "labels"),
    [
        ((), ["Nov 1", "Nov 2", "Nov 3"]),
        (
            ("--since", "2026-10-30", "--until", "2026-11-04"),
            ["Oct 30", "Oct 31", "Nov 1", "Nov 2", "Nov 3", "Nov 4"],
        ),
        (("--until", "2040-01-01"), ["Nov 1", "Nov 2", "Nov 3"]),  # years of empty days: the data's own span
    ],
)
def test_day_axis_spans_the_asked_window(ledger: Path, tmp_path: Path, window: tuple, labels: list) -> None:
    dom = _Dom(_write_report(ledger, tmp_path, *window).read_text(encoding="utf-8"))
    assert [t for _, t in dom.find("text", class_="day")] == labels


MONEY = re.compile(r"^(\$[\d,]+\.\d\d|<\$0\.01|unknown|-)( \*)?$")  # "-": no billed cost


@pytest.fixture
def month(tmp_path: Path) -> Path:
    """30 days, 15 customers: five that pay most (acme the most), a long tail of ten small ones;
    two models, costs with many decimals; a markup on acme's calls."""
    path = tmp_path / "month.db"
    names = ["acme", "globex", "initech", *(f"o_{i:02}" for i in range(3, 15))]
    records = []
    for day in range(30):
        stamp = datetime(2026, 11, 1, 8, tzinfo=timezone.utc) + timedelta(days=day)
        for rank, name in enumerate(names):
            for model, share in (("gpt-4.1", Decimal("0.7")), ("gpt-4.1-mini", Decimal("0.3"))):
                base = Decimal("3.3333337") / (rank + 1) if rank < 5 else Decimal("0.0061729") * (15 - rank)
                cost = (base * share * (1 + day % 3)).quantize(Decimal("1e-7"))
                markup = cost * Decimal("1.25") if name == "acme" else None
                records.append(
                    make_record(customer=name, model=model, timestamp=stamp, cost=cost, billed_cost=markup)
                )
    Ledger(path).send(records)
    return path


def _bands(dom: _Dom) -> dict[str, Decimal]:
    """The cost of each band of the day chart, summed over the days."""
    bands: dict[str, Decimal] = {}
    for attrs, _ in dom.find("rect", class_="bar"):
        if "data-day" in attrs:
            label = attrs["data-customer"]
            bands[label] = bands.get(label, Decimal(0)) + Decimal(attrs["data-cost"])
    return bands


def test_the_other_customers_band_never_outweighs_a_named_customer(month: Path, tmp_path: Path) -> None:
    bands = _bands(_Dom(_write_report(month, tmp_path, "--top", "3").read_text(encoding="utf-8")))
    assert bands.pop("10 other customers") <= min(bands.values())
    assert len(bands) == 5  # three asked for, two more: the rest together outweighed the third


def test_the_top_option_names_that_many_customers_when_the_rest_is_small(tmp_path: Path) -> None:
    path = tmp_path / "steep.db"
    Ledger(path).send(
        [make_record(customer=f"c{i:02}", timestamp=DAY, cost=Decimal(2) ** (12 - i)) for i in range(12)]
    )
    for top, named in (("2", 2), ("5", 5)):
        bands = _bands(_Dom(_write_report(path, tmp_path, "--top", top).read_text(encoding="utf-8")))
        assert set(bands) == {f"c{i:02}" for i in range(named)} | {f"{12 - named} other customers"}


def test_the_drilldown_lists_each_customer_then_its_models_by_cost(ledger: Path, tmp_path: Path) -> None:
    dom = _Dom(_write_report(ledger, tmp_path).read_text(encoding="utf-8"))
    rows = [row[:2] for row in _table_rows(dom, "customer-drilldown")[1:]]
    kinds = [attrs["class"] for attrs, _ in dom.find("tr") if attrs.get("class") in ("customer", "detail")]
    assert list(zip(kinds, rows, strict=True)) == [
        ("customer", ["acme", "3"]),
        ("detail", ["gpt-4.1", "3"]),
        ("customer", ["globex", "2"]),
        ("detail", ["gpt-4.1-mini", "1"]),
        ("detail", ["secret-ft", "1"]),  # unpriced: last
        ("customer", ["(no customer)", "1"]),
        ("detail", ["gpt-4.1-mini", "1"]),
        ("customer", [HOSTILE, "1"]),
        ("detail", ["gpt-4.1", "1"]),
    ]


def test_chromium_shows_a_month_of_fifteen_customers_sorted_by_cost_in_cents(
    month: Path, tmp_path: Path
) -> None:
    page = _write_report(month, tmp_path, "--by", "customer", "--top", "4")
    dom = _Dom(_rendered_dom(page, tmp_path))

    bands = _bands(dom)
    assert bands.pop("10 other customers") <= min(bands.values()) and len(bands) == 5
    days = {attrs["data-day"] for attrs, _ in dom.find("rect", class_="bar") if "data-day" in attrs}
    assert len(days) == 30

    rows = _table_cells(dom, "usage-table")[1:-1]
    assert [row[0][1] for row in rows][:3] == ["acme", "globex", "initech"]
    costs = [Decimal(attrs["data-cost"]) for row in rows for attrs, _ in row if "data-cost" in attrs]
    assert len(rows) == len(costs) == 15 and costs == sorted(costs, reverse=True)
    money = [t for a, t in dom.find("td") if "data-cost" in a or "data-billed-cost" in a]
    assert money and all(MONEY.match(t) for t in money), [t for t in money if not MONEY.match(t)]
    headline = next(t for _, t in dom.find("ul", id="summary"))
    assert re.search(r"\$[\d,]+\.\d\dCost \(USD\)", headline)

    shot = tmp_path / "month.png"
    done = subprocess.run(
        [
            _chromium(),
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--hide-scrollbars",
            f"--user-data-dir={tmp_path / 'chromium-shot'}",
            "--window-size=1200,2400",
            f"--screenshot={shot}",
            page.resolve().as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 50_000
    width, height = struct.unpack(">II", data[16:24])
    assert (width, height) == (1200, 2400)
    if os.environ.get("USAGETAP_KEEP_SCREENSHOT"):
        shutil.copy(shot, os.environ["USAGETAP_KEEP_SCREENSHOT"])


def test_the_headline_shows_the_billed_cost_when_calls_carry_a_markup(month: Path, tmp_path: Path) -> None:
    dom = _Dom(_write_report(month, tmp_path).read_text(encoding="utf-8"))
    cards = [t for _, t in dom.find("li") if t.endswith("(USD)")]
    assert cards == ["$477.04Cost (USD)", "$250.00 *Billed cost (USD)"]


def test_top_must_be_a_positive_count(ledger: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["report", "--db", str(ledger), "--html", "-", "--top", "0"])
    assert exit_info.value.code == 2
    assert "argument --top: not a positive count (1, 2, ...): '0'" in capsys.readouterr().err
