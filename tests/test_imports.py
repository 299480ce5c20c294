"""The package's import graph: no cycles, and each module says what it needs."""

from __future__ import annotations

import ast
from pathlib import Path

from tests.conftest import ROOT

PACKAGE = ROOT / "morphing"
NUMERICS = {"fit.fitter", "render.renderer", "render.opencv", "render.xla", "render.warp", "fit.network",
            "fit.losses", "fit.objective", "fit.affine", "runtime.backend", "sequence", "tools.shift", "tools.hybrid",
            "tools.transfer", "render.transition", "render.blend", "tools.filters"}
TENSORFLOW_FREE = {"model", "io"}
"""Subpackages whose modules import no TensorFlow-using module of the package, not even late."""


def module_name(path: Path) -> str:
    """``morphing/cli/common.py`` → ``cli.common``; a package's ``__init__.py`` → the package (``cli``)."""
    parts = list(path.relative_to(PACKAGE).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def imports_of(path: Path, modules: set[str]) -> set[str]:
    """Modules of ``morphing`` (among ``modules``) that ``path`` imports, anywhere in it (late imports too)."""
    here = module_name(path).split(".") if path.name == "__init__.py" else module_name(path).split(".")[:-1]
    here = [part for part in here if part]
    found: set[str] = set()

    def add(name: str) -> None:
        while name and name not in modules:  # an attribute of a module: keep the module
            name = name.rpartition(".")[0]
        if name:
            found.add(name)

    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = here[: len(here) - (node.level - 1)] if node.level > 1 else here
                prefix = ".".join([*base, *(node.module.split(".") if node.module else [])])
            elif (node.module or "").startswith("morphing."):
                prefix = node.module.removeprefix("morphing.")
            else:
                continue
            for alias in node.names:
                add(f"{prefix}.{alias.name}".lstrip(".") if f"{prefix}.{alias.name}".lstrip(".") in modules
                    else prefix)
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("morphing."):
                    add(alias.name.removeprefix("morphing."))
    return found - {module_name(path)}


def import_graph() -> dict[str, set[str]]:
    paths = sorted(PACKAGE.rglob("*.py"))
    modules = {module_name(path) for path in paths} - {""}
    return {module_name(path): imports_of(path, modules) for path in paths if module_name(path)}


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


def test_the_graph_resolves_relative_imports_in_the_cli_package() -> None:
    graph = import_graph()
    assert {"cli", "cli.common", "cli.morph", "cli.batch", "cli.tools", "cli.warp", "fit.fitter",
            "model.settings"} <= set(graph)
    assert {"cli.common", "cli.morph", "cli.batch", "cli.tools"} <= graph["cli"]
    assert {"cli.hybrid", "cli.shift", "cli.align", "cli.warp", "cli.ui"} <= graph["cli.tools"]
    assert {"io.images", "model.maps", "model.settings", "io.output"} <= graph["cli.common"]
    assert "sequence" in graph["cli.morph"]  # a late import, counted too


def test_the_package_has_no_import_cycles() -> None:
    assert cycles(import_graph()) == []


def test_settings_import_nothing_and_the_command_line_no_numerics_but_late() -> None:
    graph = import_graph()
    assert graph["model.settings"] == set()
    assert not graph["cli.common"] & (NUMERICS - {"runtime.backend"})  # start_tensorflow imports backend, late


def test_the_model_and_the_files_need_no_tensorflow() -> None:
    graph = import_graph()
    for module, imported in graph.items():
        if module.split(".")[0] in TENSORFLOW_FREE:
            assert not imported & NUMERICS, (module, imported & NUMERICS)


def test_no_private_name_crosses_modules() -> None:
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and (node.level or (node.module or "").startswith("morphing")):
                private = [alias.name for alias in node.names
                           if alias.name.startswith("_") and not alias.name.endswith("__")]
                assert not private, f"{path.relative_to(ROOT)} imports {private} from {node.module}"

