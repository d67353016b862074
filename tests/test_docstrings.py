"""Every public name is documented, and every entry point shows how it is used."""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Iterator
from types import ModuleType
from typing import Any

import pytest

import usagetap

# modules whose __all__ is public API
PUBLIC_MODULES = (
    "usagetap",
    "usagetap.sinks",
    "usagetap.testing",
    "usagetap.testing.backends",
    "usagetap.limits",
    "usagetap.prices",
    "usagetap.integrations",
    "usagetap.integrations.asgi",
    "usagetap.integrations.django",
    "usagetap.integrations.celery",
)

ENTRY_POINTS = (
    "configure",
    "wrap",
    "customer",
    "track",
    "record",
    "flush",
    "aflush",
    "flushing",
    "shutdown",
    "stats",
    "instrument",
    "current_run",
    "propagate",
    "limits.set",
    "limits.spent",
    "prices.set",
    "prices.markup",
)


def _documented_here(obj: Any) -> bool:
    return bool((inspect.getdoc(obj) or "").strip())


def _members(cls: type) -> Iterator[tuple[str, Any]]:
    """Public methods and properties that usagetap defines on ``cls`` or on its usagetap bases."""
    seen: set[str] = set()
    for klass in cls.__mro__:
        if not klass.__module__.startswith("usagetap"):
            continue
        for name, value in vars(klass).items():
            if name.startswith("_") or name in seen:
                continue
            seen.add(name)
            if isinstance(value, (staticmethod, classmethod)):
                yield name, value.__func__
            elif isinstance(value, property) or inspect.isfunction(value):
                yield name, getattr(cls, name)


def public_objects() -> Iterator[tuple[str, Any]]:
    for module_name in PUBLIC_MODULES:
        module: ModuleType = importlib.import_module(module_name)
        yield module_name, module
        for name in getattr(module, "__all__", ()):
            obj = getattr(module, name)
            if not (inspect.isclass(obj) or inspect.isroutine(obj) or inspect.ismodule(obj)):
                continue  # constants (__version__, PERIODS, HEADER) are described by their module
            yield f"{module_name}.{name}", obj
            if inspect.isclass(obj) and obj.__module__.startswith("usagetap"):
                for member, value in _members(obj):
                    yield f"{module_name}.{name}.{member}", value


def test_every_public_name_has_a_docstring() -> None:
    objects = dict(public_objects())
    assert len(objects) > 150, "the walk found the public API"
    missing = sorted(name for name, obj in objects.items() if not _documented_here(obj))
    assert missing == []


def test_the_walk_sees_a_missing_docstring(monkeypatch: pytest.MonkeyPatch) -> None:
    def undocumented() -> None:
        pass

    monkeypatch.setattr(usagetap, "__all__", [*usagetap.__all__, "undocumented"])
    monkeypatch.setattr(usagetap, "undocumented", undocumented, raising=False)
    objects = dict(public_objects())
    assert not _documented_here(objects["usagetap.undocumented"])


@pytest.mark.parametrize("name", ENTRY_POINTS)
def test_entry_points_show_an_example(name: str) -> None:
    obj: Any = usagetap
    for part in name.split("."):
        obj = getattr(obj, part)
    doc = inspect.getdoc(obj) or ""
    assert "::" in doc, f"usagetap.{name} has no usage example"
    example = doc.split("::", 1)[1]
    assert f"{name.rsplit('.', maxsplit=1)[-1]}(" in example, f"the example does not call usagetap.{name}"
