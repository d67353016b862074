"""The part of a backend's OpenAPI document its loopback fake serves: routes and the schemas they reach."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

NOTE = (
    "The routes usagetap's loopback Open Spanner serves and the component schemas they reference, cut "
    "from Open Spanner's OpenAPI document (the whole document: tests/fixtures/contracts in usagetap's "
    "repository; tests/testing/test_contracts.py keeps the two in step)."
)


def _refs(node: Any, found: set[str]) -> None:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str) and value.startswith("#/components/schemas/"):
                found.add(value.rsplit("/", 1)[1])
            else:
                _refs(value, found)
    elif isinstance(node, list):
        for value in node:
            _refs(value, found)


def subset(document: dict[str, Any], paths: Iterable[str]) -> dict[str, Any]:
    """``document`` cut down to ``paths`` and the component schemas they reach."""
    kept = {path: document["paths"][path] for path in paths}
    schemas = document["components"]["schemas"]
    names: set[str] = set()
    _refs(kept, names)
    todo = list(names)
    while todo:
        reached: set[str] = set()
        _refs(schemas[todo.pop()], reached)
        todo += sorted(reached - names)
        names |= reached
    return {
        "openapi": document["openapi"],
        "info": {**document["info"], "x-usagetap-subset": NOTE},
        "servers": document.get("servers", []),
        "paths": kept,
        "components": {"schemas": {name: schemas[name] for name in sorted(names)}},
    }
