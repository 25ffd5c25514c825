"""Public API guard: ``__all__`` lists are sorted and complete."""

from __future__ import annotations

import importlib

import pytest

MODULES = [
    "warden.authz",
    "warden.authz.types",
    "warden.authz.policy_set",
    "warden.authz.pdp",
    "warden.authz.authzen",
    "warden.authz.watcher",
    "warden.authz.cases",
    "warden.authz._cedar",
]


def _isort_key(name: str) -> tuple[int, str]:
    # ruff RUF022 order: CONSTANTS, then Classes, then functions
    if name.isupper():
        return (0, name)
    return (1, name) if name[:1].isupper() else (2, name)


@pytest.mark.parametrize("name", MODULES)
def test_all_is_sorted_and_resolves(name: str) -> None:
    module = importlib.import_module(name)
    exported = module.__all__
    assert exported == sorted(exported, key=_isort_key)
    for item in exported:
        assert hasattr(module, item), item


def test_cedarpy_is_imported_only_by_the_adapter() -> None:
    import ast
    from pathlib import Path

    import warden.authz

    root = Path(warden.authz.__file__).parent
    for path in root.glob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        imported = {
            alias.name.split(".")[0]
            for node in ast.walk(tree)
            if isinstance(node, ast.Import)
            for alias in node.names
        } | {
            (node.module or "").split(".")[0]
            for node in ast.walk(tree)
            if isinstance(node, ast.ImportFrom)
        }
        assert ("cedarpy" in imported) == (path.name == "_cedar.py"), path.name
