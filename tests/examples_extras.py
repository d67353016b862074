"""What an example may import: the distributions its ``pip install "usagetap[extras]" ...`` line brings."""

from __future__ import annotations

import re
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement

INSTALL = re.compile(r'^pip install "usagetap\[([\w,-]+)\]"((?: [\w-]+)*)$', re.MULTILINE)

# Run as a script: the example at argv[1], refusing imports of distributions not in argv[2] (comma-separated).
RUNNER = """
import importlib.abc, importlib.metadata, re, runpy, sys

allowed = set(sys.argv[2].split(","))
owners = importlib.metadata.packages_distributions()

def canonical(name):
    return re.sub(r"[-_.]+", "-", name).lower()

class NotInstalled(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        top = name.partition(".")[0]
        dists = owners.get(top)
        if dists and not any(canonical(d) in allowed for d in dists):
            raise ModuleNotFoundError(f"No module named {top!r} (not from the example's extras)", name=top)
        return None

sys.meta_path.insert(0, NotInstalled())
sys.argv = sys.argv[1:2]
runpy.run_path(sys.argv[0], run_name="__main__")
"""


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def install_line(example: Path) -> tuple[list[str], list[str]]:
    """The extras and the other packages the example's ``pip install`` line names."""
    match = INSTALL.search(example.read_text("utf-8"))
    assert match, f"{example.name} does not say which extras it needs"
    return match.group(1).split(","), match.group(2).split()


def missing(extras: list[str]) -> list[str]:
    """The distributions usagetap's ``extras`` require that are not installed here."""
    absent = []
    for text in metadata.requires("usagetap") or []:
        requirement = Requirement(text)
        marker = requirement.marker
        if marker is None or not any(marker.evaluate({"extra": extra}) for extra in extras):
            continue
        try:
            metadata.distribution(requirement.name)
        except metadata.PackageNotFoundError:
            absent.append(requirement.name)
    return absent


def installed_with(extras: list[str], packages: list[str]) -> set[str]:
    """The distributions usagetap with ``extras``, and ``packages``, bring (of those installed here)."""
    todo: list[tuple[str, tuple[str, ...]]] = [("usagetap", tuple(extras))]
    todo += [(name, ()) for name in packages]
    seen: set[str] = set()
    while todo:
        name, wanted = todo.pop()
        key = f"{canonical(name)}[{','.join(sorted(wanted))}]"
        if key in seen:
            continue
        seen.add(key)
        try:
            requires = metadata.requires(name) or []
        except metadata.PackageNotFoundError:
            continue
        for text in requires:
            requirement = Requirement(text)
            marker = requirement.marker
            if marker is None or any(marker.evaluate({"extra": extra}) for extra in ("", *wanted)):
                todo.append((requirement.name, tuple(requirement.extras)))
    return {key.partition("[")[0] for key in seen}
