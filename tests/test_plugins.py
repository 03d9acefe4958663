"""Plugin discovery: entry points of real distributions (installed into a throw-away
directory, never into this environment), duplicates, failures, plugin commands, and the
LOAD/BLOCK environment variables."""

from __future__ import annotations

import json
import types
from importlib import metadata

import pytest
from plugin_site import env_with, plugin_site

from routeharness import hookimpl
from routeharness.common.errors import PluginError
from routeharness.plugins.host import get_host, reset_plugin_manager
from routeharness.plugins.registry import get_registry


@pytest.fixture
def temporary_plugin():
    """Register a plugin object in-process for one test, then remove it."""

    def add(module: object, name: str) -> None:
        reset_plugin_manager()
        get_host().add(module, name)

    yield add
    reset_plugin_manager()


def _module(name: str, **hooks: object) -> types.ModuleType:
    module = types.ModuleType(name)
    for hook_name, function in hooks.items():
        setattr(module, hook_name, hookimpl(function))
    return module


def test_builtins_are_loaded_with_their_hooks():
    reset_plugin_manager()
    from routeharness.plugins.host import plugin_infos

    infos = {i.name: i for i in plugin_infos()}
    assert infos["knn"].hooks == ["register_routers"]
    assert infos["knn"].distribution == "routeharness" and infos["knn"].builtin
    assert infos["knn"].loaded and infos["knn"].error is None
    assert "routerbench" in get_registry("task")
    assert {"knn", "knn-vote", "random", "best-single", "cheapest"} <= set(
        get_registry("router").names())


def test_duplicate_router_name_names_both_distributions(temporary_plugin):
    def register_routers(register):
        register(name="knn", target="somewhere:Else")

    temporary_plugin(_module("impostor", register_routers=register_routers), "impostor")
    with pytest.raises(PluginError) as info:
        get_registry("router")
    message = str(info.value)
    assert "duplicate router name 'knn'" in message
    assert "routeharness 0.1.0" in message and "'impostor'" in message


def test_lazy_target_that_cannot_be_imported_is_a_clear_error(temporary_plugin):
    def register_routers(register):
        register(name="ghost", target="no_such_module_xyz:Router")

    temporary_plugin(_module("ghostly", register_routers=register_routers), "ghostly")
    with pytest.raises(PluginError, match=r"router 'ghost' from plugin 'ghostly'.*cannot import"):
        get_registry("router").get("ghost").load()


@pytest.fixture(scope="module")
def installed_plugins(tmp_path_factory) -> dict[str, str]:
    """routeharness-tiny and routeharness-broken, pip-installed into a throw-away
    directory: the environment a subprocess needs to see them."""
    return env_with(plugin_site(tmp_path_factory))


def test_installs_leave_this_environment_alone(installed_plugins):
    for distribution in ("routeharness-tiny", "routeharness-broken",
                         "routeharness-nearest-centroid"):
        with pytest.raises(metadata.PackageNotFoundError):
            metadata.distribution(distribution)
    assert not [ep for ep in metadata.entry_points(group="routeharness")
                if ep.dist is not None and ep.dist.name != "routeharness"]


def test_installed_plugin_is_discovered_and_a_broken_one_is_skipped(installed_plugins, cli):
    result = cli("plugins", "--json", env=installed_plugins)
    assert result.returncode == 0, result.stderr
    infos = {i["name"]: i for i in json.loads(result.stdout)}
    assert infos["tiny"]["distribution"] == "routeharness-tiny"
    assert infos["tiny"]["version"] == "0.0.1"
    assert infos["tiny"]["hooks"] == ["register_commands", "register_routers"]
    assert infos["broken"]["error"].startswith("ModuleNotFoundError")
    assert not infos["broken"]["loaded"]
    assert infos["knn"]["error"] is None
    routers = cli("routers", env=installed_plugins)
    assert routers.returncode == 0
    assert "second-cheapest" in routers.stdout and "knn" in routers.stdout
    assert "plugin 'broken' (routeharness-broken 0.0.1) failed to load" in routers.stderr
    assert "Traceback" not in routers.stderr


def test_installed_plugin_command_runs_through_the_cli(installed_plugins, cli):
    """register_commands has a real user: routeharness-tiny's ``tiny-info``."""
    listed = cli("--help", env=installed_plugins)
    assert listed.returncode == 0 and "tiny-info" in listed.stdout
    done = cli("tiny-info", env=installed_plugins)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("routeharness-tiny: router 'second-cheapest'")
    assert cli("tiny-info", "--router", env=installed_plugins).stdout == "second-cheapest\n"
    blocked = cli("tiny-info", env={**installed_plugins, "ROUTEHARNESS_BLOCK_PLUGINS": "tiny"})
    assert blocked.returncode == 2 and "No such command 'tiny-info'" in blocked.stderr


def test_installed_plugin_router_is_usable_by_name(installed_plugins, cli, cache_dir, tmp_path):
    out = tmp_path / "r.json"
    result = cli("eval", "-r", "second-cheapest", "-t", "routerbench:mbpp", "--no-tune",
                 "--bootstrap", "0", "--no-references", "-q", "-o", str(out),
                 env={**installed_plugins, "ROUTEHARNESS_CACHE": str(cache_dir)})
    assert result.returncode == 0, result.stderr
    record = json.loads(out.read_text())["records"][0]
    assert record["router"] == "second-cheapest"
    assert record["distribution"] == "routeharness-tiny" and record["version"] == "0.0.1"


def test_block_and_load_environment_variables(installed_plugins, cli):
    blocked = cli("eval", "-r", "second-cheapest", "-t", "routerbench",
                  env={**installed_plugins, "ROUTEHARNESS_BLOCK_PLUGINS": "tiny"})
    assert blocked.returncode == 2
    assert "unknown router 'second-cheapest'" in blocked.stderr
    only = cli("plugins", "--json",
               env={**installed_plugins, "ROUTEHARNESS_LOAD_PLUGINS": "knn,tiny"})
    names = {i["name"] for i in json.loads(only.stdout)}
    assert names == {"knn", "tiny"}
