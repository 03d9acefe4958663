"""The core's shape, as docs/architecture.md states it: no import cycle between core
modules (module-level imports), no core module over the size limit unless the document
gives the reason, and every core module named in the document."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CORE = ROOT / "routeharness"
DOC = ROOT / "docs" / "architecture.md"
SIZE_LIMIT = 400


def _modules() -> dict[str, Path]:
    out = {}
    for path in sorted(CORE.rglob("*.py")):
        parts = path.relative_to(ROOT).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        out[name] = path
    return out


def _top_level_imports(path: Path, known: set[str]) -> set[str]:
    """Core modules imported at module level (not inside functions, not TYPE_CHECKING)."""
    found: set[str] = set()
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            continue
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            # ``from package import submodule`` depends on the submodule, not the package
            names = [f"{node.module}.{alias.name}" if f"{node.module}.{alias.name}" in known
                     else node.module for alias in node.names]
        for name in names:
            while name and name not in known:
                name = name.rpartition(".")[0]
            if name and name != "routeharness":
                found.add(name)
    return found


def test_no_import_cycle_in_the_core():
    modules = _modules()
    graph = {name: _top_level_imports(path, set(modules)) - {name}
             for name, path in modules.items()}
    # the cli package's __init__ imports its command modules, which import cli._app: a
    # package importing its own children is not a cycle between modules
    graph["routeharness.cli"] = set()
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                cycle = stack[stack.index(nxt):] + [nxt]
                raise AssertionError("import cycle: " + " -> ".join(cycle))
            if nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = 2

    for name in sorted(graph):
        if name not in state:
            visit(name)


def test_large_modules_have_a_written_reason():
    text = DOC.read_text(encoding="utf-8")
    for path in _modules().values():
        lines = len(path.read_text(encoding="utf-8").splitlines())
        if lines > SIZE_LIMIT:
            file = str(path.relative_to(ROOT))
            assert re.search(rf"`{re.escape(file)}`[^\n]*over {SIZE_LIMIT} lines", text), (
                f"{file} has {lines} lines: docs/architecture.md must say why "
                f"(a line naming `{file}` and 'over {SIZE_LIMIT} lines')")


def test_every_core_module_is_on_the_map():
    text = DOC.read_text(encoding="utf-8")
    missing = [str(p.relative_to(ROOT)) for p in _modules().values()
               if p.name != "__main__.py" and f"`{p.relative_to(ROOT)}`" not in text]
    assert not missing, f"docs/architecture.md does not name {missing}"
