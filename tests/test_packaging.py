"""The wheel carries every built-in plugin, task card and the embedded data."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps",
                    "--no-build-isolation", "-w", str(out), str(ROOT)],
                   check=True, capture_output=True)
    return next(out.glob("routeharness-*.whl"))


def test_wheel_contents(wheel: Path):
    from routeharness.plugins import DEFAULT_PLUGINS

    names = zipfile.ZipFile(wheel).namelist()
    for module in DEFAULT_PLUGINS:
        assert f"{module}/__init__.py" in names, module
    cards = sorted(p.name for p in (ROOT / "tasks").glob("*.yaml"))
    for card in cards:
        assert f"routeharness/_builtin/tasks/{card}" in names
    assert "routeharness_routerbench/data/routerbench.parquet" in names
    assert not any(n.startswith(("tests/", "plugins/")) for n in names)


def test_installed_wheel_finds_plugins_and_cards(wheel: Path, tmp_path: Path):
    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target",
                    str(target), str(wheel)], check=True, capture_output=True)
    code = ("import json, routeharness\n"
            "from routeharness.registry import get_registry\n"
            "from routeharness.resources import builtin_dir\n"
            "from routeharness.tasks import load_card\n"
            "entry = get_registry('task').get('routerbench')\n"
            "card = load_card(entry.options['card'])\n"
            "print(json.dumps({'package': routeharness.__file__, 'tasks': str(builtin_dir('tasks')),"
            " 'card': card.name, 'routers': get_registry('router').names()}))\n")
    # the wheel's copy shadows the editable checkout: run from a neutral directory
    env = {**os.environ, "PYTHONPATH": str(target)}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            env=env, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    info = json.loads(result.stdout)
    assert info["package"].startswith(str(target))
    assert info["tasks"].startswith(str(target))
    assert info["card"] == "routerbench"
    assert {"knn", "oracle", "random"} <= set(info["routers"])
