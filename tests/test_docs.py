"""The documentation site: a page per provider and per sink, and a strict build."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import usagetap.sinks
from usagetap import _spans

ROOT = Path(__file__).parent.parent
DOCS = ROOT / "docs"
PROVIDER_PAGES = ("openai", "anthropic", "google", "bedrock", "mistral", "compatible-hosts")
SINK_PAGES = {
    "Ledger": "ledger",
    "Memory": "memory",
    "Spaire": "spaire",
    "Polar": "spaire",
    "OpenSpanner": "open-spanner",
    "SolvaPay": "solvapay",
    "OpenMeter": "openmeter",
    "Stripe": "stripe",
    "HTTP": "http",
    "OpenTelemetry": "opentelemetry",
}
GUIDE_PAGES = {
    "Running a fleet": "fleet.md",
    "What is priced": "pricing.md",
    "Command line": "reports.md",
    "Reconciliation": "reconcile.md",
    "Testing your own code": "testing.md",
}
"""A README section heading -> the guide page that covers it (and names it)."""
REFERENCE_MODULES = {
    "usagetap.budgets": "budgets.md",
    "usagetap.pricing_overlay": "limits-prices.md",
    "usagetap.testing.respx": "testing.md",
    "usagetap.testing.admin": "testing.md",
}


@pytest.mark.parametrize("page", PROVIDER_PAGES)
def test_each_provider_has_a_getting_started_page_with_its_install_line(page: str) -> None:
    text = (DOCS / "providers" / f"{page}.md").read_text("utf-8")
    assert text.startswith("# Getting started") and 'pip install "usagetap[' in text


def test_each_sink_has_a_page() -> None:
    sinks = set(usagetap.sinks.__all__) - {"BaseSink", "Outcomes", "Sink"}
    assert sinks == set(SINK_PAGES)
    for name, page in SINK_PAGES.items():
        assert name in (DOCS / "sinks" / f"{page}.md").read_text("utf-8")


def test_the_site_has_a_guarantees_page_and_an_api_reference_from_the_docstrings() -> None:
    assert (DOCS / "guarantees.md").read_text("utf-8").startswith("# Guarantees")
    assert "::: usagetap.wrap" in (DOCS / "reference" / "usagetap.md").read_text("utf-8")


def _nav() -> str:
    return (ROOT / "mkdocs.yml").read_text("utf-8")


@pytest.mark.parametrize("heading", sorted(GUIDE_PAGES))
def test_each_readme_section_of_a_later_feature_has_a_guide_page_that_names_it(heading: str) -> None:
    readme_headings = re.findall(r"^#{2,3} (.+)$", (ROOT / "README.md").read_text("utf-8"), re.M)
    assert heading in readme_headings
    page = GUIDE_PAGES[heading]
    assert heading in (DOCS / page).read_text("utf-8")
    assert f" {page}\n" in _nav()


def test_the_budgets_guide_names_every_budget_setting() -> None:
    text = (DOCS / "budgets.md").read_text("utf-8")
    for name in ("USAGETAP_BUDGETS", "USAGETAP_BUDGETS_ON_ERROR", "limits.use_store", "budget_store_errors"):
        assert name in text
    assert " budgets.md\n" in _nav()


def test_the_tracing_guide_names_every_span_attribute_usagetap_sets() -> None:
    names = set(re.findall(r"``((?:gen_ai|usagetap)\.[a-z_.]+)``", _spans.__doc__ or ""))
    assert len(names) >= 10
    text = (DOCS / "tracing.md").read_text("utf-8")
    assert sorted(name for name in names if f"`{name}`" not in text) == []
    assert " tracing.md\n" in _nav()


@pytest.mark.parametrize("module", sorted(REFERENCE_MODULES))
def test_each_public_module_added_later_has_an_api_reference_entry(module: str) -> None:
    assert f"::: {module}\n" in (DOCS / "reference" / REFERENCE_MODULES[module]).read_text("utf-8")
    assert f"reference/{REFERENCE_MODULES[module]}" in _nav()


def test_the_site_builds_strict(tmp_path: Path) -> None:
    pytest.importorskip("mkdocstrings", reason="the docs extra is not installed")
    mkdocs = shutil.which("mkdocs", path=str(Path(sys.executable).parent)) or "mkdocs"
    built = subprocess.run(
        [mkdocs, "build", "--strict", "--site-dir", str(tmp_path / "site")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
    )
    assert built.returncode == 0, built.stderr[-3000:]
    assert (tmp_path / "site" / "reference" / "sinks" / "index.html").exists()
