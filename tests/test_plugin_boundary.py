"""The plugin boundary: registration hooks called through pluggy (traced), strict
registrars, one object owning plugin state, the public API, plugin commands, and every
failure of a plugin reported in one plain line. In-process (the real CLI through
``routeharness.cli.main``) and fast, but for one ``python -c`` import check."""

from __future__ import annotations

import ast
import subprocess
import sys
import types
from pathlib import Path

import pytest

import routeharness
from routeharness import hookimpl
from routeharness.cli._app import main
from routeharness.common.errors import PluginError, UnknownNameError
from routeharness.plugins import hookspecs
from routeharness.plugins.host import get_host, plugin_infos, reset_plugin_manager
from routeharness.plugins.registry import KEYWORDS, Registrar, get_registry

ROOT = Path(__file__).resolve().parent.parent

#: every hook specification -> the test here that calls it through the plugin host
HOOK_TESTS = {
    "register_routers": "test_register_routers_hook",
    "register_encoders": "test_register_encoders_hook",
    "register_tasks": "test_register_tasks_hook",
    "register_commands": "test_register_commands_hook",
}


@pytest.fixture(autouse=True)
def fresh_host(monkeypatch):
    """Plugin state built from the built-ins alone, forgotten after each test."""
    for var in ("ROUTEHARNESS_TRACE_PLUGINS", "ROUTEHARNESS_LOAD_PLUGINS",
                "ROUTEHARNESS_BLOCK_PLUGINS"):
        monkeypatch.delenv(var, raising=False)
    reset_plugin_manager()
    yield
    reset_plugin_manager()


def add_plugin(name: str, **hooks: object) -> types.ModuleType:
    """A plugin module with the given hook implementations, registered by hand."""
    module = types.ModuleType(f"plugin_{name}")
    for hook_name, function in hooks.items():
        setattr(module, hook_name, hookimpl(function))
    get_host().add(module, name, distribution=f"dist-{name}", version="9.9")
    return module


def run(capsys, *args: str) -> tuple[int, str, str]:
    """The real CLI in-process: (exit code, stdout, stderr)."""
    try:
        main(list(args))
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    out, err = capsys.readouterr()
    return code, out, err


def failure_of(plugin: str) -> str | None:
    return next(i.error for i in plugin_infos() if i.name == plugin)


# --- each hook, called through the host ---------------------------------------------------
def test_register_routers_hook():
    def register_routers(register):
        register(name="always-first", target="routeharness_baselines.routers:CheapestRouter",
                 description="a   test\nrouter")

    add_plugin("firsts", register_routers=register_routers)
    entry = get_registry("router").get("always-first")
    assert (entry.plugin, entry.distribution, entry.version) == ("firsts", "dist-firsts", "9.9")
    assert entry.description == "a test router"  # one line in listings
    assert "knn" in get_registry("router")  # the built-ins still register


def test_register_encoders_hook():
    def factory(arg):
        return arg

    def register_encoders(register):
        register(name="echo", target=factory, description="test encoder")

    add_plugin("echoes", register_encoders=register_encoders)
    assert get_registry("encoder").get("echo").load() is factory
    assert "minilm" in get_registry("encoder")


def test_register_tasks_hook(tmp_path):
    card = tmp_path / "card.yaml"

    def register_tasks(register):
        register(name="mine", target="my_tasks:load", card=card, build="my_tasks:build",
                 description="a task")

    add_plugin("tasky", register_tasks=register_tasks)
    entry = get_registry("task").get("mine")
    assert entry.target == "my_tasks:load"
    assert entry.options == {"card": str(card), "build": "my_tasks:build"}


def test_register_commands_hook(capsys):
    import click

    def register_commands(cli):
        @cli.command()
        @click.argument("text")
        def shout(text):
            """Print TEXT in capitals."""
            click.echo(text.upper())

    add_plugin("loud", register_commands=register_commands)
    assert run(capsys, "shout", "hi [bold]") == (0, "HI [BOLD]\n", "")
    code, out, _ = run(capsys, "--help")
    assert code == 0 and "shout" in out
    reset_plugin_manager()  # the plugin is gone: so is its command
    code, _, err = run(capsys, "shout", "hi")
    assert code == 2 and "No such command 'shout'" in err


def test_every_hookspec_has_a_test_and_a_documented_signature():
    declared = {name for name in dir(hookspecs)
                if hasattr(getattr(hookspecs, name), "routeharness_spec")}
    assert declared == set(HOOK_TESTS), "a hook spec without a test in HOOK_TESTS"
    tests = {node.name for node in ast.parse(Path(__file__).read_text(encoding="utf-8")).body
             if isinstance(node, ast.FunctionDef)}
    assert set(HOOK_TESTS.values()) <= tests
    tree = ast.parse((ROOT / "routeharness" / "plugins" / "hookspecs.py").read_text(encoding="utf-8"))
    signatures = [f"{n.name}({ast.unparse(n.args)}) -> {ast.unparse(n.returns)}"
                  for n in tree.body if isinstance(n, ast.FunctionDef) and n.name in declared]
    assert len(signatures) == len(declared)
    doc = (ROOT / "docs" / "plugin-hooks.md").read_text(encoding="utf-8")
    undocumented = [s for s in signatures if s not in doc]
    assert not undocumented, f"docs/plugin-hooks.md lacks: {undocumented}"
    for kind, keywords in KEYWORDS.items():  # every keyword a registrar takes is documented
        section = doc.split(f"## register_{kind}s", 1)[1].split("\n## ", 1)[0]
        assert all(f"`{k}`" in section for k in keywords), (kind, keywords)


# --- tracing --------------------------------------------------------------------------------
def test_trace_shows_every_registration_hook_with_its_plugin(capsys, monkeypatch):
    monkeypatch.setenv("ROUTEHARNESS_TRACE_PLUGINS", "1")
    reset_plugin_manager()
    add_plugin("loud", register_commands=lambda cli: None)
    code, out, err = run(capsys, "plugins")
    assert code == 0 and "knn" in out
    for hook in ("register_routers", "register_encoders", "register_tasks",
                 "register_commands"):
        assert f"{hook} [hook]" in err and f"finish {hook}" in err
    # each plugin's call on its own: the trace says whose registrar it was
    assert "<register routers of plugin 'knn'>" in err
    assert "<register tasks of plugin 'routerbench'>" in err


# --- strict registrars ------------------------------------------------------------------------
@pytest.mark.parametrize(("kind", "keyword"), [
    ("router", "tagz"), ("router", "card"), ("encoder", "options"), ("task", "loader"),
    ("task", "grid")])
def test_unknown_keyword_is_refused_naming_plugin_kind_and_keyword(kind, keyword):
    registrar = Registrar(kind, "sloppy", "dist-sloppy", "1.0")
    with pytest.raises(PluginError) as info:
        registrar(name="thing", target="m:f", **{keyword: "x"})
    message = str(info.value)
    assert "plugin 'sloppy'" in message and f"{kind} 'thing'" in message
    assert f"unknown keyword {keyword!r}" in message and "\n" not in message
    assert registrar.entries == []


@pytest.mark.parametrize("name", ["", " ", "two words", "with:colon", "tab\there", None, 3])
def test_invalid_names_are_refused(name):
    with pytest.raises(PluginError, match=r"plugin 'p'.*invalid name"):
        Registrar("router", "p", "d", "1")(name=name, target="m:C")


@pytest.mark.parametrize(("kwargs", "match"), [
    ({}, "no target"), ({"target": "no_colon"}, "not 'module:attribute'"),
    ({"target": "m:"}, "not 'module:attribute'"), ({"target": 42}, "got int"),
    ({"target": "m:C", "description": 7}, "description must be text")])
def test_bad_targets_and_descriptions_are_refused(kwargs, match):
    with pytest.raises(PluginError, match=match):
        Registrar("router", "p", "d", "1")(name="ok", **kwargs)


def test_positional_arguments_and_late_calls_are_refused():
    kept = []

    def register_routers(register):
        kept.append(register)
        register(name="fine", target="m:C")

    add_plugin("keeper", register_routers=register_routers)
    assert "fine" in get_registry("router")
    with pytest.raises(PluginError, match="after the hook returned"):
        kept[0](name="late", target="m:C")
    with pytest.raises(PluginError, match="keyword arguments only"):
        Registrar("task", "p", "d", "1")("name", "m:f")


def test_a_refused_registration_drops_that_plugin_only(capsys):
    def register_routers(register):
        register(name="good-one", target="m:C")
        register(name="bad-one", target="m:C", tagz={"x": 1})

    add_plugin("sloppy", register_routers=register_routers)
    registry = get_registry("router")
    assert "good-one" not in registry and "bad-one" not in registry  # all or nothing
    assert "knn" in registry
    assert "unknown keyword 'tagz'" in failure_of("sloppy")
    with pytest.raises(UnknownNameError, match=r"unknown router 'good-one'.*'sloppy'"):
        registry.get("good-one")
    code, out, err = run(capsys, "routers")
    assert code == 0 and "knn" in out and "Traceback" not in err
    assert err.count("\n") == 1 and err.startswith("warning: plugin 'sloppy' (dist-sloppy 9.9)")


# --- failures reported in one plain line --------------------------------------------------------
def test_a_raising_register_hook_is_one_plain_line(capsys):
    def register_routers(register):
        raise RuntimeError("boom [red]not markup[/red]\nsecond line")

    add_plugin("exploding", register_routers=register_routers)
    code, out, err = run(capsys, "routers")
    assert code == 0 and "knn" in out
    assert err == ("warning: plugin 'exploding' (dist-exploding 9.9) failed: register_routers "
                   "raised RuntimeError: boom [red]not markup[/red] second line\n")
    code, out, err2 = run(capsys, "plugins", "--format", "rich")
    assert code == 0 and "failed: register_routers raised RuntimeError: boom [red]not" in out
    assert err2 == err


def test_a_failed_import_is_reported_as_plain_text(capsys):
    host = get_host()
    host.infos()
    from routeharness.plugins.host import PluginInfo

    # what an entry point whose import raised leaves behind (the real one: test_plugins.py)
    host._infos.append(PluginInfo("weird", "weird_mod", "weird-dist", "1.0", builtin=False,
                                  error="ImportError: [bold]no[/bold] module"))
    code, _, err = run(capsys, "encoders")
    assert code == 0
    assert err == ("warning: plugin 'weird' (weird-dist 1.0) failed to load and was skipped: "
                   "ImportError: [bold]no[/bold] module\n")


def test_a_plugin_command_may_not_replace_a_builtin(capsys):
    import click

    def register_commands(cli):
        @cli.command(name="routers")
        def hijack():
            click.echo("hijacked")

        @cli.command(name="extra")
        def extra():
            click.echo("extra")

    add_plugin("hijacker", register_commands=register_commands)
    code, out, _ = run(capsys, "--help")
    assert code == 0 and "extra" not in out  # what it added is taken back
    code, out, _ = run(capsys, "routers")
    assert code == 0 and "hijacked" not in out and "knn" in out
    assert "command 'routers' is already taken" in failure_of("hijacker")


def test_a_raising_register_commands_hook_leaves_the_cli_working(capsys):
    def register_commands(cli):
        cli.add_command(cli.commands["routers"], name="half-done")
        raise ValueError("oops")

    add_plugin("halfway", register_commands=register_commands)
    code, out, _ = run(capsys, "--help")
    assert code == 0 and "half-done" not in out
    assert failure_of("halfway") == "register_commands raised ValueError: oops"


def test_two_plugins_claiming_one_name_is_one_error_line(capsys):
    add_plugin("impostor", register_routers=lambda register: register(name="knn",
                                                                       target="m:C"))
    code, _, err = run(capsys, "routers")
    assert code == 1
    assert err.startswith("Error: duplicate router name 'knn'") and err.count("\n") == 1


def test_a_misspelt_hook_or_argument_is_a_failed_plugin_not_a_silent_one():
    import pluggy

    add_plugin("typo", register_router=lambda register: None)
    add_plugin("argname", register_routers=lambda registrar: None)
    later = types.ModuleType("later")
    later.register_widgets = pluggy.HookimplMarker("routeharness")(optionalhook=True)(
        lambda register: None)
    get_host().add(later, "later")
    assert failure_of("typo").startswith("implements unknown hook 'register_router'")
    assert "register_routers" in failure_of("typo")
    assert "registrar" in failure_of("argname")  # pluggy's validation, in one line
    assert failure_of("later") is None  # a hook of a later version, declared optional
    assert not get_host().pm.has_plugin("typo")
    assert "knn" in get_registry("router")


def test_a_plugin_that_exits_at_import_is_a_failed_plugin(monkeypatch, tmp_path):
    from importlib import metadata

    (tmp_path / "exiting_plugin.py").write_text("raise SystemExit(3)\n", encoding="utf-8")
    monkeypatch.syspath_prepend(str(tmp_path))
    entry_point = metadata.EntryPoint("exiting", "exiting_plugin", "routeharness")
    monkeypatch.setattr(metadata, "entry_points", lambda group: [entry_point])
    reset_plugin_manager()
    assert failure_of("exiting") == "SystemExit: 3"
    assert "knn" in get_registry("router")


def test_a_third_party_plugin_cannot_take_a_builtin_plugin_name(monkeypatch, tmp_path):
    from importlib import metadata

    (tmp_path / "fake_knn.py").write_text("", encoding="utf-8")
    monkeypatch.syspath_prepend(str(tmp_path))
    entry_point = metadata.EntryPoint("knn", "fake_knn", "routeharness")
    monkeypatch.setattr(metadata, "entry_points", lambda group: [entry_point])
    reset_plugin_manager()
    infos = [i for i in plugin_infos() if i.name == "knn"]
    assert [(i.module, i.loaded) for i in infos] == [("routeharness_knn", True),
                                                     ("fake_knn", False)]
    assert infos[1].error == "plugin name 'knn' is already taken by routeharness 0.1.0"
    assert get_registry("router").get("knn").distribution == "routeharness"


@pytest.mark.parametrize("value", ["", "0"])
def test_tracing_is_off_unless_asked(capsys, monkeypatch, value):
    monkeypatch.setenv("ROUTEHARNESS_TRACE_PLUGINS", value)
    reset_plugin_manager()
    code, _, err = run(capsys, "routers")
    assert code == 0 and err == ""


# --- one object owns the plugin state ------------------------------------------------------------
def test_one_reset_forgets_manager_infos_registries_and_commands(capsys):
    host = get_host()
    add_plugin("firsts", register_routers=lambda register: register(name="only-here",
                                                                      target="m:C"))
    pm, generation = host.pm, host.generation
    assert "only-here" in get_registry("router") and set(host.registries) == {"router"}
    reset_plugin_manager()
    assert host.registries == {} and host.generation == generation + 1
    assert host.pm is not pm and "only-here" not in get_registry("router")
    assert "firsts" not in {i.name for i in plugin_infos()}


def test_plugins_and_registry_do_not_import_each_other():
    def imported(module: str) -> set[str]:
        tree = ast.parse((ROOT / "routeharness" / "plugins" / f"{module}.py").read_text(encoding="utf-8"))
        found = set()
        for node in ast.walk(tree):  # function-level imports count as well
            if isinstance(node, ast.ImportFrom) and node.module:
                found |= {node.module, *(f"{node.module}.{a.name}" for a in node.names)}
            elif isinstance(node, ast.Import):
                found |= {a.name for a in node.names}
        return {name for name in found if name.startswith("routeharness")}

    assert "routeharness.plugins.registry" not in imported("host")
    assert "routeharness.plugins.host" in imported("registry")
    assert imported("hookspecs") == set()


# --- the public API --------------------------------------------------------------------------
def test_every_public_name_resolves_to_its_defining_module():
    expected = {"hookimpl", "BaseRouter", "select", "UTILITY", "SELECTION", "Outcomes",
                "RoutingData", "RoutingTask", "ModelInfo", "RouteHarnessError", "DataError",
                "PluginError", "NotFittedError", "one_torch_thread", "__version__"}
    assert expected <= set(routeharness.__all__)
    assert len(set(routeharness.__all__)) == len(routeharness.__all__)
    from routeharness.common import errors
    from routeharness.data import dataset as data
    from routeharness.routers import base

    for name in routeharness.__all__:
        value = getattr(routeharness, name)
        assert value is not None, name
    assert routeharness.BaseRouter is base.BaseRouter and routeharness.Outcomes is data.Outcomes
    assert routeharness.PluginError is errors.PluginError and routeharness.hookimpl is hookimpl
    assert set(routeharness.__all__) <= set(dir(routeharness))
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        routeharness.nope  # noqa: B018
    from routeharness.data import tasks  # submodules still import through the package

    assert tasks.__name__ == "routeharness.data.tasks"


def test_import_routeharness_is_instant_and_light():
    code = ("import sys, routeharness; "
            "print(sorted(m for m in ('numpy', 'torch', 'datasets', 'pluggy', 'click') "
            "if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_shipped_plugins_import_only_the_public_api():
    """The test plugin and the example import ``from routeharness import ...`` (and the
    testing kit), never a private module."""
    sources = [*(ROOT / "tests" / "plugins" / "routeharness-tiny").rglob("*.py"),
               *(ROOT / "examples" / "routeharness-nearest-centroid").rglob("*.py")]
    assert sources
    for path in sources:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith(
                    "routeharness."):
                assert node.module.startswith("routeharness.testing"), (
                    f"{path}: imports {node.module}")


# --- plugin selection that matches nothing (hostile #12) ---------------------------------------
@pytest.mark.parametrize("var, value, message", [
    ("ROUTEHARNESS_LOAD_PLUGINS", "nosuch", "ROUTEHARNESS_LOAD_PLUGINS: 'nosuch' match(es) no"),
    ("ROUTEHARNESS_BLOCK_PLUGINS", "knn,nosuch", "ROUTEHARNESS_BLOCK_PLUGINS: 'nosuch' match"),
    ("ROUTEHARNESS_LOAD_PLUGINS", "", "ROUTEHARNESS_LOAD_PLUGINS is set but empty: no plugin"),
])
def test_a_plugin_selection_matching_nothing_warns_once(monkeypatch, capsys, var, value,
                                                        message):
    """Before: empty listings and 'Known: none registered', with no word on why."""
    import routeharness.plugins.host as plugins

    monkeypatch.setattr(plugins, "_warned", set())
    monkeypatch.setenv(var, value)
    reset_plugin_manager()
    plugin_infos()
    reset_plugin_manager()
    plugin_infos()  # once per process
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("warning: ") and message in err, err
    if var == "ROUTEHARNESS_LOAD_PLUGINS":
        with pytest.raises(UnknownNameError, match=f"plugins selected by {var}="):
            get_registry("router").get("knn")


def test_a_plugin_selection_that_matches_warns_nothing(monkeypatch, capsys):
    import routeharness.plugins.host as plugins

    monkeypatch.setattr(plugins, "_warned", set())
    monkeypatch.setenv("ROUTEHARNESS_LOAD_PLUGINS", "knn,routeharness_baselines")
    reset_plugin_manager()
    plugin_infos()
    assert capsys.readouterr().err == ""
