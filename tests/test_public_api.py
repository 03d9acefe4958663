"""The public API is what the built-in plugins use (issue 17): every name a plugin
imports from routeharness is in ``routeharness.__all__`` and documented in docs/api.md,
and the built-in plugins' implementation modules load when first used, not on every
command."""

from __future__ import annotations

import ast
import inspect
import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import routeharness

ROOT = Path(__file__).resolve().parent.parent
API_DOC = ROOT / "docs" / "api.md"
#: where the built-in plugins and the example plugin live: what a third party could write
PLUGIN_SOURCES = (ROOT / "plugins", ROOT / "examples")
#: the public modules besides the package itself
PUBLIC_MODULES = ("routeharness.testing",)
#: the listing commands, which must not import any plugin's implementation
LISTING_COMMANDS = (("--help",), ("routers",), ("tasks",), ("encoders",), ("plugins",))
#: libraries a listing command has no use for
HEAVY = ("torch", "datasets", "pyarrow", "transformers", "sentence_transformers", "sklearn",
         "faiss", "PIL", "safetensors", "torch_geometric", "onnxruntime", "huggingface_hub")


# --- docs/api.md documents exactly __all__ ----------------------------------------------------
def documented() -> dict[str, str]:
    """Each name documented in docs/api.md (a ``### `NAME``` heading) -> its section."""
    sections = re.split(r"^### `([^`]+)`[ \t]*$", API_DOC.read_text(encoding="utf-8"),
                        flags=re.M)
    return {name: body.split("\n## ", 1)[0] for name, body in zip(sections[1::2],
                                                                  sections[2::2])}


def test_every_public_name_is_documented_and_every_documented_name_is_public():
    names = documented()
    assert len(names) == len(re.findall(r"^### `", API_DOC.read_text(encoding="utf-8"),
                                        flags=re.M)), "a name documented twice in docs/api.md"
    undocumented = sorted(set(routeharness.__all__) - set(names))
    not_public = sorted(set(names) - set(routeharness.__all__))
    assert not undocumented, f"in routeharness.__all__ but not in docs/api.md: {undocumented}"
    assert not not_public, f"documented in docs/api.md but not in routeharness.__all__: " \
                           f"{not_public}"


def test_each_documented_signature_names_every_parameter():
    """The code block under each name shows its real parameters (a renamed or added
    parameter fails here until the page follows)."""
    stale = []
    for name, section in documented().items():
        value = getattr(routeharness, name)
        if not (inspect.isfunction(value) or isinstance(value, type)):
            continue  # a constant or pluggy's marker
        try:
            parameters = inspect.signature(value).parameters.values()
        except (TypeError, ValueError):
            continue
        if any(p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD) for p in parameters):
            continue  # an exception without its own __init__, a protocol
        block = re.search(r"```python\n(.*?)```", section, flags=re.S)
        shown = block.group(1) if block else ""
        missing = [p.name for p in parameters if not re.search(rf"\b{p.name}\b", shown)]
        if missing:
            stale.append(f"{name}: {missing}")
    assert not stale, f"docs/api.md's signatures lack parameters: {stale}"


def test_the_plugin_docs_link_the_api_page():
    for page in ("writing-a-router.md", "plugin-hooks.md"):
        assert "(api.md)" in (ROOT / "docs" / page).read_text(encoding="utf-8"), page


def test_every_public_name_resolves_from_the_module_that_defines_it():
    assert set(routeharness.__all__) == {*routeharness._PUBLIC, "__version__"}
    for name, module in routeharness._PUBLIC.items():
        value = getattr(routeharness, name)
        assert value is getattr(__import__(module, fromlist=[name]), name), name
        if inspect.isfunction(value) or inspect.isclass(value):
            assert value.__module__ == module, f"{name} is defined in {value.__module__}"


# --- the built-in plugins import only public names ---------------------------------------------
def import_problems(path: Path, source: str) -> list[str]:
    """``path:line: name (from module)`` for each non-public import in a plugin's source: a
    name from ``routeharness`` not in ``__all__``, any internal ``routeharness.<module>``,
    and a private name of another package (another plugin's helper)."""
    own = next((part for part in path.parts if part.startswith("routeharness_")), None)
    problems = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("routeharness.") and alias.name not in PUBLIC_MODULES:
                    problems.append(f"{path}:{node.lineno}: import {alias.name} (internal)")
            continue
        if not isinstance(node, ast.ImportFrom) or node.level or not node.module:
            continue
        top = node.module.split(".")[0]
        for alias in node.names:
            where = f"{path}:{node.lineno}: {alias.name} (from {node.module})"
            if node.module == "routeharness":
                if alias.name not in routeharness.__all__:
                    problems.append(f"{where}: not in routeharness.__all__")
            elif top == "routeharness":
                if node.module not in PUBLIC_MODULES:
                    problems.append(f"{where}: an internal module")
                elif alias.name.startswith("_"):
                    problems.append(f"{where}: a private name")
            elif alias.name.startswith("_") and top != own:
                problems.append(f"{where}: another package's private name")
    return problems


def plugin_sources() -> list[Path]:
    return sorted(p for root in PLUGIN_SOURCES for p in root.rglob("*.py"))


def test_builtin_plugins_and_the_example_import_only_public_names():
    sources = plugin_sources()
    assert len({p.relative_to(ROOT).parts[1] for p in sources}) >= 15  # 14 built-ins + example
    problems = [problem for path in sources
                for problem in import_problems(path.relative_to(ROOT),
                                               path.read_text(encoding="utf-8"))]
    assert not problems, "non-public imports:\n" + "\n".join(problems)


def test_the_import_check_catches_each_kind_of_non_public_import():
    source = ("from routeharness import BaseRouter, restore\n"
              "from routeharness.routers.state import RouterState\n"
              "import routeharness.evaluation.protocol\n"
              "from routeharness.testing import check_router, _raise_on_failures\n"
              "def f():\n"
              "    from routeharness_sentence_transformers.encoder import _local_revision\n"
              "    from routeharness_vision.effnet import _FoldedBlock\n")
    problems = import_problems(Path("plugins/routeharness_vision/encoders.py"), source)
    assert [p.split(": ")[1] for p in problems] == [
        "restore (from routeharness)", "RouterState (from routeharness.routers.state)",
        "import routeharness.evaluation.protocol (internal)",
        "_raise_on_failures (from routeharness.testing)",
        "_local_revision (from routeharness_sentence_transformers.encoder)"]
    assert problems[0].startswith("plugins/routeharness_vision/encoders.py:1: ")


# --- plugin modules load when first used ------------------------------------------------------
def is_implementation(module: str, plugins: tuple[str, ...]) -> bool:
    """Whether ``module`` is a submodule of one of the ``plugins`` packages."""
    return "." in module and module.split(".")[0] in plugins


PROBE = """
import json, sys
from routeharness.cli import main
seen, report = set(sys.modules), {}
for args in json.loads(sys.argv[1]):
    try:
        main(list(args))
    except SystemExit:
        pass
    new = sorted(set(sys.modules) - seen)
    seen |= set(new)
    report[" ".join(args)] = new
print(json.dumps(report), file=sys.stderr)
"""


def test_listing_commands_import_no_plugin_implementation_module():
    """``--help`` and the listings load each built-in plugin's package (its hooks) and
    nothing else of it: a plugin's router.py, loader.py or encoder.py, and the heavy
    libraries they import, wait until a name is used. ``routers`` is the one exception
    for router modules: its ``saveable`` and ``updatable`` columns are the classes' own
    tags (one place for each fact), so it imports the router classes, still without a
    heavy library (they import those inside the functions that need them)."""
    done = subprocess.run([sys.executable, "-c", PROBE, json.dumps(LISTING_COMMANDS)],
                          capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads(done.stderr.strip().splitlines()[-1])
    loaded = {m for modules in report.values() for m in modules}
    from routeharness.plugins.host import DEFAULT_PLUGINS
    from routeharness.plugins.registry import get_registry

    assert set(DEFAULT_PLUGINS) <= loaded  # the hooks did run
    # the packages of the router classes (a router module may import its package's others)
    routers = {entry.target.partition(":")[0].split(".")[0]
               for entry in get_registry("router").entries()}
    wrong = {command: [m for m in modules if (is_implementation(m, DEFAULT_PLUGINS)
                                              and not (command == "routers" and m.split(".")[0] in routers))
                       or m.split(".")[0] in HEAVY]
             for command, modules in report.items()}
    assert not any(wrong.values()), f"imported by a listing command: {wrong}"


def test_importing_the_builtin_plugins_loads_only_their_hooks():
    """What an application embedding the harness pays for the plugins: their hook modules,
    no numpy, no implementation module."""
    from routeharness.plugins.host import DEFAULT_PLUGINS

    code = ("import importlib, json, sys\n"
            f"for name in {list(DEFAULT_PLUGINS)!r}:\n"
            "    importlib.import_module(name)\n"
            "print(json.dumps(sorted(sys.modules)))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60, cwd=ROOT)
    assert done.returncode == 0, done.stderr[-2000:]
    modules = json.loads(done.stdout)
    assert [m for m in modules if is_implementation(m, DEFAULT_PLUGINS)] == []
    assert [m for m in modules if m.split(".")[0] in (*HEAVY, "numpy")] == []


@pytest.mark.parametrize("kind", ["router", "encoder", "task"])
def test_builtin_plugins_register_lazy_string_targets(kind):
    from routeharness.plugins.host import plugin_infos
    from routeharness.plugins.registry import get_registry

    builtins = {info.name for info in plugin_infos() if info.builtin}
    entries = [entry for entry in get_registry(kind).entries() if entry.plugin in builtins]
    assert entries
    for entry in entries:
        targets = [entry.target, *(entry.options.get(k) for k in ("build",)
                                   if entry.options.get(k) is not None)]
        for target in targets:
            assert isinstance(target, str) and re.fullmatch(r"[\w.]+:\w+", target), \
                f"{kind} {entry.name!r} registers {target!r}, not a lazy 'module:attr'"


# --- the routers' own training trade-offs ---------------------------------------------------
def test_the_learned_routers_train_on_the_harness_sweep_range():
    """``mlp-select`` and ``bandit`` hold their training trade-offs as their own constants
    (a fitted network is trained on them), not the protocol's; they must still cover the
    sweep the harness routes on."""
    from routeharness_bandit.router import TRAIN_LOG10_LAMBDA_RANGE
    from routeharness_mlp.router import TRAIN_LAMBDAS

    from routeharness.evaluation.protocol import DEFAULT_LAMBDAS, LOG10_LAMBDA_RANGE

    assert TRAIN_LOG10_LAMBDA_RANGE == LOG10_LAMBDA_RANGE
    low, high = LOG10_LAMBDA_RANGE
    assert TRAIN_LAMBDAS[0] == 0.0 and np.isinf(TRAIN_LAMBDAS[-1]) and len(TRAIN_LAMBDAS) == 27
    np.testing.assert_array_equal(TRAIN_LAMBDAS[1:-1], np.logspace(low, high, 25))
    finite = [lam for lam in DEFAULT_LAMBDAS if 0 < lam < np.inf]
    assert min(TRAIN_LAMBDAS[1:-1]) <= min(finite) and max(finite) <= max(TRAIN_LAMBDAS[1:-1])
