"""One throw-away install of the plugin distributions the tests use, shared by the test
modules that need it (test_plugins.py, test_example_plugin.py).

``pip install --no-deps --target DIR`` into a session temporary directory, never into the
running environment; a subprocess sees the plugins by having DIR on its ``PYTHONPATH``
(``env_with``). Installed once per test process: pip builds three wheels, seconds each.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PLUGIN_DIR = ROOT / "tests" / "plugins"
EXAMPLE = ROOT / "examples" / "routeharness-nearest-centroid"
DISTRIBUTIONS = (PLUGIN_DIR / "routeharness-tiny", PLUGIN_DIR / "routeharness-broken", EXAMPLE)

_site: Path | None = None


def plugin_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The directory the test plugin distributions are installed into (once per process)."""
    global _site
    if _site is None:
        target = tmp_path_factory.mktemp("plugin-site")
        done = subprocess.run(
            [sys.executable, "-m", "pip", "install", "-q", "--disable-pip-version-check",
             "--no-deps", "--no-build-isolation", "--no-index", "--target", str(target),
             *map(str, DISTRIBUTIONS)],
            capture_output=True, text=True, timeout=600)
        if done.returncode != 0:
            pytest.fail(f"pip install --target failed: {done.stderr[-2000:]}")
        _site = target
    return _site


def env_with(site: Path) -> dict[str, str]:
    """Environment for a subprocess that sees the plugins installed in ``site``."""
    path = [str(site), *filter(None, [os.environ.get("PYTHONPATH")])]
    return {"PYTHONPATH": os.pathsep.join(path)}
