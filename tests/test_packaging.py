"""The wheel carries every built-in plugin, task card and the embedded data it may
redistribute (and no RouterDC data); CI runs the README's commands; the test tiers."""

from __future__ import annotations

import json
import os
import re
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
    from routeharness.plugins.host import DEFAULT_PLUGINS

    names = zipfile.ZipFile(wheel).namelist()
    for module in DEFAULT_PLUGINS:
        assert f"{module}/__init__.py" in names, module
    cards = sorted(p.name for p in (ROOT / "tasks").glob("*.yaml"))
    for card in cards:
        assert f"routeharness/_builtin/tasks/{card}" in names
    assert "routeharness_routerbench/data/routerbench.parquet" in names
    # the embeddings shipped with it (a seed of the embedding cache): all three files
    seed = [n for n in names if n.startswith("routeharness_routerbench/data/embeddings/v2/")]
    assert sorted(n.rsplit("/", 1)[1] for n in seed) == [
        "shard-routerbench.json", "shard-routerbench.keys.npy", "shard-routerbench.vectors.zlib"]
    assert not any(n.startswith(("tests/", "plugins/")) for n in names)
    # licences: alpacaeval (CC BY-NC 4.0) only with its licence beside it; routerdc's data
    # (no licence upstream) never
    assert "routeharness_texttasks/data/alpacaeval.parquet" in names
    assert "routeharness_texttasks/data/alpacaeval.LICENSE.md" in names
    # (a board's submission of the router named routerdc is a result file, not the data)
    assert not [n for n in names if "routerdc" in n and n.endswith(
        (".parquet", ".json", ".jsonl", ".csv", ".arrow"))
        and not n.startswith("routeharness/_builtin/leaderboards/")]
    assert "twine" in zipfile.ZipFile(wheel).read(
        next(n for n in names if n.endswith(".dist-info/METADATA"))).decode("utf-8")


def test_installed_wheel_finds_plugins_and_cards(wheel: Path, tmp_path: Path):
    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target",
                    str(target), str(wheel)], check=True, capture_output=True)
    code = ("import json, routeharness\n"
            "from routeharness.plugins.registry import get_registry\n"
            "from routeharness.common.resources import builtin_dir\n"
            "from routeharness.data.tasks import load_card\n"
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
    assert {"knn", "random", "best-single"} <= set(info["routers"])


def _readme_commands() -> list[str]:
    readme = (ROOT / "README.md").read_text("utf-8")
    return [line for block in re.findall(r"```bash\n(.*?)```", readme, flags=re.S)
            for line in block.splitlines()]


def test_ci_runs_the_readme_commands_and_fails_on_any_pytest_failure():
    ci = (ROOT / ".ci" / "run").read_text("utf-8").splitlines()
    commands = [line for line in ci if line.strip() and not line.startswith("#")]
    assert "set -euo pipefail" in commands
    # the leaderboard check runs after the install, before the tests (pytest stays last)
    verify = [i for i, c in enumerate(commands) if c.endswith(".ci/verify_submissions")]
    assert verify == [len(commands) - 2], commands
    commands = commands[:verify[0]] + commands[verify[0] + 1:]
    # the README's first command, step by step (pip's -q aside), then its test command
    first = _readme_commands()[0].split(" && ")
    assert [c.replace(" -q", "") for c in commands[-4:-1]] == first[:3]
    assert commands[-1] == _readme_commands()[2] == ".venv/bin/python -m pytest"
    # pytest's status is CI's: nothing may mask exit 5 (no tests collected)
    assert not any("||" in c or "; true" in c or "$?" in c for c in commands)


def test_the_fast_tier_has_no_subprocess_or_model_tests():
    """`pytest -m fast` collects the pure tests of the fast files and none that use the
    CLI subprocess, a model or pip (conftest.NOT_FAST_FIXTURES)."""
    # a module that fails to import is another test's failure, not the tier's
    result = subprocess.run([sys.executable, "-m", "pytest", "-m", "fast", "--collect-only",
                             "-q", "-p", "no:cacheprovider", "--continue-on-collection-errors"],
                            capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert re.search(r"\d+/\d+ tests collected", result.stdout), result.stdout[-2000:]
    collected = [line for line in result.stdout.splitlines() if "::" in line]
    files = {line.split("::")[0].split("/")[-1] for line in collected}
    assert {"test_metrics.py", "test_data.py", "test_bad_data.py", "test_plugins.py",
            "test_conformance.py"} <= files
    assert not files & {"test_cli.py", "test_knn.py", "test_routers_learned.py",
                        "test_packaging.py", "test_example_plugin.py"}
    names = " ".join(collected)
    for slow in ("test_the_real_cli_rejects_bad_files", "test_registered_router_conforms",
                 "test_the_default_encoder_conforms", "test_installed_plugin"):
        assert slow not in names
    assert "test_each_check_catches_its_fault" in names  # the mutant kit is fast


def test_listed_tests_run_on_one_torch_thread():
    """conftest's autouse fixture runs ONE_TORCH_THREAD_TESTS (this one among them) on one
    torch thread; every name listed there is a test that exists."""
    import ast

    import torch
    from conftest import ONE_TORCH_THREAD_TESTS

    assert torch.get_num_threads() == 1
    for listed in ONE_TORCH_THREAD_TESTS:
        filename, name = listed.split("::")
        tree = ast.parse((ROOT / "tests" / filename).read_text("utf-8"))
        assert name in {node.name for node in ast.walk(tree)
                        if isinstance(node, ast.FunctionDef)}, listed


def test_ci_runs_the_suite_under_a_long_path():
    """.ci/run runs the suite from a clone under a path of 150+ characters, TMPDIR too
    (``ROUTEHARNESS_CI_INNER`` is set there), so a test that depends on a path's length
    fails in CI rather than on a user's machine."""
    import tempfile

    text = (ROOT / ".ci" / "run").read_text("utf-8")
    assert "(( ${#long} < 150 ))" in text and 'TMPDIR="$long/tmp"' in text
    if os.environ.get("ROUTEHARNESS_CI_INNER"):
        assert len(str(ROOT.parent)) >= 150 and len(tempfile.gettempdir()) >= 150
