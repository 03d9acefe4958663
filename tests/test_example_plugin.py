"""The example third-party plugin (examples/routeharness-nearest-centroid), installed with
pip as a user would, and the plugin-author docs."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "routeharness-nearest-centroid"
DISTRIBUTION = "routeharness-nearest-centroid"


def _pip(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pip", *args, "--disable-pip-version-check",
                           "-q"], capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def installed(cache_dir):
    """pip-install the example into this environment; uninstall it afterwards so the
    other tests see the usual plugin set."""
    done = _pip("install", "--no-deps", "--no-build-isolation", str(EXAMPLE))
    assert done.returncode == 0, done.stderr
    try:
        yield DISTRIBUTION
    finally:
        _pip("uninstall", "-y", DISTRIBUTION)


def test_the_example_is_a_real_distribution():
    import tomllib

    project = tomllib.loads((EXAMPLE / "pyproject.toml").read_text(encoding="utf-8"))
    assert project["build-system"]["build-backend"] == "hatchling.build"
    assert project["project"]["name"] == DISTRIBUTION
    assert project["project"]["entry-points"]["routeharness"] == {
        "nearest-centroid": "routeharness_nearest_centroid"}


def test_listed_by_plugins(installed, cli):
    done = cli("plugins", "--json")
    assert done.returncode == 0, done.stderr
    plugins = {p["name"]: p for p in json.loads(done.stdout)}
    info = plugins["nearest-centroid"]
    assert (info["distribution"], info["version"], info["builtin"]) == (DISTRIBUTION, "0.1.0", False)
    assert info["hooks"] == ["register_routers"] and info["error"] is None
    routers = cli("routers")
    assert "nearest-centroid" in routers.stdout


def test_passes_the_kit_from_the_command_line(installed, cli):
    done = cli("check", "nearest-centroid")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "failed" not in done.stdout and "check_no_test_labels" in done.stdout


def test_its_own_tests_pass(installed):
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                           "--rootdir", str(EXAMPLE), str(EXAMPLE / "tests")],
                          capture_output=True, text=True, timeout=300, cwd=EXAMPLE)
    assert done.returncode == 0, done.stdout[-2000:]
    assert " passed" in done.stdout


def test_usable_in_eval(installed, cli, tmp_path):
    out = tmp_path / "results.json"
    done = cli("eval", "--router", "nearest-centroid", "--router", "cheapest",
               "--task", "routerbench:mbpp", "--no-tune", "--bootstrap", "0", "--no-references",
               "-o", str(out), "-q")
    assert done.returncode == 0, done.stderr
    records = {r["router"]: r for r in json.loads(out.read_text())["records"]}
    record = records["nearest-centroid"]
    assert record["distribution"] == DISTRIBUTION and record["version"] == "0.1.0"
    assert record["params"]["n_clusters"] == 16
    assert 0.0 <= record["metrics"]["auc"] <= 100.0
    assert "nearest-centroid" in done.stdout


# --- docs ---------------------------------------------------------------------------------
def _hook_signatures() -> dict[str, str]:
    """Each hookspec's ``name(args) -> returns`` as written in routeharness/hookspecs.py."""
    tree = ast.parse((ROOT / "routeharness" / "hookspecs.py").read_text(encoding="utf-8"))
    out = {}
    for node in tree.body:
        if isinstance(node, ast.FunctionDef) and any(
                ast.unparse(d) == "hookspec" for d in node.decorator_list):
            out[node.name] = f"{node.name}({ast.unparse(node.args)}) -> {ast.unparse(node.returns)}"
    return out


def test_every_hook_is_documented_with_its_signature():
    from routeharness import hookspecs

    signatures = _hook_signatures()
    declared = {name for name in dir(hookspecs) if name.startswith("register_")}
    assert set(signatures) == declared and signatures
    doc = (ROOT / "docs" / "plugin-hooks.md").read_text(encoding="utf-8")
    undocumented = [s for s in signatures.values() if s not in doc]
    assert not undocumented, f"docs/plugin-hooks.md lacks: {undocumented}"


def test_plugin_tutorial_shows_the_entry_point():
    doc = (ROOT / "docs" / "writing-a-router.md").read_text(encoding="utf-8")
    assert "[project.entry-points.routeharness]" in doc
    assert "parametrize_with_checks" in doc and "routeharness check" in doc
    contributing = (ROOT / "CONTRIBUTING.md").read_text(encoding="utf-8")
    assert "leaderboard run" in contributing and "chromium" in contributing
