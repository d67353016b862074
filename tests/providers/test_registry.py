"""The provider registry: one line per SDK family, each family one package of the same parts."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

import usagetap
from usagetap import providers
from usagetap.instrument._adapter import Adapter, load
from usagetap.testing._wire import Wire

SRC = Path(usagetap.__file__).parent


def _imports(path: Path) -> set[str]:
    """Every module ``path`` imports, deferred imports included, relative ones made absolute."""
    package = ".".join(("usagetap", *path.relative_to(SRC).with_suffix("").parts[:-1]))
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*parts, base] if base else parts)
            found.update([base, *(f"{base}.{alias.name}" for alias in node.names)])
    return found


def test_the_built_in_families_are_one_registry_line_each() -> None:
    rows = [(p.family, p.sdk, p.clients, p.adapter_module) for p in providers.registered()]
    assert rows == [
        ("openai", "openai", ("OpenAI", "AsyncOpenAI"), "usagetap.providers.openai.adapter"),
        ("anthropic", "anthropic", ("Anthropic", "AsyncAnthropic"), "usagetap.providers.anthropic.adapter"),
        ("bedrock", "botocore.client", ("BaseClient",), "usagetap.providers.bedrock.adapter"),
        ("mistral", "mistralai", (), "usagetap.providers.mistral.adapter"),
        ("google", "google.genai", ("Client",), "usagetap.providers.google.adapter"),
    ]


@pytest.mark.parametrize("family", ["openai", "anthropic", "bedrock", "mistral", "google"])
def test_each_built_in_family_is_a_package_with_adapter_usage_and_wire(family: str) -> None:
    [provider] = [p for p in providers.registered() if p.family == family]
    assert isinstance(load(provider), Adapter)
    assert isinstance(importlib.import_module(provider.wire_module).WIRE, Wire)
    assert importlib.import_module(f"usagetap.providers.{family}.usage").__name__.endswith(".usage")


@pytest.mark.parametrize(
    ("name", "family"),
    [
        ("openai", "openai"),
        ("azure", "openai"),
        ("groq", "openai"),
        ("127.0.0.1", "openai"),
        ("anthropic", "anthropic"),
        ("bedrock", "bedrock"),
        ("vertex", "anthropic"),
        ("mistral", "mistral"),
    ],
)
def test_a_provider_name_belongs_to_the_family_listing_it_else_the_imitated_one(
    name: str, family: str
) -> None:
    assert providers.family_for(name).family == family


def test_instrument_names_no_provider_sdk_nor_provider_package() -> None:
    named = {
        (path.name, module)
        for path in (SRC / "instrument").glob("*.py")
        for module in _imports(path)
        if module.partition(".")[0] in ("openai", "anthropic")
        or module.startswith(("usagetap.providers.openai", "usagetap.providers.anthropic"))
    }
    assert not (SRC / "instrument" / "_openai.py").exists()
    assert named == set()


def test_pure_extraction_never_imports_instrument() -> None:
    shared = [SRC / "providers" / "base.py", SRC / "providers" / "observer.py"]
    pure = [*shared, *SRC.glob("providers/*/usage.py")]
    assert len(pure) == 2 + len(providers.registered()), (
        "base, observer and one usage module per built-in family"
    )
    assert {
        (path.relative_to(SRC).as_posix(), module)
        for path in pure
        for module in _imports(path)
        if module.startswith("usagetap.instrument")
    } == set()
