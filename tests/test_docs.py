"""The documentation site: a page per provider and per sink, and a strict build."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import usagetap.sinks

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
