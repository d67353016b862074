"""The package's shape: its import graph has no cycle; the layers below ``instrument/`` never import it.

The graph is read from the source with :mod:`ast`: every import counts, deferred ones inside
functions included, except those under ``if TYPE_CHECKING:``. ``from pkg import name`` is an
edge to ``pkg.name`` when that is a module, else to ``pkg``.
"""

from __future__ import annotations

import argparse
import ast
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Optional

import usagetap
from usagetap.cli import _parser

ROOT = Path(usagetap.__file__).parent
BELOW_INSTRUMENT = ("usagetap.delivery", "usagetap.sinks", "usagetap.db")


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict[str, Path]:
    return {_module_name(path): path for path in sorted(ROOT.rglob("*.py"))}


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(nodes: Iterable[ast.AST]) -> Iterator[ast.Import | ast.ImportFrom]:
    """Every import statement in ``nodes``, at any depth, but none in an ``if TYPE_CHECKING:`` body."""
    for node in nodes:
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield node
        elif isinstance(node, ast.If) and _is_type_checking(node):
            yield from _imports(node.orelse)
        else:
            yield from _imports(ast.iter_child_nodes(node))


def _base(module: str, path: Path, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for _ in range(node.level - 1):
        package = package.rpartition(".")[0]
    return f"{package}.{node.module}" if node.module else package


def import_graph() -> dict[str, set[str]]:
    """Each module of usagetap and the usagetap modules it imports."""
    modules = _modules()
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for module, path in modules.items():
        for node in _imports([ast.parse(path.read_text(encoding="utf-8"), str(path))]):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            else:
                base = _base(module, path, node)
                targets = [
                    f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base
                    for alias in node.names
                ]
            graph[module].update(t for t in targets if t in modules and t != module)
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One cycle through each strongly connected component of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph[node]):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                components.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return [_cycle_through(graph, component) for component in sorted(components)]


def _cycle_through(graph: dict[str, set[str]], component: list[str]) -> list[str]:
    """The shortest path from the component's first module back to itself, inside the component."""
    start, members = component[0], set(component)
    paths: dict[str, list[str]] = {start: [start]}
    queue = [start]
    while queue:
        node = queue.pop(0)
        for target in sorted(graph[node] & members):
            if target == start:
                return [*paths[node], start]
            if target not in paths:
                paths[target] = [*paths[node], target]
                queue.append(target)
    return component  # unreachable for a strongly connected component


def _layer(module: str) -> Optional[str]:
    """The low layer ``module`` belongs to, if any: delivery, sinks, db or a provider's pure extraction."""
    for layer in BELOW_INSTRUMENT:
        if module == layer or module.startswith(f"{layer}."):
            return layer
    parts = module.split(".")
    if len(parts) == 4 and parts[1] == "providers" and parts[3] == "usage":
        return "providers/*/usage"
    return None


def test_the_import_graph_sees_imports_inside_functions() -> None:
    assert "usagetap._report" in import_graph()["usagetap.cli.report"]


def test_the_import_graph_leaves_out_type_checking_imports() -> None:
    assert "usagetap._record" not in import_graph()["usagetap.cli.replay"]


def test_the_cycle_finder_names_the_modules_of_each_cycle() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert cycles(graph) == [["a", "b", "c", "a"]]


def test_the_import_graph_has_no_cycle() -> None:
    found = cycles(import_graph())
    assert not found, "import cycles:\n" + "\n".join(" -> ".join(cycle) for cycle in found)


def test_no_layer_below_instrument_imports_it() -> None:
    graph = import_graph()
    wrong = sorted(
        f"{module} ({layer}) imports {target}"
        for module, targets in graph.items()
        if (layer := _layer(module))
        for target in targets
        if target == "usagetap.instrument" or target.startswith("usagetap.instrument.")
    )
    assert not wrong, "\n".join(wrong)


def test_the_layers_below_instrument_are_delivery_sinks_db_and_provider_extraction() -> None:
    assert [
        _layer(name)
        for name in (
            "usagetap.delivery.worker",
            "usagetap.sinks",
            "usagetap.db.ledger",
            "usagetap.providers.openai.usage",
            "usagetap.providers.openai.adapter",
            "usagetap.instrument._calls",
        )
    ] == ["usagetap.delivery", "usagetap.sinks", "usagetap.db", "providers/*/usage", None, None]


def test_each_cli_command_runs_from_its_own_module() -> None:
    [commands] = [a for a in _parser()._actions if isinstance(a, argparse._SubParsersAction)]
    assert {name: sub.get_default("run").__module__ for name, sub in commands.choices.items()} == {
        name: f"usagetap.cli.{name.replace('-', '_')}"
        for name in ("report", "demo", "status", "replay", "open-spanner", "reconcile")
    }


def test_every_module_level_lock_is_fork_safe() -> None:
    """A lock a module holds for the process comes from ``_forksafe.module_lock`` (new in a forked child)."""
    plain = []
    for path in sorted(ROOT.rglob("*.py")):
        if path.name == "_forksafe.py":
            continue
        for node in ast.parse(path.read_text()).body:
            value = node.value if isinstance(node, (ast.Assign, ast.AnnAssign)) else None
            if isinstance(value, ast.Call) and ast.unparse(value.func) in (
                "threading.Lock",
                "threading.RLock",
            ):
                plain.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert plain == []
