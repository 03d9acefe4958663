"""The core's shape, as docs/architecture.md states it: folders in layers, each importing
only its own layer and the layers below it; no import cycle anywhere in the package; every
module on the map. Every import counts: at module level, inside functions (how the CLI
stays instant) and under ``TYPE_CHECKING``."""

from __future__ import annotations

import ast
import itertools
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CORE = ROOT / "routeharness"
DOC = ROOT / "docs" / "architecture.md"


def _modules() -> dict[str, Path]:
    out = {}
    for path in sorted(CORE.rglob("*.py")):
        parts = path.relative_to(ROOT).with_suffix("").parts
        out[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return out


def _imports(name: str, path: Path, known: set[str]) -> dict[str, int]:
    """The core modules ``name`` imports anywhere in its file -> the first line doing so.
    ``from package import submodule`` depends on the submodule, not the package."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: dict[str, int] = {}
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            module = node.module or ""
            if node.level:  # relative: resolved against the importing package
                base = package.split(".")[:len(package.split(".")) - (node.level - 1)]
                module = ".".join([*base, *([module] if module else [])])
            targets = [f"{module}.{a.name}" if f"{module}.{a.name}" in known else module
                       for a in node.names]
        else:
            continue
        for target in targets:
            while target and target not in known:
                target = target.rpartition(".")[0]
            if target and target not in (name, "routeharness"):
                found.setdefault(target, node.lineno)
    return found


def _graph() -> tuple[dict[str, Path], dict[str, dict[str, int]]]:
    modules = _modules()
    return modules, {name: _imports(name, path, set(modules)) for name, path in modules.items()}


def documented_layers() -> list[str]:
    """The folders in their order, bottom first, from the map's "Layers:" line."""
    match = re.search(r"^Layers, bottom first: (.+)$", DOC.read_text(encoding="utf-8"), re.M)
    assert match, "docs/architecture.md has no 'Layers, bottom first: ...' line"
    return re.findall(r"`([a-z_]+)/`", match.group(1))


def _folder(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 2 or (len(parts) == 2 and (CORE / parts[1]).is_dir()) \
        else None


def test_every_folder_is_a_layer_and_every_layer_a_folder():
    folders = sorted(p.name for p in CORE.iterdir()
                     if p.is_dir() and (p / "__init__.py").exists())
    assert sorted(documented_layers()) == folders


def test_folders_import_only_their_own_layer_and_the_layers_below():
    layers = documented_layers()
    modules, graph = _graph()
    upward = []
    for name, imports in graph.items():
        here = _folder(name)
        for target, line in imports.items():
            there = _folder(target)
            if here and there and layers.index(there) > layers.index(here):
                upward.append(f"{modules[name].relative_to(ROOT)}:{line} imports {target} "
                              f"({there}/ is above {here}/)")
    assert not upward, "imports against the layers:\n" + "\n".join(sorted(upward))


def test_no_import_cycle_anywhere():
    modules, graph = _graph()
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                cycle = [*stack[stack.index(nxt):], nxt]
                raise AssertionError("import cycle: " + " -> ".join(
                    f"{m} ({modules[m].relative_to(ROOT)}:{graph[m][n]})"
                    for m, n in itertools.pairwise(cycle)))
            if nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = 2

    for name in sorted(graph):
        if name not in state:
            visit(name)


def test_the_layer_check_sees_imports_inside_functions(tmp_path: Path):
    """The checks above count an import made inside a function or under
    ``TYPE_CHECKING`` (the usual ways a cycle or an upward import hides)."""
    path = tmp_path / "probe.py"
    path.write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"
                    "    from routeharness.deploy import saved\n"
                    "def f():\n    from routeharness.cli import _app\n", encoding="utf-8")
    found = _imports("routeharness.data.probe", path, {
        "routeharness.cli", "routeharness.cli._app", "routeharness.deploy",
        "routeharness.deploy.saved"})
    assert found == {"routeharness.deploy.saved": 3, "routeharness.cli._app": 5}


def test_every_core_module_is_on_the_map():
    text = DOC.read_text(encoding="utf-8")
    missing = [str(p.relative_to(ROOT)) for p in _modules().values()
               if p.name != "__main__.py" and f"`{p.relative_to(ROOT)}`" not in text]
    assert not missing, f"docs/architecture.md does not name {missing}"
