"""Plugin discovery: entry points of real installed distributions, duplicates, failures,
and the LOAD/BLOCK environment variables."""

from __future__ import annotations

import json
import subprocess
import sys
import types
from pathlib import Path

import pytest

from routeharness.errors import PluginError
from routeharness.hookspecs import hookimpl
from routeharness.plugins import get_plugin_manager, reset_plugin_manager
from routeharness.registry import get_registry

PLUGIN_DIR = Path(__file__).parent / "plugins"


@pytest.fixture
def temporary_plugin():
    """Register a plugin object in-process for one test, then remove it."""
    added = []

    def add(module: object, name: str) -> None:
        reset_plugin_manager()
        get_plugin_manager().register(module, name=name)
        added.append(name)

    yield add
    reset_plugin_manager()


def test_builtins_are_loaded_with_their_hooks():
    reset_plugin_manager()
    from routeharness.plugins import plugin_infos

    infos = {i.name: i for i in plugin_infos()}
    assert infos["knn"].hooks == ["register_routers"]
    assert infos["knn"].distribution == "routeharness" and infos["knn"].builtin
    assert "routerbench" in get_registry("task")
    assert {"knn", "knn-vote", "random", "best-single", "cheapest", "oracle"} <= set(
        get_registry("router").names())


def test_duplicate_router_name_names_both_distributions(temporary_plugin):
    module = types.SimpleNamespace()

    @hookimpl
    def register_routers(register):
        register(name="knn", target="somewhere:Else")

    module.register_routers = register_routers
    temporary_plugin(module, "impostor")
    with pytest.raises(PluginError) as info:
        get_registry("router")
    message = str(info.value)
    assert "duplicate router name 'knn'" in message
    assert "routeharness 0.1.0" in message and "'impostor'" in message


def test_lazy_target_that_cannot_be_imported_is_a_clear_error(temporary_plugin):
    module = types.SimpleNamespace()

    @hookimpl
    def register_routers(register):
        register(name="ghost", target="no_such_module_xyz:Router")

    module.register_routers = register_routers
    temporary_plugin(module, "ghostly")
    with pytest.raises(PluginError, match=r"router 'ghost' from plugin 'ghostly'.*cannot import"):
        get_registry("router").get("ghost").load()


@pytest.fixture(scope="module")
def installed_plugins():
    """Really pip-install two plugin distributions into this environment, then remove them."""
    pip = [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation"]
    for name in ("routeharness-tiny", "routeharness-broken"):
        subprocess.run([*pip, str(PLUGIN_DIR / name)], check=True, capture_output=True)
    yield
    subprocess.run([sys.executable, "-m", "pip", "uninstall", "-q", "-y", "routeharness-tiny",
                    "routeharness-broken"], check=True, capture_output=True)


def test_installed_plugin_is_discovered_and_a_broken_one_is_skipped(installed_plugins, cli):
    result = cli("plugins", "--json")
    assert result.returncode == 0, result.stderr
    infos = {i["name"]: i for i in json.loads(result.stdout)}
    assert infos["tiny"]["distribution"] == "routeharness-tiny"
    assert infos["tiny"]["version"] == "0.0.1"
    assert infos["tiny"]["hooks"] == ["register_routers"]
    assert infos["broken"]["error"].startswith("ModuleNotFoundError")
    assert infos["knn"]["error"] is None
    routers = cli("routers")
    assert routers.returncode == 0
    assert "second-cheapest" in routers.stdout and "knn" in routers.stdout
    assert "plugin 'broken' (routeharness-broken) failed to load" in routers.stderr


def test_installed_plugin_router_is_usable_by_name(installed_plugins, cli, cache_dir, tmp_path):
    out = tmp_path / "r.json"
    result = cli("eval", "-r", "second-cheapest", "-t", "routerbench:mbpp", "--no-tune",
                 "--bootstrap", "0", "--no-references", "-q", "-o", str(out),
                 env={"ROUTEHARNESS_CACHE": str(cache_dir)})
    assert result.returncode == 0, result.stderr
    record = json.loads(out.read_text())["records"][0]
    assert record["router"] == "second-cheapest"
    assert record["distribution"] == "routeharness-tiny" and record["version"] == "0.0.1"


def test_block_and_load_environment_variables(installed_plugins, cli):
    blocked = cli("eval", "-r", "second-cheapest", "-t", "routerbench",
                  env={"ROUTEHARNESS_BLOCK_PLUGINS": "tiny"})
    assert blocked.returncode == 2
    assert "unknown router 'second-cheapest'" in blocked.stderr
    only = cli("plugins", "--json", env={"ROUTEHARNESS_LOAD_PLUGINS": "knn,tiny"})
    names = {i["name"] for i in json.loads(only.stdout)}
    assert names == {"knn", "tiny"}
