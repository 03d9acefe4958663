"""Shared fixtures: the real data beside the checkout, a session embedding cache, the CLI;
and the test tiers: the ``fast`` marker (``pytest -m fast``, see CONTRIBUTING.md)."""

from __future__ import annotations

import fnmatch
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
SHARED_DATA = Path(os.environ.get("ROUTEHARNESS_SHARED_DATA", ROOT.parent / "shared" / "data"))

# --- the fast tier ------------------------------------------------------------------------
#: files whose tests are pure logic, data and registry checks (metrics, datasets, plugins,
#: the conformance kit's mutants); their tests are marked ``fast`` unless excluded below
FAST_FILES = {"test_metrics.py", "test_data.py", "test_bad_data.py", "test_plugins.py",
              "test_conformance.py", "test_licences.py", "test_docs_snippets.py"}
#: files other engineers add for the data path, the cache, typed records, the card and
#: mapping schema and the plugin boundary: fast by their names
FAST_PATTERNS = ("test_data_*.py", "test_cache.py", "test_records*.py", "test_schema*.py",
                 "test_plugin_boundary.py", "test_eval_*.py", "test_architecture.py",
                 "test_leaderboard_integrity.py", "test_study_stats.py",
                 "test_study_locality.py", "test_study_api.py", "test_lexical_encoder.py",
                 "test_assemble_mpnet.py", "test_study_report.py")
#: fixtures that spawn a subprocess (the CLI, pip) or load a model: a test using one is
#: never fast, whatever its file
NOT_FAST_FIXTURES = {"cli", "minilm", "mbpp", "installed_plugins", "wheel", "fitted"}
#: tests in fast files that load a model, start a Python subprocess or take seconds on
#: their own (measured with ``--durations``): the conformance kit run on every registered
#: router (learned routers train networks, some load a transformer), the default
#: encoder's kit run, concurrent cache writers (three processes) and the import-cost probe
NOT_FAST_TESTS = {"test_conformance.py::test_registered_router_conforms",
                  "test_conformance.py::test_the_default_encoder_conforms",
                  "test_cache.py::test_concurrent_writers_never_corrupt_the_store",
                  "test_plugin_boundary.py::test_import_routeharness_is_instant_and_light"}


def is_fast(item: pytest.Item) -> bool:
    """Whether a collected test belongs to the fast tier (see FAST_FILES)."""
    filename = item.path.name
    if filename not in FAST_FILES and not any(fnmatch.fnmatch(filename, pattern)
                                              for pattern in FAST_PATTERNS):
        return False
    if NOT_FAST_FIXTURES.intersection(getattr(item, "fixturenames", ())):
        return False
    name = getattr(item, "originalname", None) or item.name
    return f"{filename}::{name}" not in NOT_FAST_TESTS and item.get_closest_marker("slow") is None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if is_fast(item):
            item.add_marker(pytest.mark.fast)


#: tests that train a torch network on a busy machine: one intra-op thread, as
#: ``routeharness.routers.base.one_torch_thread`` does for fits elsewhere (RouterDC's fine-tuning
#: test: 173 s with every thread spinning on 2 shared cores, 30 s with one)
ONE_TORCH_THREAD_TESTS = {"test_routers_learned.py::test_routerdc_finetunes_its_text_encoder",
                          "test_packaging.py::test_listed_tests_run_on_one_torch_thread"}


@pytest.fixture(autouse=True)
def _one_torch_thread_where_listed(request: pytest.FixtureRequest):
    item = request.node
    name = getattr(item, "originalname", None) or item.name
    if f"{item.path.name}::{name}" not in ONE_TORCH_THREAD_TESTS:
        yield
        return
    from routeharness.routers.base import one_torch_thread

    with one_torch_thread():
        yield


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
    from routeharness.embedding.encoders import get_encoder

    return get_encoder("minilm")


@pytest.fixture(scope="session")
def routerbench_embedded():
    """The RouterBench task from the copy embedded in the package."""
    from routeharness.data.tasks import load_task

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
    from routeharness.common.progress import Reporter
    from routeharness.data.tasks import load_task
    from routeharness.embedding.cache import EmbeddingCache
    from routeharness.embedding.embed import embed_task
    from routeharness.evaluation import metrics

    task = load_task("routerbench:mbpp")
    embedded = embed_task(task, minilm, EmbeddingCache(cache_dir), Reporter())
    train = task.splits["train"]
    outcomes = train.outcomes(metrics.cost_scale(train.costs), task.group_descriptions,
                              embedded.encode_text, embedded.encoder_path)
    return RoutingProblem(task, embedded.X, outcomes, task.splits["test"])
