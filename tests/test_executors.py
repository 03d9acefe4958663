"""The executors: a matrix run on a real local Ray cluster gives the same records as the
local executor (every number, every seed), resumes from a checkpoint, runs the studies'
runs, carries a worker's one-line error back, and the default path never imports Ray."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import types
from pathlib import Path

import numpy as np
import pytest

from routeharness import SELECTION, BaseRouter, hookimpl
from routeharness.cli._app import main
from routeharness.common.errors import RouteHarnessError
from routeharness.evaluation.executors import (
    EXECUTORS,
    LocalExecutor,
    PreparedTexts,
    RayExecutor,
    get_executor,
)
from routeharness.evaluation.matrix import evaluate
from routeharness.evaluation.protocol import Protocol
from routeharness.plugins.host import get_host, reset_plugin_manager

ray = pytest.importorskip("ray")

ROUTERS = ["knn", "linear", "mlp"]
PROTOCOL = Protocol(seeds=(0, 1), n_bootstrap=20)


@pytest.fixture(scope="module")
def synth(tmp_path_factory) -> str:
    """A small synthetic task with its own vectors (``data synth``)."""
    out = tmp_path_factory.mktemp("executors") / "synth"
    try:
        main(["data", "synth", str(out), "--train", "150", "--validation", "60", "--test",
              "60", "--models", "3", "--clusters", "4", "--dim", "8", "--locality", "0.7"])
    except SystemExit as exc:
        assert not exc.code
    return str(out)


@pytest.fixture(scope="module", autouse=True)
def _short_ray_folder():
    """Ray's session folder (RAY_TMPDIR, else TMPDIR) in a short temporary folder: the
    paths of its sockets must fit in AF_UNIX's 107 bytes, and TMPDIR (a CI checkout's,
    pytest's) may be long. Subprocesses started here inherit it."""
    folder = tempfile.mkdtemp(prefix="rh-ray-", dir="/tmp")
    before = os.environ.get("RAY_TMPDIR")
    os.environ["RAY_TMPDIR"] = folder
    try:
        yield folder
    finally:
        if before is None:
            os.environ.pop("RAY_TMPDIR", None)
        else:
            os.environ["RAY_TMPDIR"] = before
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="module")
def on_ray():
    """One local Ray cluster (2 CPUs) for the module."""
    with RayExecutor(num_cpus=2) as executor:
        executor.start()
        yield executor


def _numbers(result) -> tuple[list, dict]:
    """Every record without its wall times, and the task references."""
    data = result.to_dict() if hasattr(result, "to_dict") else result
    records = [{k: v for k, v in r.items() if k != "timings"} for r in data["records"]]
    return records, data["tasks"]


def _run(synth: str, executor, **kwargs):
    return evaluate(ROUTERS, [synth], encoder="precomputed", protocol=PROTOCOL,
                    executor=executor, **kwargs)


@pytest.fixture(scope="module")
def local_run(synth, tmp_path_factory):
    """The local executor's result, and the checkpoint it saved after every run."""
    checkpoint = tmp_path_factory.mktemp("local") / "run.json.partial"
    result = _run(synth, LocalExecutor(), checkpoint=checkpoint)
    return result, json.loads(checkpoint.read_text("utf-8"))


@pytest.fixture(scope="module")
def local_result(local_run):
    return local_run[0]


def test_ray_gives_the_local_executors_numbers_in_the_same_order(synth, on_ray, local_result):
    on_ray_result = _run(synth, on_ray)
    local_records, local_tasks = _numbers(local_result)
    ray_records, ray_tasks = _numbers(on_ray_result)
    assert [(r["router"], r["seed"]) for r in ray_records] == \
        [(r["router"], r["seed"]) for r in local_records]
    assert len(local_records) == 2 * (len(ROUTERS) + 2)  # with best-single and random
    assert ray_records == local_records
    assert ray_tasks == local_tasks
    # the runs tuned: every configuration of every grid was scored on Ray too
    tuned = [r for r in ray_records if r["router"] == "knn"]
    assert tuned and all(len(r["tuning"]) > 1 for r in tuned)


def test_ray_tunes_on_groups_with_the_local_executors_picks(synth, on_ray):
    # tuning on held-out groups (4 clusters, one group each) and the tie rule: the same
    # configurations scored, the same winners, the same numbers
    from dataclasses import replace

    protocol = replace(PROTOCOL, tune_on="groups")
    here = evaluate(["knn", "linear"], [synth], encoder="precomputed", protocol=protocol,
                    references=False, executor=LocalExecutor())
    there = evaluate(["knn", "linear"], [synth], encoder="precomputed", protocol=protocol,
                     references=False, executor=on_ray)
    assert _numbers(there) == _numbers(here)
    assert here.protocol.tune_on == there.protocol.tune_on == "groups"
    picks = [(r.router, r.seed, r.params) for r in here.records]
    assert picks == [(r.router, r.seed, r.params) for r in there.records]
    for record in there.records:
        assert len(record.tuning) > 1 and sum(bool(row.chosen) for row in record.tuning) == 1


def test_ray_resumes_a_checkpoint_and_runs_only_the_rest(synth, on_ray, local_run, tmp_path):
    local_result, saved = local_run
    checkpoint = tmp_path / "run.json.partial"
    kept = [r for r in saved["records"] if r["seed"] == 0]
    assert 0 < len(kept) < len(saved["records"])
    checkpoint.write_text(json.dumps({**saved, "records": kept}), encoding="utf-8")
    resumed = _run(synth, on_ray, checkpoint=checkpoint, resume=True)
    assert _numbers(resumed) == _numbers(local_result)
    records = resumed.to_dict()["records"]
    # the seed-0 records are the saved ones, wall times included: they were not re-run
    by_key = {(r["router"], r["seed"]): r for r in records}
    for record in kept:
        assert by_key[(record["router"], 0)]["timings"] == record["timings"]


def test_studies_run_on_ray_with_the_same_choices(synth, on_ray):
    from routeharness.study.runs import comparison, prepare, run_all, subsample_train

    _, embedded = prepare([synth], "precomputed")
    _, plans, _ = comparison(["linear"])
    sub = subsample_train(embedded[0], 0.5, 0)
    from routeharness.common.progress import Reporter

    here = run_all(plans, sub, PROTOCOL, Reporter(), "local")
    there = run_all(plans, sub, PROTOCOL, Reporter(), "ray", executor=on_ray)
    assert list(here) == list(there)  # in the same order, whichever finished first
    for key in here:
        np.testing.assert_array_equal(here[key].choices, there[key].choices)
        assert here[key].record.metrics == there[key].record.metrics


def test_a_one_line_error_in_a_worker_comes_back_as_one(synth, on_ray):
    # knn refuses k < 1 in fit: a fixed parameter refused is a RouteHarnessError
    with pytest.raises(RouteHarnessError, match=r"router 'knn:k=-1'.*fixed.*k must be >= 1"):
        evaluate(["knn:k=-1"], [synth], encoder="precomputed", protocol=PROTOCOL,
                 references=False, executor=on_ray)


def test_prepared_texts_serve_known_texts_and_refuse_others():
    texts = PreparedTexts({"a": np.ones(3, np.float32), "b": np.zeros(3, np.float32)})
    np.testing.assert_array_equal(texts(["b", "a"]), [[0, 0, 0], [1, 1, 1]])
    with pytest.raises(RouteHarnessError, match=r"'c'.*--executor local"):
        texts(["a", "c"])


def test_executor_names_and_bad_choices():
    from routeharness.cli._app import EXECUTOR_NAMES

    assert EXECUTOR_NAMES == EXECUTORS
    assert isinstance(get_executor("local"), LocalExecutor)
    assert isinstance(get_executor("ray", "auto"), RayExecutor)
    with pytest.raises(RouteHarnessError, match="--address is for --executor ray"):
        get_executor("local", "10.0.0.1:6379")
    with pytest.raises(RouteHarnessError, match="unknown executor 'dask'"):
        get_executor("dask")


def test_the_default_path_never_imports_ray(synth):
    code = ("import sys; from routeharness.evaluation.matrix import evaluate, Protocol; "
            f"evaluate(['knn'], [{synth!r}], encoder='precomputed', "
            "protocol=Protocol(n_bootstrap=0)); "
            "print('ray' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "False"


@pytest.mark.slow
def test_the_cli_on_ray_writes_the_local_json(synth, cli, tmp_path):
    outputs = {}
    for name in ("local", "ray"):
        out = tmp_path / f"{name}.json"
        done = cli("eval", *[a for r in ROUTERS for a in ("-r", r)], "-t", synth,
                   "-e", "precomputed", "--seeds", "0,1", "--bootstrap", "20", "-o", str(out),
                   "-q", "--executor", name)
        assert done.returncode == 0, done.stderr[-2000:]
        outputs[name] = json.loads(Path(out).read_text("utf-8"))
    assert _numbers(outputs["ray"]) == _numbers(outputs["local"])
    done = cli("eval", "-r", "knn", "-t", synth, "-e", "precomputed", "-q",
               "--address", "127.0.0.1:1", "-o", str(tmp_path / "x.json"))
    assert done.returncode != 0
    assert done.stderr.strip().splitlines()[-1] == "Error: --address is for --executor ray"
    assert not (tmp_path / "x.json").exists()


class CrashOnce(BaseRouter):
    """Nearest-centroid-free test router: the cheapest model that is right most often;
    its first fit anywhere kills the process it runs in (a worker dying mid-run)."""

    kind = SELECTION
    param_grid = {"margin": [0.0, 0.5]}

    def __init__(self, marker: str = "", margin: float = 0.0, random_state=None):
        self.marker, self.margin, self.random_state = marker, margin, random_state

    def fit(self, X, outcomes):
        if self.marker and not os.path.exists(self.marker):
            Path(self.marker).write_text("crashed once", encoding="utf-8")
            os._exit(3)  # the worker dies: no exception, no cleanup
        quality = np.nanmean(outcomes.scores, axis=0) - self.margin * np.nanmean(
            outcomes.costs, axis=0)
        self.model_index_ = int(np.argmax(quality))
        return self

    def route(self, X, lam, groups=None):
        self._check_fitted()
        return np.full(len(X), self.model_index_)


@pytest.fixture
def crash_once():
    """Registers ``crash-once`` in this process (Ray's workers import it from here)."""
    module = types.ModuleType("crash_once_plugin")
    module.register_routers = hookimpl(
        lambda register: register(name="crash-once", target=CrashOnce, description="test"))
    reset_plugin_manager()
    get_host().add(module, "crash-once-test")
    yield "crash-once"
    reset_plugin_manager()


@pytest.mark.slow
def test_a_worker_that_dies_is_retried_and_nothing_is_lost(synth, crash_once, tmp_path,
                                                           monkeypatch):
    # Ray's workers import the router's module as an installed plugin's: here, this file
    here_dir = str(Path(__file__).parent)
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [
        here_dir, os.environ.get("PYTHONPATH")])))
    marker = tmp_path / "crashed"
    spec = f"crash-once:marker={marker}"
    with RayExecutor(num_cpus=2) as executor:
        on_ray = evaluate([spec, "knn"], [synth], encoder="precomputed", protocol=PROTOCOL,
                          executor=executor)
    assert marker.read_text("utf-8") == "crashed once"  # a worker did die
    here = evaluate([spec, "knn"], [synth], encoder="precomputed", protocol=PROTOCOL)
    assert _numbers(on_ray) == _numbers(here)


# --- faults (issue 18): an unreachable cluster, SIGTERM mid-run ------------------------------
def test_an_unreachable_address_is_one_line_before_any_work(synth, cli, tmp_path):
    """Ray retries an address nothing listens at forever, printing its own lines; the
    harness checks it first and stops in one line, before loading the task."""
    import time

    started = time.monotonic()
    done = cli("eval", "-r", "knn", "-t", synth, "-e", "precomputed", "--executor", "ray",
               "--address", "127.0.0.1:1", "-o", str(tmp_path / "r.json"), timeout=60)
    assert done.returncode == 1 and time.monotonic() - started < 30
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert lines == [lines[-1]] and "cannot reach a Ray cluster at 127.0.0.1:1" in lines[-1]
    assert "loading task" not in done.stderr and not (tmp_path / "r.json.partial").exists()


def _ray_processes() -> set[int]:
    """The pids of Ray's cluster processes on this machine (raylet, GCS, workers)."""
    found = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ")
        except OSError:
            continue
        if any(word in cmdline for word in (b"raylet", b"gcs_server", b"ray::",
                                            b"default_worker.py", b"dashboard/agent.py")):
            found.add(int(entry.name))
    return found


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc").is_dir(), reason="reads /proc")
def test_sigterm_stops_a_ray_driver_in_order_and_resume_finishes(synth, tmp_path):
    """SIGTERM to `eval --executor ray` mid-run: exit 143 with one line, the local
    cluster shut down (no Ray process of its own left), the checkpoint kept; the same
    command with --resume reuses it and finishes."""
    import signal
    import time

    before = _ray_processes()
    out = tmp_path / "r.json"
    args = [sys.executable, "-m", "routeharness", "eval", "-r", "mlp", "-r", "knn", "-t",
            synth, "-e", "precomputed", "--executor", "ray", "--seeds", "0,1,2", "-o",
            str(out)]
    driver = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 240
    partial = Path(f"{out}.partial")
    while not partial.exists() and driver.poll() is None and time.monotonic() < deadline:
        time.sleep(0.5)
    assert driver.poll() is None, "the run finished before it could be interrupted"
    driver.send_signal(signal.SIGTERM)
    _, err = driver.communicate(timeout=120)
    assert driver.returncode == 143, err
    assert err.rstrip().splitlines()[-1] == "Terminated." and "Traceback" not in err
    time.sleep(2)
    assert not _ray_processes() - before, "Ray processes left behind"
    assert partial.exists()
    done = subprocess.run([*args, "--resume"], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    assert "reused from" in done.stderr and out.exists() and not partial.exists()
