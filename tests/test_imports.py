"""The package's import graph: no cycles, and each module says what it needs."""

from __future__ import annotations

import ast
from pathlib import Path

from tests.conftest import ROOT

PACKAGE = ROOT / "morphing"


def imports_of(path: Path) -> set[str]:
    """Modules of ``morphing`` that ``path`` imports, anywhere in it (late imports too)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.level == 1:
            if node.module:
                found.add(node.module.split(".")[0])
            else:
                found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("morphing."):
            found.add(node.module.split(".")[1])
        elif isinstance(node, ast.Import):
            found.update(alias.name.split(".")[1] for alias in node.names if alias.name.startswith("morphing."))
    return found - {"__init__"}


def import_graph() -> dict[str, set[str]]:
    modules = {path.stem for path in PACKAGE.glob("*.py")}
    return {path.stem: imports_of(path) & modules for path in PACKAGE.glob("*.py") if path.stem != "__init__"}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every cycle found by a depth-first search, each as the modules along it."""
    found, done = [], set()

    def visit(module: str, path: list[str]) -> None:
        if module in path:
            found.append(path[path.index(module):] + [module])
            return
        if module in done:
            return
        for imported in sorted(graph.get(module, ())):
            visit(imported, [*path, module])
        done.add(module)

    for module in sorted(graph):
        visit(module, [])
    return found


def test_the_cycle_finder_finds_a_cycle() -> None:
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c", "a"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_the_package_has_no_import_cycles() -> None:
    graph = import_graph()
    assert {"cli", "cli_tools", "cli_common", "fit", "settings"} <= set(graph)
    assert "cli_common" in graph["cli"] and "cli_common" in graph["cli_tools"]
    assert cycles(graph) == []


def test_settings_and_the_shared_cli_part_import_no_numerics() -> None:
    graph = import_graph()
    assert graph["settings"] == set()
    assert not graph["cli_common"] & {"fit", "render", "warp", "network", "losses", "affine", "backend"}
