"""The example third-party plugin (examples/routeharness-nearest-centroid), installed with
pip as a user would (into a throw-away directory on the subprocesses' PYTHONPATH, never
into this environment), and the plugin-author docs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from plugin_site import EXAMPLE, env_with, plugin_site

ROOT = Path(__file__).resolve().parent.parent
DISTRIBUTION = "routeharness-nearest-centroid"


@pytest.fixture(scope="module")
def installed(tmp_path_factory, cache_dir) -> dict[str, str]:
    """The environment a subprocess needs to see the example, pip-installed (with the
    test plugins, once per session) into a throw-away directory."""
    return env_with(plugin_site(tmp_path_factory))


def test_the_example_is_a_real_distribution():
    import tomllib

    project = tomllib.loads((EXAMPLE / "pyproject.toml").read_text(encoding="utf-8"))
    assert project["build-system"]["build-backend"] == "hatchling.build"
    assert project["project"]["name"] == DISTRIBUTION
    assert project["project"]["entry-points"]["routeharness"] == {
        "nearest-centroid": "routeharness_nearest_centroid"}


def test_listed_by_plugins(installed, cli):
    done = cli("plugins", "--json", env=installed)
    assert done.returncode == 0, done.stderr
    plugins = {p["name"]: p for p in json.loads(done.stdout)}
    info = plugins["nearest-centroid"]
    assert (info["distribution"], info["version"], info["builtin"]) == (DISTRIBUTION, "0.1.0", False)
    assert info["hooks"] == ["register_routers"] and info["error"] is None
    routers = cli("routers", env=installed)
    assert "nearest-centroid" in routers.stdout


def test_passes_the_kit_from_the_command_line(installed, cli):
    done = cli("check", "nearest-centroid", env=installed)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "failed" not in done.stdout and "check_no_test_labels" in done.stdout


def test_its_own_tests_pass(installed):
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                           "--rootdir", str(EXAMPLE), str(EXAMPLE / "tests")],
                          capture_output=True, text=True, timeout=300, cwd=EXAMPLE,
                          env={**os.environ, **installed})
    assert done.returncode == 0, done.stdout[-2000:]
    assert " passed" in done.stdout


def test_usable_in_eval(installed, cli, tmp_path):
    out = tmp_path / "results.json"
    done = cli("eval", "--router", "nearest-centroid", "--router", "cheapest",
               "--task", "routerbench:mbpp", "--no-tune", "--bootstrap", "0", "--no-references",
               "-o", str(out), "-q", env=installed)
    assert done.returncode == 0, done.stderr
    records = {r["router"]: r for r in json.loads(out.read_text())["records"]}
    record = records["nearest-centroid"]
    assert record["distribution"] == DISTRIBUTION and record["version"] == "0.1.0"
    assert record["params"]["n_clusters"] == 16
    assert 0.0 <= record["metrics"]["auc"] <= 100.0
    assert "nearest-centroid" in done.stdout


# --- docs (the hook reference is checked in test_plugin_boundary.py) ---------------------
def test_plugin_tutorial_shows_the_entry_point():
    doc = (ROOT / "docs" / "writing-a-router.md").read_text(encoding="utf-8")
    assert "[project.entry-points.routeharness]" in doc
    assert "parametrize_with_checks" in doc and "routeharness check" in doc
    contributing = (ROOT / "CONTRIBUTING.md").read_text(encoding="utf-8")
    assert "leaderboard run" in contributing and "chromium" in contributing
