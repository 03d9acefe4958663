"""The saved router and ``update`` against hostile use (issue 18): concurrent writers and
readers, kills at any instant, symlinks, edited or reordered files, manifests out of
range, update files that do not match the router. Kills and concurrency are real
processes (``routeharness update`` in a subprocess, killed with SIGKILL), never mocks.

Each test names the class of fault it covers: data loss, silent acceptance, traceback,
false reject.
"""

from __future__ import annotations

import csv
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest

from routeharness.common.errors import RouteHarnessError

N_TRAIN, DIM = 120, 8


@pytest.fixture(scope="module")
def synth(tmp_path_factory) -> Path:
    from routeharness.cli._app import main

    out = tmp_path_factory.mktemp("hostile") / "synth"
    try:
        main(["data", "synth", str(out), "--train", str(N_TRAIN), "--validation", "40",
              "--test", "60", "--models", "3", "--clusters", "4", "--dim", str(DIM),
              "--locality", "0.8"])
    except SystemExit as exc:
        assert not exc.code
    return out


@pytest.fixture(scope="module")
def fitted(synth, tmp_path_factory) -> Path:
    """A kNN router fitted on synth's own vectors, saved once; tests work on copies."""
    from routeharness.deploy import saved

    folder = tmp_path_factory.mktemp("fitted") / "knn"
    saved.save(saved.fit("knn:k=5", str(synth), encoder="precomputed", tune=False), folder)
    return folder


def _copy(fitted: Path, where: Path, name: str = "router") -> Path:
    where.mkdir(parents=True, exist_ok=True)
    return Path(shutil.copytree(fitted, where / name))


def _test_split(synth: Path):
    from routeharness.data.readers import load_path

    return load_path(synth).splits["test"]


def _outcomes(synth: Path, path: Path, rows, *, prefix: str = "new-", ids=None,
              prompts=None, groups=None, vectors=None, models=None, blank=(),
              with_vectors: bool = True) -> Path:
    """Rows of synth's test split as a CSV of new outcomes (ids ``prefix`` + the test id,
    or ``ids``); ``prompts``/``groups``/``vectors`` override those columns; ``blank``:
    rows (positions) whose every outcome cell is empty."""
    test = _test_split(synth)
    models = models or test.model_names
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "prompt", "group",
                         *(f"{k}:{m}" for m in models for k in ("score", "cost")),
                         *(["embedding"] if with_vectors else [])])
        for at, i in enumerate(rows):
            cells = [ids[at] if ids else f"{prefix}{test.ids[i]}",
                     prompts[at] if prompts else test.prompts[i],
                     groups[at] if groups else test.groups[i]]
            for m in models:
                j = test.model_names.index(m)
                cells += ["", ""] if at in blank else [test.scores[i, j], test.costs[i, j]]
            if with_vectors:
                vector = vectors[at] if vectors is not None else test.embeddings[i]
                cells.append(json.dumps(np.asarray(vector, float).tolist()))
            writer.writerow(cells)
    return path


def _env() -> dict[str, str]:
    return dict(os.environ)


#: ``routeharness update`` swapping in two renames, as where there is no exchange
TWO_RENAMES = ("import sys, routeharness.common.folders as f; f.USE_EXCHANGE = False; "
               "from routeharness.cli._app import main; main(sys.argv[1:])")


def _update_process(folder: Path, outcomes: Path, *extra: str,
                    two_renames: bool = False) -> subprocess.Popen:
    command = ["-c", TWO_RENAMES] if two_renames else ["-m", "routeharness"]
    return subprocess.Popen([sys.executable, *command, "update", str(folder), str(outcomes),
                             *extra], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=_env())


def _raw_n_train(folder: Path) -> int | None:
    """training.n_train as the folder's manifest says now (read directly: no recovery)."""
    try:
        return json.loads((folder / "manifest.json").read_text("utf-8"))["training"]["n_train"]
    except (OSError, ValueError, KeyError):
        return None


def _beside(folder: Path) -> list[str]:
    """What lies beside the router folder other than itself."""
    return sorted(name for name in os.listdir(folder.parent) if name != folder.name)


# --- data loss: concurrency -----------------------------------------------------------------
@pytest.mark.parametrize("two_renames", [False, True], ids=["exchange", "two-renames"])
def test_concurrent_updates_all_land_and_readers_see_whole_folders(synth, fitted, tmp_path,
                                                                   two_renames):
    """Data loss: N updates of one router at once, each with its own new prompts, all land
    (none lost, none refused), and a reader loading meanwhile sees whole folders only
    (with two renames, it waits out the instant the folder is missing)."""
    from routeharness.deploy import saved

    folder = _copy(fitted, tmp_path / "home")
    n, each = 4, 8
    files = [_outcomes(synth, tmp_path / f"new{w}.csv", range(w * each, (w + 1) * each),
                       prefix=f"w{w}-") for w in range(n)]
    seen: list[int] = []
    problems: list[str] = []
    stop = threading.Event()

    def read() -> None:
        while not stop.is_set():
            try:
                seen.append(saved.load(folder).manifest.training.n_train)
            except Exception as exc:  # every failure is the finding
                problems.append(f"{type(exc).__name__}: {exc}")

    reader = threading.Thread(target=read)
    reader.start()
    try:
        procs = [_update_process(folder, path, two_renames=two_renames) for path in files]
        results = [(p.wait(timeout=300), p.stderr.read()) for p in procs]
    finally:
        stop.set()
        reader.join()
    assert all(code == 0 for code, _ in results), results
    loaded = saved.load(folder)
    assert loaded.manifest.training.n_train == N_TRAIN + n * each
    assert len(loaded.manifest.updates) == n
    ids = set(loaded.rows.ids)
    test = _test_split(synth)
    for w in range(n):
        assert {f"w{w}-{test.ids[i]}" for i in range(w * each, (w + 1) * each)} <= ids
    assert not problems, problems[:3]
    assert seen and set(seen) <= {N_TRAIN + k * each for k in range(n + 1)}
    assert _beside(folder) == []


def test_a_second_writer_waits_for_the_lock_then_is_refused_in_one_line(synth, fitted,
                                                                       tmp_path, cli):
    """Data loss: while another process holds the router's lock (an flock on
    ``.<name>.lock`` beside the folder), update waits --wait seconds and is refused in
    one line; nothing is written."""
    import fcntl

    folder = _copy(fitted, tmp_path / "home")
    new = _outcomes(synth, tmp_path / "new.csv", range(3))
    before = (folder / "manifest.json").read_bytes()
    lock = folder.parent / ".router.lock"
    with lock.open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        handle.write("4242\n")
        handle.flush()
        start = time.monotonic()
        done = cli("update", str(folder), str(new), "--wait", "1")
        waited = time.monotonic() - start
    assert done.returncode == 1 and waited >= 1, done.stderr
    assert done.stderr.strip().splitlines() == [
        f"Error: {folder}: another process (process 4242) is updating this saved router; "
        "waited 1 s (try again, or give --wait SECONDS)"]
    assert (folder / "manifest.json").read_bytes() == before
    done = cli("update", str(folder), str(new))  # a lock file left by a dead holder: taken
    assert done.returncode == 0, done.stderr
    assert _beside(folder) == []


# --- data loss: kills -----------------------------------------------------------------------
def _references(synth: Path, fitted: Path, tmp_path: Path, new: Path):
    """The old and the new router's predictions for the new prompts (which differ)."""
    from routeharness.deploy import saved
    from routeharness.deploy.update import update

    test = _test_split(synth)
    probe = test.embeddings[:10]
    old = saved.load(fitted).route_vectors(probe, 0.0).scores
    ref = _copy(fitted, tmp_path / "reference")
    update(ref, new)
    new_scores = saved.load(ref).route_vectors(probe, 0.0).scores
    assert not np.array_equal(old, new_scores)
    prompts = tmp_path / "probe.jsonl"
    prompts.write_text("".join(json.dumps({"prompt": test.prompts[i],
                                           "embedding": test.embeddings[i].tolist()}) + "\n"
                               for i in range(10)), encoding="utf-8")
    return probe, prompts, {N_TRAIN: old, N_TRAIN + 10: new_scores}


def _where(folder: Path, killed: bool) -> str:
    """Where a kill landed, from what it left (read before any command runs)."""
    n_train = _raw_n_train(folder)
    beside = _beside(folder)
    swaps = any(".swap-" in name for name in beside)
    locked = any(name.endswith(".lock") for name in beside)
    if not killed:
        return "finished before the kill"
    if n_train is None:
        return "during the swap: between the two renames (folder missing)"
    if n_train == N_TRAIN:
        if swaps:
            return "before the swap: new folder being built"
        return "before the swap: lock taken" if locked else "before the swap: starting"
    if swaps:
        return "after the swap: old folder not yet removed"
    return "after the swap: lock not yet released" if locked else "after the swap: exiting"


def _next_command_routes(folder: Path, prompts: Path, probe, wanted, capsys) -> None:
    """``route`` (the CLI's code, in this process) works on the folder, which is the old
    or the new router, and leaves nothing beside it."""
    from routeharness.cli._app import main
    from routeharness.deploy import saved

    capsys.readouterr()
    try:
        main(["route", str(folder), "--file", str(prompts), "--format", "jsonl"])
    except SystemExit as exc:
        assert not exc.code, capsys.readouterr().err
    routed = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert len(routed) == len(probe)
    assert _beside(folder) == [], _beside(folder)
    loaded = saved.load(folder)
    scores = loaded.route_vectors(probe, 0.0).scores
    n_train = loaded.manifest.training.n_train
    assert n_train in wanted and np.array_equal(scores, wanted[n_train])
    assert [r["model"] for r in routed] == [r["model"] for r in
                                            loaded.route_vectors(probe, 0.0).rows()]


#: kills through the swap's steps: the update, in a subprocess, SIGKILLs itself just
#: before its K-th call that changes the folder's parent (mkdir, rename, exchange, rmtree,
#: unlink); just after step K is just before step K + 1 on disk
KILL_DRIVER = r"""
import os, shutil, signal, sys
try:
    import routeharness.common.folders as folders
except ImportError:  # a checkout without it: its renames are still counted
    folders = None

folder, outcomes, kill_at, use_exchange = sys.argv[1:5]
kill_at, parent = int(kill_at), os.path.dirname(folder)
count = [0]

def step(fn):
    def wrapped(*args, **kwargs):
        if any(str(a).startswith(parent) for a in args):
            count[0] += 1
            if count[0] == kill_at:
                os.kill(os.getpid(), signal.SIGKILL)
        return fn(*args, **kwargs)
    return wrapped

os.mkdir, os.rename, os.replace = step(os.mkdir), step(os.rename), step(os.replace)
os.unlink, shutil.rmtree = step(os.unlink), step(shutil.rmtree)
if folders is not None:
    folders.USE_EXCHANGE = use_exchange == "1"
    folders.exchange = step(folders.exchange)
from routeharness.cli._app import main
main(["update", folder, outcomes])
"""


@pytest.mark.parametrize("use_exchange", [True, False], ids=["exchange", "two-renames"])
def test_update_killed_at_every_step_of_the_swap_leaves_old_or_new(
        synth, fitted, tmp_path, capsys, use_exchange):
    """Data loss: the update killed (SIGKILL) just before each step that changes the
    folder's parent (the two renames among them, where the old code left no router at
    the path), and after the last: the next command finds the old or the new router,
    and nothing left beside it. The exchange (Linux) and the two-rename swap (elsewhere)
    both."""
    new = _outcomes(synth, tmp_path / "new.csv", range(10))
    probe, prompts, wanted = _references(synth, fitted, tmp_path, new)
    driver = tmp_path / "driver.py"
    driver.write_text(KILL_DRIVER, encoding="utf-8")
    landed: Counter[str] = Counter()
    for kill_at in range(1, 50):
        folder = _copy(fitted, tmp_path / f"step{kill_at}")
        done = subprocess.run([sys.executable, str(driver), str(folder), str(new),
                               str(kill_at), "1" if use_exchange else "0"],
                              capture_output=True, text=True, env=_env(), timeout=300)
        killed = done.returncode == -signal.SIGKILL
        assert killed or done.returncode == 0, done.stderr[-2000:]
        landed[_where(folder, killed)] += 1
        _next_command_routes(folder, prompts, probe, wanted, capsys)
        if not killed:
            break
    with capsys.disabled():
        print(f"\nkills by step ({'exchange' if use_exchange else 'two renames'}):",
              dict(landed))
    # each step was hit: mkdir swap, mkdir new, exchange (which, without, says so and
    # changes nothing), [rename, rename,] rmtree, unlink
    assert sum(landed.values()) - 1 == (5 if use_exchange else 7), landed
    assert landed["before the swap: new folder being built"] >= 1
    assert landed["after the swap: old folder not yet removed"] == 1
    assert landed["after the swap: lock not yet released"] == 1
    if not use_exchange:
        assert landed["during the swap: between the two renames (folder missing)"] == 1


#: kill-anywhere: SIGKILLs at seeded random instants of a whole update's run
KILLS, KILL_SEED = 20, 20261207


def _timed_update(folder: Path, new: Path) -> tuple[float, float]:
    """A whole update's duration, and when its lock file appeared (its writing began)."""
    lock = folder.parent / f".{folder.name}.lock"
    start = time.monotonic()
    proc = _update_process(folder, new)
    locked = None
    while proc.poll() is None:
        if locked is None and lock.exists():
            locked = time.monotonic() - start
        time.sleep(0.001)
    assert proc.returncode == 0, proc.stderr.read()
    duration = time.monotonic() - start
    return duration, duration if locked is None else locked


def test_update_killed_at_random_instants_leaves_old_or_new(synth, fitted, tmp_path, capsys):
    """Data loss: ``routeharness update`` (a subprocess) SIGKILLed at 20 seeded random
    instants: half anywhere in a measured update's run (most land while Python starts),
    half in its writing part (from taking the lock to the end, where the swap is). After
    each the folder is the old or the new router (training size and routes compared
    with both), ``route`` works, and nothing is left beside the folder once it ran."""
    new = _outcomes(synth, tmp_path / "new.csv", range(10))
    probe, prompts, wanted = _references(synth, fitted, tmp_path, new)
    duration, locked = _timed_update(_copy(fitted, tmp_path / "timing"), new)
    rng = random.Random(KILL_SEED)
    landed: Counter[str] = Counter()
    for trial in range(KILLS):
        folder = _copy(fitted, tmp_path / f"kill{trial}")
        when = rng.uniform(0.0, duration) if trial % 2 else \
            rng.uniform(max(0.0, locked - 0.05), duration + 0.02)
        proc = _update_process(folder, new)
        time.sleep(when)
        proc.send_signal(signal.SIGKILL)
        code = proc.wait(timeout=300)
        landed[_where(folder, code == -signal.SIGKILL)] += 1
        _next_command_routes(folder, prompts, probe, wanted, capsys)
    with capsys.disabled():
        print(f"\n{KILLS} kills, an update taking {duration:.2f} s (lock at "
              f"{locked:.2f} s):", dict(landed))
    assert sum(landed.values()) == KILLS


# --- silent acceptance ----------------------------------------------------------------------
def test_update_through_a_symlink_updates_its_target_and_keeps_the_link(synth, fitted,
                                                                        tmp_path):
    """Silent acceptance: the link stays a link; the folder it points to is updated."""
    from routeharness.deploy import saved
    from routeharness.deploy.update import update

    target = _copy(fitted, tmp_path / "real")
    link = tmp_path / "links" / "router"
    link.parent.mkdir()
    link.symlink_to(Path("..") / "real" / "router")
    report = update(link, _outcomes(synth, tmp_path / "new.csv", range(5)))
    assert report.n_train == N_TRAIN + 5
    assert link.is_symlink() and link.resolve() == target.resolve()
    assert saved.load(target).manifest.training.n_train == N_TRAIN + 5
    assert saved.load(link).manifest.training.n_train == N_TRAIN + 5
    assert _beside(target) == [] and _beside(link) == []


def test_a_reordered_train_ids_is_refused(synth, fitted, tmp_path):
    """Silent acceptance: train_ids.json is hashed in the manifest, and the hash is
    checked: a reordered list would put a new model's outcomes in the wrong rows."""
    from routeharness.deploy import saved
    from routeharness.deploy.update import update

    folder = _copy(fitted, tmp_path / "home")
    path = folder / "train_ids.json"
    rows = json.loads(path.read_text("utf-8"))
    if isinstance(rows, list):  # (before rows kept groups and hashes)
        rows = rows[::-1]
    for key in rows if isinstance(rows, dict) else ():
        rows[key] = rows[key][::-1]
    path.write_text(json.dumps(rows), encoding="utf-8")
    with pytest.raises(RouteHarnessError, match=r"train_ids\.json: its sha256 is not the one"):
        saved.load(folder)
    new_model = _outcomes(synth, tmp_path / "m.csv", range(3), models=["m0"])
    with pytest.raises(RouteHarnessError, match=r"train_ids\.json: its sha256"):
        update(folder, new_model)


def _rewrite(folder: Path, edit, *, checksum: bool = True) -> Path:
    """The manifest edited by ``edit(data)``, its checksum recomputed (as a tool that
    writes a wrong manifest on purpose would); returns the manifest's path."""
    from routeharness.deploy import saved

    path = folder / "manifest.json"
    data = json.loads(path.read_text("utf-8"))
    edit(data)
    if checksum and hasattr(saved, "manifest_checksum"):
        data["checksum"] = saved.manifest_checksum(data)
    path.write_text(json.dumps(data, indent=1), encoding="utf-8")
    return path


def test_the_manifest_is_checksummed(fitted, tmp_path):
    """Silent acceptance: an edit of the manifest (a valid k) is refused by its checksum."""
    from routeharness.deploy import saved

    folder = _copy(fitted, tmp_path / "home")
    path = _rewrite(folder, lambda m: m["params"].update(k=7), checksum=False)
    with pytest.raises(RouteHarnessError) as info:
        saved.load(folder)
    assert str(info.value) == (f"{path}: checksum: does not match the manifest's content "
                               "(edited after it was saved?); restore it or refit "
                               "(routeharness fit)")


def _state_with_one_model_less(folder: Path) -> None:
    """The state's outcome table cut to two models, its hash updated in the manifest."""
    import hashlib

    from safetensors.numpy import load, save

    path = folder / "state.safetensors"
    arrays = load(path.read_bytes())
    arrays["scores_"], arrays["costs_"] = arrays["scores_"][:, :2], arrays["costs_"][:, :2]
    blob = save(arrays)
    path.write_bytes(blob)
    _rewrite(folder, lambda m: m["state"].update(
        {"state.safetensors": hashlib.sha256(blob).hexdigest()}))


def _extra_file(folder: Path) -> None:
    (folder / "notes.txt").write_text("mine", encoding="utf-8")


@pytest.mark.parametrize("edit, file, says", [
    # silent acceptance, today
    (lambda m: m["params"].update(k=0), "manifest.json", "params: k must be >= 1, got 0"),
    (lambda m: m["params"].update(k=2.5), "manifest.json",
     "params: k must be an integer >= 1, got 2.5"),
    (lambda m: m["params"].update(weighting="cubic"), "manifest.json",
     "params: weighting must be one of ('uniform', 'distance'), got 'cubic'"),
    (lambda m: m["params"].update(index="lsh"), "manifest.json",
     "params: index must be one of"),
    (lambda m: m["params"].update(nprobe=0), "manifest.json",
     "params: nprobe must be a positive integer or None, got 0"),
    (lambda m: m["params"].pop("weighting"), "manifest.json",
     "params: missing ['weighting'] (the parameters of routeharness_knn.router.KNNRouter)"),
    (lambda m: m["params"].update(colour=1), "manifest.json", "params: unknown ['colour']"),
    (lambda m: m["fixed_params"].update(k=9), "manifest.json",
     "fixed_params.k: 9 is not the value in params (5)"),
    (lambda m: m["router"].update(kind="selection"), "manifest.json",
     "router.kind: 'selection', but routeharness_knn.router.KNNRouter is a utility router"),
    (lambda m: m["models"][1].update(name="m0"), "manifest.json",
     "models: name 'm0' is listed twice"),
    (lambda m: m["validation"][3].update(quality=float("nan")), "manifest.json",
     "validation[3].quality: must be a finite number, got nan"),
    (lambda m: m["state"].update({"extra.bin": "0" * 64}), "manifest.json",
     "state: unknown file(s) ['extra.bin']"),
    (lambda m: m["state"].pop("state.json"), "manifest.json",
     "state: missing the hash of ['state.json']"),
    (lambda m: m["training"].update(n_train=100), "state.safetensors",
     "the manifest says 100 training prompts"),
    (lambda m: m["encoder"].update(dimension=16), "state.safetensors",
     "the manifest says 120 training prompts, 16-d embeddings"),
    # tracebacks, today
    (lambda m: m["params"].update(k=-3), "manifest.json", "params: k must be >= 1, got -3"),
    (lambda m: m["models"].pop(), "state.safetensors",
     "outcomes (120, 3); the manifest says 120 training prompts, 8-d embeddings and 2 "
     "models"),
    (_state_with_one_model_less, "state.safetensors",
     "outcomes (120, 2); the manifest says 120 training prompts, 8-d embeddings and 3 "
     "models"),
    (_extra_file, "notes.txt", "not a file of this saved router"),
], ids=["k0", "k-float", "weighting", "index", "nprobe", "param-missing", "param-unknown",
        "fixed-params", "kind", "duplicate-model", "nan-point", "unknown-file",
        "missing-hash", "n_train", "dimension", "k-negative", "model-list-vs-state",
        "state-vs-model-list", "extra-file"])
def test_a_wrong_manifest_is_one_line_naming_the_file_and_the_field(fitted, tmp_path, edit,
                                                                    file, says):
    """Silent acceptance and tracebacks: a manifest checked deeply (its parameters by
    the installed router, unique models, finite points, the state's sizes against the
    models, dimension and training size), even when its checksum was recomputed."""
    from routeharness.deploy import saved

    folder = _copy(fitted, tmp_path / "home")
    if edit in (_state_with_one_model_less, _extra_file):
        edit(folder)
    else:  # (a NaN has no canonical JSON: that manifest cannot get a checksum)
        _rewrite(folder, edit, checksum="nan" not in says)
    with pytest.raises(RouteHarnessError) as info:
        saved.load(folder)
    message = str(info.value)
    assert message.startswith(f"{folder / file}: ") and "\n" not in message, message
    assert says in message, message


def _known(synth: Path, path: Path, n: int, **override) -> Path:
    """The first ``n`` training prompts (id, prompt, group, vector) with outcomes for a
    model the router lacks (``m9``), one column replaced by ``override``'s values."""
    from routeharness.data.readers import load_path

    train = load_path(synth).splits["train"]
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "prompt", "group", "score:m9", "cost:m9", "embedding"])
        for i in range(n):
            cells = {"prompt": train.prompts[i], "group": str(train.groups[i]),
                     "embedding": train.embeddings[i].astype(float).tolist()}
            cells.update({key: values[i] for key, values in override.items()})
            writer.writerow([train.ids[i], cells["prompt"], cells["group"], 0.5, 0.001,
                             json.dumps(np.asarray(cells["embedding"], float).tolist())])
    return path


def test_update_refuses_a_known_id_whose_prompt_differs_unless_replace(synth, fitted,
                                                                       tmp_path):
    """Silent acceptance: a known id with another text, group or vector is refused (it
    would attach the outcome to another prompt's row); --replace replaces that row."""
    from routeharness.data.readers import load_path
    from routeharness.deploy import saved
    from routeharness.deploy.update import SparseModelWarning, update

    folder = _copy(fitted, tmp_path / "home")
    first = load_path(synth).splits["train"].ids[0]
    cases = {"prompt": ["another question", "and another"],
             "group": ["elsewhere", "elsewhere"],
             "embedding": [np.ones(DIM), np.ones(DIM)]}
    for column, values in cases.items():
        path = _known(synth, tmp_path / f"{column}.csv", 2, **{column: values})
        with pytest.raises(RouteHarnessError) as info:
            update(folder, path)
        assert str(info.value) == (
            f"{path}, row 0, column {column!r}: prompt {first!r} is known to "
            f"this router with another {column} (row 0 of its table): give this prompt a "
            f"new id, or --replace to replace that row's {column} and outcomes")
    assert saved.load(folder).manifest.training.n_train == N_TRAIN  # untouched
    # the same prompts: the new model's outcomes are filled in on their rows
    with pytest.warns(SparseModelWarning, match="'m9' 2 "):  # 2 of 120 prompts
        report = update(folder, _known(synth, tmp_path / "same.csv", 2))
    assert (report.new_models, report.filled_cells) == (["m9"], 2)
    # --replace: row 0 becomes test prompt 0, with its vector and outcomes (m0 only)
    test = _test_split(synth)
    loaded = saved.load(folder)
    path = _outcomes(synth, tmp_path / "replace.csv", [0], ids=[first], models=["m0"])
    with pytest.warns(SparseModelWarning):  # row 0 lost its m9 outcome: 1 left
        report = update(folder, path, replace=True)
    assert (report.replaced_prompts, report.new_prompts, report.filled_cells) == (1, 0, 0)
    after = saved.load(folder)
    scores, _ = after.router.outcome_table()
    assert scores[0, 0] == test.scores[0, 0] and np.isnan(scores[0, 1:]).all()
    np.testing.assert_array_equal(after.router.X_[0], test.embeddings[0])
    assert after.rows.prompt_sha256[0] != loaded.rows.prompt_sha256[0]
    assert after.rows.prompt_sha256[1:] == loaded.rows.prompt_sha256[1:]
    assert after.manifest.updates[-1].replaced_prompts == 1


def test_update_refuses_rows_without_any_outcome(synth, fitted, tmp_path):
    """Silent acceptance: a new prompt with every outcome cell empty is not appended."""
    from routeharness.deploy import saved
    from routeharness.deploy.update import update

    folder = _copy(fitted, tmp_path / "home")
    path = _outcomes(synth, tmp_path / "empty.csv", range(3), blank=(1,))
    test = _test_split(synth)
    with pytest.raises(RouteHarnessError) as info:
        update(folder, path)
    assert str(info.value) == (f"{path}, row 1, column 'score:m0': prompt "
                               f"'new-{test.ids[1]}' has no outcome (every score cell is "
                               "empty): an update adds outcomes")
    assert saved.load(folder).manifest.training.n_train == N_TRAIN


def test_update_refuses_a_vector_on_a_router_with_an_encoder(synth, tmp_path):
    """Silent acceptance: a router that embeds prompts with its encoder never takes the
    file's ``embedding`` column (it would route on vectors of another space)."""
    from routeharness.deploy import saved
    from routeharness.deploy.update import update

    with hash_encoder():
        folder = tmp_path / "text-router"
        saved.save(saved.fit("knn:k=5", str(synth), encoder="hostile-hash", tune=False),
                   folder)
        path = _outcomes(synth, tmp_path / "vectors.csv", range(3),
                         vectors=np.ones((3, 16)))
        with pytest.raises(RouteHarnessError) as info:
            update(folder, path)
        assert str(info.value) == (
            f"{path}, column 'embedding': this router embeds each prompt with its encoder "
            "('hostile-hash'): remove the embedding column (it would not be what the router "
            "routes on)")
        plain = _outcomes(synth, tmp_path / "text.csv", range(3), with_vectors=False)
        assert update(folder, plain).new_prompts == 3  # its own encoder embeds them


class HashWords:
    """Words hashed into 16 buckets: a text encoder without a model."""

    name, identity, revision, dimension = "hostile-hash", "hostile-hash-words", "1", 16
    modalities = frozenset({"text"})

    def encode(self, texts, images=None, *, progress=None) -> np.ndarray:
        import hashlib

        out = np.zeros((len(texts), 16), np.float32)
        for i, text in enumerate(texts):
            for word in text.lower().split():
                out[i, hashlib.md5(word.encode()).digest()[0] % 16] += 1.0
        return out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-9)


@contextmanager
def hash_encoder() -> Iterator[None]:
    """``hostile-hash`` registered in this process while the block runs."""
    import types

    from routeharness import hookimpl
    from routeharness.plugins.host import get_host, reset_plugin_manager

    module = types.ModuleType("hostile_test_plugin")
    module.register_encoders = hookimpl(lambda register: register(
        name="hostile-hash", target=HashWords, description="test"))
    reset_plugin_manager()
    get_host().add(module, "hostile-test")
    try:
        yield
    finally:
        reset_plugin_manager()


def test_an_old_folder_loads_with_a_warning_and_migrates(synth, fitted, tmp_path, cli):
    """A folder saved before checksums (no checksum, train_ids.json a list of ids) still
    loads and routes, with a one-line warning naming --migrate, which adds the checksum;
    its known ids are matched by id alone."""
    import hashlib

    from routeharness.deploy import saved
    from routeharness.deploy.saved import LegacyRouterWarning

    folder = _copy(fitted, tmp_path / "home")
    ids = json.loads((folder / "train_ids.json").read_text("utf-8"))
    ids = ids["ids"] if isinstance(ids, dict) else ids
    blob = json.dumps(ids).encode("utf-8")
    (folder / "train_ids.json").write_bytes(blob)

    def old(m: dict) -> None:
        m.pop("checksum")
        m["state"]["train_ids.json"] = hashlib.sha256(blob).hexdigest()

    _rewrite(folder, old, checksum=False)
    with pytest.warns(LegacyRouterWarning, match="--migrate"):
        loaded = saved.load(folder)
    assert loaded.rows.ids == ids and loaded.rows.prompt_sha256[0] is None
    prompts = tmp_path / "p.jsonl"
    test = _test_split(synth)
    prompts.write_text(json.dumps({"prompt": test.prompts[0],
                                   "embedding": test.embeddings[0].tolist()}) + "\n",
                       encoding="utf-8")
    done = cli("route", str(folder), "--file", str(prompts), "--format", "jsonl")
    assert done.returncode == 0 and done.stderr.strip() == (
        f"warning: {folder / 'manifest.json'}: saved without a manifest checksum (by an "
        "older routeharness): its other files are checked, the manifest by its contract "
        f"only; add one with routeharness update {folder} --migrate")
    done = cli("update", str(folder), "--migrate")
    assert done.returncode == 0 and done.stderr.strip() == \
        f"migrated {folder}: manifest checksum added"
    assert json.loads((folder / "manifest.json").read_text("utf-8"))["checksum"]
    done = cli("route", str(folder), "--file", str(prompts), "--format", "jsonl")
    assert done.returncode == 0 and done.stderr == ""


# --- tracebacks -----------------------------------------------------------------------------
def test_an_update_vector_of_the_wrong_dimension_is_one_line(synth, fitted, tmp_path):
    from routeharness.deploy import saved
    from routeharness.deploy.update import update

    folder = _copy(fitted, tmp_path / "home")
    path = _outcomes(synth, tmp_path / "wide.csv", range(2), vectors=np.ones((2, DIM + 1)))
    with pytest.raises(RouteHarnessError) as info:
        update(folder, path)
    assert str(info.value) == (f"{path}, column 'embedding': vectors of {DIM + 1} "
                               f"dimensions; this router's are {DIM}-d")
    assert saved.load(folder).manifest.training.n_train == N_TRAIN


# --- false reject ---------------------------------------------------------------------------
def test_fit_to_a_symlink_to_an_empty_folder_writes_its_target(synth, tmp_path, cli):
    """False reject: ``fit -o LINK`` where LINK points to an empty folder saves the router
    there; the link stays a link."""
    from routeharness.deploy import saved

    (tmp_path / "empty").mkdir()
    link = tmp_path / "link"
    link.symlink_to("empty")
    done = cli("fit", "-r", "knn:k=5", "-t", str(synth), "-e", "precomputed", "--no-tune",
               "-o", str(link), "-q")
    assert done.returncode == 0, done.stderr[-2000:]
    assert link.is_symlink()
    assert sorted(os.listdir(tmp_path / "empty")) == ["manifest.json", "state.json",
                                                       "state.safetensors", "train_ids.json"]
    assert saved.load(link).manifest.training.n_train == N_TRAIN
    assert sorted(os.listdir(tmp_path)) == ["empty", "link"]
    # a link to a folder that is not empty is still refused, before the fit
    done = cli("fit", "-r", "knn:k=5", "-t", str(synth), "-e", "precomputed", "--no-tune",
               "-o", str(link), "-q")
    assert done.returncode == 1
    assert done.stderr.strip() == (f"Error: {link}: exists and is not an empty directory "
                                   "(the saved router is written to a new one)")
