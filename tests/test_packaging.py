"""The wheel users install: its license, metadata and contents (built offline from this checkout)."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from email.parser import Parser
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> zipfile.ZipFile:
    pytest.importorskip("hatchling")
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "-q",
            "--no-deps",
            "--no-build-isolation",
            "-w",
            str(out),
            str(ROOT),
        ],
        check=True,
        capture_output=True,
    )
    [built] = out.glob("usagetap-*.whl")
    return zipfile.ZipFile(built)


def _metadata(wheel: zipfile.ZipFile):  # type: ignore[no-untyped-def]
    [name] = [n for n in wheel.namelist() if n.endswith(".dist-info/METADATA")]
    return Parser().parsestr(wheel.read(name).decode())


def test_the_wheel_carries_the_mit_license_text(wheel: zipfile.ZipFile) -> None:
    [license_file] = [n for n in wheel.namelist() if n.endswith(".dist-info/licenses/LICENSE")]
    text = wheel.read(license_file).decode()
    assert text.startswith("MIT License") and "usagetap contributors" in text
    assert text == (ROOT / "LICENSE").read_text()


def test_the_wheel_metadata_names_the_license_the_project_urls_and_each_python_version(wheel) -> None:  # type: ignore[no-untyped-def]
    metadata = _metadata(wheel)
    assert metadata["License-Expression"] == "MIT"
    assert metadata.get_all("License-File") == ["LICENSE"]
    urls = dict(u.split(", ", 1) for u in metadata.get_all("Project-URL"))
    assert {"Homepage", "Documentation", "Repository", "Issues", "Changelog"} <= set(urls)
    classifiers = metadata.get_all("Classifier")
    for version in ("3.10", "3.11", "3.12", "3.13"):
        assert f"Programming Language :: Python :: {version}" in classifiers


def test_the_wheel_ships_only_the_part_of_the_open_spanner_contract_its_backend_reads(wheel) -> None:  # type: ignore[no-untyped-def]
    [contract] = [i for i in wheel.infolist() if i.filename.endswith("open-spanner.openapi.json")]
    assert contract.file_size < 20_000
    assert not any(n.startswith(("tests/", "docs/", "examples/")) for n in wheel.namelist())


def test_the_wheel_offers_the_testing_and_docs_extras(wheel) -> None:  # type: ignore[no-untyped-def]
    extras = _metadata(wheel).get_all("Provides-Extra")
    assert {"testing", "docs"} <= set(extras)
