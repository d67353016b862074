"""The db package holds every SQL statement: no other module runs one."""

from __future__ import annotations

import ast
from pathlib import Path

import usagetap

_RUNS_SQL = {"execute", "executemany", "executescript"}
# limits.py still queries the ledger itself: its query moves into db/ledger.py with the spend source
_NOT_YET: set[str] = set()


def _sql_calls(path: Path) -> list[int]:
    tree = ast.parse(path.read_text(), str(path))
    return [
        node.lineno
        for node in ast.walk(tree)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in _RUNS_SQL
    ]


def test_only_the_db_modules_run_sql() -> None:
    root = Path(usagetap.__file__).parent
    outside = {
        str(path.relative_to(root)): lines
        for path in sorted(root.rglob("*.py"))
        if path.parts[len(root.parts)] != "db" and str(path.relative_to(root)) not in _NOT_YET
        if (lines := _sql_calls(path))
    }
    assert outside == {}
