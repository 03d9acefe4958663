"""Shared fixtures: the real data beside the checkout, a session embedding cache, the CLI."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
SHARED_DATA = Path(os.environ.get("ROUTEHARNESS_SHARED_DATA", ROOT.parent / "shared" / "data"))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """../shared/data: the real routing data mirrored beside the checkout (CI has it)."""
    if not SHARED_DATA.is_dir():
        pytest.fail(f"real data not found at {SHARED_DATA}; set ROUTEHARNESS_SHARED_DATA")
    return SHARED_DATA


@pytest.fixture(scope="session")
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One embedding cache for the whole session, so each text is encoded once."""
    path = tmp_path_factory.mktemp("embedding-cache")
    os.environ["ROUTEHARNESS_CACHE"] = str(path)
    return path


@pytest.fixture(scope="session")
def minilm():
    """The real default encoder (all-MiniLM-L6-v2 from its PyPI package)."""
    from routeharness.encoders import get_encoder

    return get_encoder("minilm")


@pytest.fixture(scope="session")
def routerbench_embedded():
    """The RouterBench task from the copy embedded in the package."""
    from routeharness.tasks import load_task

    return load_task("routerbench")


def run_cli(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None,
            timeout: float = 600) -> subprocess.CompletedProcess:
    """The real CLI in a subprocess (``python -m routeharness``)."""
    full_env = {**os.environ, **(env or {})}
    return subprocess.run([sys.executable, "-m", "routeharness", *args], capture_output=True,
                          text=True, env=full_env, cwd=cwd, timeout=timeout)


@pytest.fixture
def cli():
    return run_cli


@dataclass
class RoutingProblem:
    """A task with its embeddings and the training outcomes a router fits on."""

    task: Any
    X: dict[str, Any]
    train: Any
    test: Any


@pytest.fixture(scope="session")
def mbpp(cache_dir, minilm) -> RoutingProblem:
    """RouterBench's MBPP group (269 train / 128 test prompts), embedded with MiniLM."""
    from routeharness import metrics
    from routeharness.embedding import embed_task
    from routeharness.encoders import EmbeddingCache
    from routeharness.progress import Reporter
    from routeharness.tasks import load_task

    task = load_task("routerbench:mbpp")
    embedded = embed_task(task, minilm, EmbeddingCache(cache_dir), Reporter())
    train = task.splits["train"]
    outcomes = train.outcomes(metrics.cost_scale(train.costs), task.group_descriptions,
                              embedded.encode_text, embedded.encoder_path)
    return RoutingProblem(task, embedded.X, outcomes, task.splits["test"])
