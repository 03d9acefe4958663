"""The evaluation module on a small dataset of its own and an in-process hash encoder:
the oracle as a reference, independent seed streams, deterministic routers fitted once,
fixed hyper-parameters (-r NAME:PARAM=VALUE), the checkpoint and --resume, the encoder
choice and the progress it reports."""

from __future__ import annotations

import hashlib
import json
import types
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from routeharness import hookimpl
from routeharness.common.errors import RouteHarnessError, UnknownNameError
from routeharness.common.progress import Reporter
from routeharness.plugins.host import get_host, reset_plugin_manager
from routeharness.results.records import ResultSet

ENCODER = "hash-test"
MODELS = ("cheap", "mid", "dear")


class HashEncoder:
    """Deterministic 16-d vectors from each text's sha256, plus a group direction so
    that neighbours share a group (a kNN router then beats random)."""

    name = identity = ENCODER
    revision = "1"
    modalities = frozenset({"text"})

    def encode(self, texts: Any, images: Any = None, **kwargs: Any) -> np.ndarray:
        rows = []
        for text in texts:
            seed = int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "little")
            vector = np.random.default_rng(seed).normal(size=16) * 0.3
            vector[int(text.split()[0][-1]) if text[:1] == "g" else 0] += 3.0
            rows.append(vector / np.linalg.norm(vector))
        return np.asarray(rows, dtype=np.float32).reshape(len(texts), 16)


@pytest.fixture
def hash_encoder():
    """Registers the ``hash-test`` encoder for one test, then removes it."""
    module = types.ModuleType("eval_test_encoder")

    def register_encoders(register):
        register(name=ENCODER, target=lambda: HashEncoder(), description="test only")

    module.register_encoders = hookimpl(register_encoders)
    reset_plugin_manager()
    get_host().add(module, "eval-test-encoder")
    yield ENCODER
    reset_plugin_manager()


def write_dataset(path: Path, n: int = 150, seed: int = 0) -> Path:
    """One CSV with a split column: 3 groups, 3 models; group g needs model >= g."""
    rng = np.random.default_rng(seed)
    lines = ["id,prompt,group,split," + ",".join(f"score:{m},cost:{m}" for m in MODELS)]
    for i in range(n):
        group = i % 3
        split = ("train", "train", "validation", "test")[i % 4] if i >= 12 else \
            ("train", "validation", "test")[i % 3]
        cells = []
        for j, price in enumerate((0.001, 0.004, 0.02)):
            correct = rng.random() < (0.9 if j >= group else 0.15)
            cells += [f"{float(correct)}", f"{price * rng.uniform(0.8, 1.2):.6f}"]
        lines.append(f"q{i},g{group} prompt number {i},g{group},{split}," + ",".join(cells))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.fixture
def tiny_task(tmp_path) -> str:
    return str(write_dataset(tmp_path / "tiny.csv"))


def run(routers, task, tmp_path, **kwargs):
    from routeharness.evaluation.matrix import evaluate
    from routeharness.evaluation.protocol import Protocol

    kwargs.setdefault("protocol", Protocol(n_bootstrap=20))
    result = evaluate(list(routers), [task], encoder=ENCODER,
                      cache_dir=str(tmp_path / "cache"), **kwargs)
    assert isinstance(result, ResultSet)  # typed at the boundary; the tests read its JSON
    return result.to_dict()


# --- the oracle: a reference the harness computes, not a router ------------------------
def test_the_oracle_is_a_reference_row_computed_from_the_test_labels(hash_encoder, tiny_task,
                                                                     tmp_path):
    from routeharness.plugins.registry import get_registry

    with pytest.raises(UnknownNameError):
        get_registry("router").get("oracle")
    result = run(["knn"], tiny_task, tmp_path)
    assert {r["router"] for r in result["records"]} == {"knn", "best-single", "random"}
    reference = next(iter(result["tasks"].values()))
    oracle = reference["oracle"]
    assert set(oracle) == {"auc", "quality_at_0", "cost_at_0_usd", "auc_ci95", "curve",
                           "frontier"}
    for record in result["records"]:
        assert oracle["auc"] >= record["metrics"]["auc"] - 1e-9, record["router"]
    # at lam = 0 the oracle answers every row with a correct model when there is one
    rows = [line.split(",") for line in Path(tiny_task).read_text().splitlines()[1:]]
    test = np.asarray([[float(c) for c in r[4::2]] for r in rows if r[3] == "test"])
    assert oracle["quality_at_0"] == pytest.approx(test.max(axis=1).mean() * 100)
    bare = run(["knn"], tiny_task, tmp_path, references=False)
    assert "oracle" not in next(iter(bare["tasks"].values()))
    assert {r["router"] for r in bare["records"]} == {"knn"}


# --- one seed, independent streams ------------------------------------------------------
def test_seed_streams_differ_from_each_other_and_between_seeds():
    from routeharness.evaluation.protocol import Protocol, seed_streams

    first, second = seed_streams(0), seed_streams(1)
    assert len({first.grid, first.router, first.bootstrap}) == 3
    assert first != second and first.bootstrap != second.bootstrap
    assert seed_streams(0) == first  # reproducible
    assert Protocol().version >= 2 and "SeedSequence" in Protocol().to_dict()["seed_streams"]
    with pytest.raises(RouteHarnessError, match="outside"):
        seed_streams(2 ** 32)


def test_a_deterministic_routers_interval_ignores_the_grid_stream(hash_encoder, tiny_task,
                                                                  tmp_path, monkeypatch):
    import routeharness.evaluation.run as evaluate_module
    from routeharness.evaluation.protocol import SeedStreams, seed_streams

    def interval(grid: int, bootstrap: int) -> list[float]:
        real = seed_streams(0)
        monkeypatch.setattr(evaluate_module, "seed_streams",
                            lambda seed: SeedStreams(seed, grid, real.router, bootstrap))
        result = run(["knn:k=5,weighting=uniform"], tiny_task, tmp_path, references=False)
        record = result["records"][0]
        assert record["seed_streams"] == {"grid": grid, "router": real.router,
                                          "bootstrap": bootstrap}
        return record["metrics"]["auc_ci95"]

    base = interval(grid=1, bootstrap=7)
    assert interval(grid=999, bootstrap=7) == base  # another grid sample: same interval
    assert interval(grid=1, bootstrap=8) != base  # the bootstrap stream does move it


def test_a_deterministic_router_is_fitted_once_for_every_seed(hash_encoder, tiny_task,
                                                              tmp_path, monkeypatch):
    from routeharness_baselines.routers import RandomRouter
    from routeharness_knn.router import KNNRouter

    from routeharness.evaluation.protocol import Protocol

    fits = {"knn": 0, "random": 0}
    for name, cls in (("knn", KNNRouter), ("random", RandomRouter)):
        original = cls.fit

        def counting(self, X, outcomes, _name=name, _original=original):
            fits[_name] += 1
            return _original(self, X, outcomes)

        monkeypatch.setattr(cls, "fit", counting)
    result = run(["knn:k=5", "random"], tiny_task, tmp_path, references=False,
                 protocol=Protocol(seeds=(0, 1, 2), n_bootstrap=0))
    assert fits == {"knn": 2 + 1, "random": 3}  # knn: 2 configs tuned + 1 fit, once
    knn = [r for r in result["records"] if r["router"] == "knn:k=5"]
    assert len(knn) == 3 and all(r["deterministic"] for r in knn)
    assert len({json.dumps(r["curve"]) for r in knn}) == 1


# --- fixed hyper-parameters ---------------------------------------------------------------
def test_fixed_params_leave_the_grid_and_are_recorded(hash_encoder, tiny_task, tmp_path):
    result = run(["knn:k=7", "knn"], tiny_task, tmp_path, references=False)
    records = {r["router"]: r for r in result["records"]}
    assert set(records) == {"knn:k=7", "knn"}
    fixed = records["knn:k=7"]
    assert fixed["params"]["k"] == 7 and fixed["fixed_params"] == {"k": 7}
    assert {tuple(sorted(row["params"])) for row in fixed["tuning"]} == {("weighting",)}
    assert len(records["knn"]["tuning"]) == 14 and records["knn"]["fixed_params"] == {}


@pytest.mark.parametrize("spec, message", [
    ("knn:kk=3", "router 'knn' has no parameter 'kk'; its parameters: ef_search, index, k, nprobe, prior, recall, weighting"),
    ("knn:k=abc", "parameter 'k': 'abc' is not an integer"),
    ("knn:k=3.5", "'3.5' is not an integer"),
    ("knn:k", "'k' is not PARAM=VALUE"),
    ("knn:k=1,k=2", "sets 'k' twice"),
    ("knn:random_state=3", "the harness sets random_state from --seeds"),
    ("linear:alpha=nan", "'nan' is not a finite number"),
    ("routerdc:finetune_encoder=maybe", "'maybe' is not a boolean"),
    ("routerdc:cost_rates=1", "a tuple parameter cannot be set from the command line"),
])
def test_bad_fixed_params_are_one_line_errors(spec, message):
    from routeharness.evaluation.tuning import plan_routers

    with pytest.raises(RouteHarnessError) as caught:
        plan_routers([spec], references=False)
    assert message in str(caught.value) and "\n" not in str(caught.value)


def test_fixed_params_are_typed_by_their_defaults():
    from routeharness.evaluation.tuning import plan_routers

    plan = plan_routers(["routerdc:finetune_encoder=true,lr=0.001,sample_sample=groups"],
                        references=False)[0]
    assert plan.fixed == {"finetune_encoder": True, "lr": 0.001, "sample_sample": "groups"}
    assert plan.label == "routerdc:finetune_encoder=True,lr=0.001,sample_sample=groups"
    assert "lr" not in plan.grid and "temperature" in plan.grid


# --- checkpoint and resume ----------------------------------------------------------------
def test_resume_reuses_saved_runs_and_refuses_another_router_version(hash_encoder, tiny_task,
                                                                     tmp_path):
    from routeharness.evaluation.protocol import Protocol

    checkpoint = tmp_path / "out.json.partial"
    first = run(["knn:k=5"], tiny_task, tmp_path, checkpoint=checkpoint, references=False)
    saved = json.loads(checkpoint.read_text())
    assert len(saved["records"]) == 1
    again = run(["knn:k=5"], tiny_task, tmp_path, checkpoint=checkpoint, resume=True,
                references=False, protocol=Protocol(seeds=(0, 1), n_bootstrap=20))
    assert again["records"][0]["timings"] == first["records"][0]["timings"]  # reused
    assert [r["seed"] for r in again["records"]] == [0, 1]

    saved["records"][0]["version"] = "0.0.1"  # as if made by an older routeharness-knn
    checkpoint.write_text(json.dumps(saved))
    with pytest.raises(RouteHarnessError, match=r"cannot resume from .*made by routeharness "
                                                r"0\.0\.1") as caught:
        run(["knn:k=5"], tiny_task, tmp_path, checkpoint=checkpoint, resume=True,
            references=False)
    assert "\n" not in str(caught.value)


def test_resume_takes_a_checkpoint_of_another_numpys_sweep_not_another_sweep(hash_encoder,
                                                                            tiny_task, tmp_path):
    """Lams that differ in their last bits (numpy's logspace of another version) are one
    sweep (``same_lambdas``); a sweep that really differs is refused in one line."""
    checkpoint = tmp_path / "out.json.partial"
    first = run(["knn:k=5"], tiny_task, tmp_path, checkpoint=checkpoint, references=False)
    saved = json.loads(checkpoint.read_text())
    lambdas = saved["protocol"]["lambdas"]
    saved["protocol"]["lambdas"] = [lam * (1 + 4e-16) if isinstance(lam, float) else lam
                                    for lam in lambdas]
    checkpoint.write_text(json.dumps(saved))
    again = run(["knn:k=5"], tiny_task, tmp_path, checkpoint=checkpoint, resume=True,
                references=False)
    assert again["records"][0]["timings"] == first["records"][0]["timings"]  # reused
    saved["protocol"]["lambdas"] = [lam * 1.001 if isinstance(lam, float) else lam
                                    for lam in lambdas]
    checkpoint.write_text(json.dumps(saved))
    with pytest.raises(RouteHarnessError, match="made with another lambdas") as caught:
        run(["knn:k=5"], tiny_task, tmp_path, checkpoint=checkpoint, resume=True,
            references=False)
    assert "\n" not in str(caught.value)


# --- the encoder a task runs with ---------------------------------------------------------
def _task(name: str, encoder: str | None) -> Any:
    return types.SimpleNamespace(name=name, card=types.SimpleNamespace(encoder=encoder))


def test_the_card_default_encoder_is_used_unless_encoder_is_given():
    from routeharness.embedding.encoders import DEFAULT_ENCODER, choose_encoder

    image = _task("blindtest", "effnet-minilm")
    assert choose_encoder(None, [image]) == "effnet-minilm"
    assert choose_encoder("minilm", [image]) == "minilm"  # --encoder overrides
    assert choose_encoder(None, [types.SimpleNamespace(name="own", card=None)]) == DEFAULT_ENCODER
    with pytest.raises(RouteHarnessError, match=r"different encoders .*blindtest: effnet-minilm"
                                                r".*text: minilm.*--encoder"):
        choose_encoder(None, [image, _task("text", None)])
    assert choose_encoder("minilm", [image, _task("text", None)]) == "minilm"


# --- progress -----------------------------------------------------------------------------
class _Recorder(Reporter):
    def __init__(self):
        self.events: list[tuple[str, int, Any]] = []

    def progress(self, description, total):
        from contextlib import contextmanager

        @contextmanager
        def bar():
            self.events.append(("start", total, description))
            yield lambda steps=1, status=None: self.events.append(("advance", steps, status))

        return bar()


def test_progress_advances_per_configuration_and_names_it(hash_encoder, tiny_task, tmp_path):
    recorder = _Recorder()
    run(["knn"], tiny_task, tmp_path, references=False, reporter=recorder)
    start = [e for e in recorder.events if e[0] == "start" and e[2].startswith("routing")]
    assert start and start[0][1] == 14 + 1  # 14 configurations, one final fit
    routing = recorder.events[recorder.events.index(start[0]) + 1:]
    assert sum(steps for kind, steps, _ in routing if kind == "advance") == 15
    statuses = [status for _, _, status in routing if status]
    assert any("knn on tiny" in s and "tuning 1/14 (k=" in s for s in statuses), statuses
    assert any("fitting" in s for s in statuses)
