"""``study online``: regret on tiny tasks with a known answer, what bandit feedback reveals
(only the chosen cell, never another), models entering mid-stream, drift, the routers
that learn online (kNN, LinUCB, the lambda bandit) against refits, bad input in one line,
and the real CLI end to end on RouterBench's MBPP group with a third-party plugin."""

from __future__ import annotations

import itertools
import json
from typing import Any, ClassVar

import numpy as np
import pytest
from plugin_site import env_with, plugin_site

from routeharness import SELECTION, BaseRouter
from routeharness.common.errors import RouteHarnessError, UnknownNameError
from routeharness.data.dataset import ModelInfo, Outcomes, RoutingData, RoutingTask
from routeharness.embedding.embed import EmbeddedTask
from routeharness.evaluation.tuning import RouterRun
from routeharness.study import online
from routeharness.study.record import STUDY_SCHEMA

MODELS = ["cheap", "right", "dear"]
PRICES = [0.1, 0.5, 1.0]  # USD: the dearest model's mean cost is the cost unit


def tiny(n: int = 60, scores: np.ndarray | None = None, d: int = 4, seed: int = 0,
         groups: int = 2) -> EmbeddedTask:
    """A task whose model 'right' answers every prompt and the others none (unless
    ``scores`` says otherwise), split into train/validation/test."""
    rng = np.random.default_rng(seed)
    scores = np.tile([0.0, 1.0, 0.0], (n, 1)) if scores is None else scores
    costs = np.tile(PRICES, (n, 1))
    models = [ModelInfo(name) for name in MODELS]
    X = rng.normal(size=(n, d)).astype(np.float32)
    cut = {"train": np.arange(0, n // 2), "validation": np.arange(n // 2, 3 * n // 4),
           "test": np.arange(3 * n // 4, n)}
    splits = {name: RoutingData([f"q{i}" for i in rows], [f"prompt {i}" for i in rows],
                                np.array([f"g{i % groups}" for i in rows], dtype=object),
                                scores[rows], costs[rows], models, split=name)
              for name, rows in cut.items()}
    task = RoutingTask("tiny", 1, splits, "test")
    return EmbeddedTask(task, {name: X[rows] for name, rows in cut.items()}, 0, 0)


class Always(BaseRouter):
    """Routes every prompt to one model (a frozen, offline router)."""

    kind = SELECTION

    def __init__(self, model: int = 1, random_state: int | None = None):
        self.model = model
        self.random_state = random_state

    def fit(self, X: np.ndarray, outcomes: Outcomes) -> Always:
        self.m_ = outcomes.m
        return self

    def route(self, X: np.ndarray, lam: float, groups: Any = None) -> np.ndarray:
        return np.full(len(X), self.model)


class Spy(BaseRouter):
    """An online router in a third party's style (tags as a plain dict) that records
    everything the harness shows it; it routes prompt i of a batch to model i mod m."""

    kind = SELECTION
    tags: ClassVar[dict[str, Any]] = {"online": True}
    seen: ClassVar[list[tuple[str, Any]]] = []

    def __init__(self, random_state: int | None = None):
        self.random_state = random_state

    def fit(self, X: np.ndarray, outcomes: Outcomes) -> Spy:
        Spy.seen.append(("fit", (len(X), outcomes.scores.copy())))
        self.m_ = outcomes.m
        return self

    def route(self, X: np.ndarray, lam: float, groups: Any = None) -> np.ndarray:
        Spy.seen.append(("route", len(X)))
        self.last_ = np.arange(len(X)) % self.m_
        return self.last_

    def partial_fit(self, X: np.ndarray, scores: np.ndarray, costs: np.ndarray) -> Spy:
        Spy.seen.append(("partial_fit", (len(X), scores.copy(), costs.copy(),
                                         getattr(self, "last_", None))))
        self.m_ = scores.shape[1]
        return self


def plan(cls: type, **fixed: Any) -> RouterRun:
    return RouterRun(cls.__name__.lower(), cls.__name__.lower(), None, cls, fixed)


# --- regret with a known answer ------------------------------------------------------------
def test_a_router_always_on_the_best_model_has_no_regret():
    stream = online.build_stream(tiny(), 0, warmup=10)
    ref = online.reference(stream, 0.1)
    assert ref.fixed == MODELS.index("right")
    trace = online.run_stream(plan(Always, model=1), stream, 0.1, "bandit", seed=0, batch=7)
    result = online.run_metrics(trace, ref, stream.scale)
    assert result["regret_oracle"] == 0.0 and result["regret_fixed"] == 0.0
    assert result["quality"] == 100.0
    assert result["cost_usd"] == pytest.approx(0.5 * 50)  # 50 routed prompts at $0.50


def test_regret_of_the_wrong_model_is_the_utility_gap_on_every_prompt():
    stream = online.build_stream(tiny(), 0, warmup=10)
    lam = 0.1
    ref = online.reference(stream, lam)
    trace = online.run_stream(plan(Always, model=0), stream, lam, "full", seed=0)
    result = online.run_metrics(trace, ref, stream.scale)
    gap = (1.0 - lam * 0.5) - (0.0 - lam * 0.1)  # costs in units of the dearest model
    assert result["regret_oracle"] == pytest.approx(50 * gap)
    assert result["regret_fixed"] == pytest.approx(50 * gap)  # the oracle is the fixed one
    assert result["late_regret"] == pytest.approx(100 * gap)
    curves = online.run_curves(trace, ref, stream.scale)
    assert curves["regret_oracle"][-1] == pytest.approx(50 * gap)
    assert np.all(np.diff(curves["regret_oracle"]) > 0) and curves["running_quality"][-1] == 0


def test_context_beats_the_best_fixed_model_negative_regret():
    """Each prompt is answered by one of two models: the oracle's regret against the
    best fixed model is minus the prompts that model misses."""
    n = 40
    scores = np.zeros((n, 3))
    scores[::2, 0] = 1.0
    scores[1::2, 2] = 1.0
    stream = online.build_stream(tiny(n, scores), 0, warmup=4)
    ref = online.reference(stream, 0.0)
    assert np.all(ref.oracle == 1.0)
    routed = stream.data.scores[4:]
    misses = routed.shape[0] - routed[:, ref.fixed].sum()
    assert ref.fixed in (0, 2) and routed[:, ref.fixed].sum() >= routed[:, 2 - ref.fixed].sum()
    assert float((ref.fixed_utility - ref.oracle).sum()) == -misses < 0


# --- feedback ----------------------------------------------------------------------------------
@pytest.mark.parametrize("feedback", ["bandit", "full"])
def test_bandit_feedback_reveals_only_the_chosen_outcome(feedback):
    Spy.seen.clear()
    rng = np.random.default_rng(1)
    task = tiny(60, rng.integers(0, 2, size=(60, 3)).astype(float))
    stream = online.build_stream(task, 3, warmup=12)
    online.run_stream(plan(Spy), stream, 0.1, feedback, seed=3, batch=5)
    kinds = [kind for kind, _ in Spy.seen]
    assert kinds[0] == "fit" and Spy.seen[0][1][0] == 12  # the warm-up, every outcome
    assert not np.isnan(Spy.seen[0][1][1]).any()
    updates = [value for kind, value in Spy.seen if kind == "partial_fit"]
    assert len(updates) == 48 // 5 + 1 and sum(u[0] for u in updates) == 48
    assert kinds.count("route") == len(updates)  # route, then learn, batch by batch
    position = 12
    for n_rows, scores, costs, chosen in updates:
        truth = stream.data.scores[position:position + n_rows]
        known = ~np.isnan(scores)
        assert np.array_equal(known, ~np.isnan(costs))
        if feedback == "bandit":
            expected = np.zeros_like(known)
            expected[np.arange(n_rows), chosen] = True
            assert np.array_equal(known, expected)  # never another model's outcome
        else:
            assert known.all()
        assert np.array_equal(scores[known], truth[known])
        position += n_rows


def test_a_model_entering_mid_stream_is_announced_then_chosen():
    Spy.seen.clear()
    stream = online.build_stream(tiny(), 0, warmup=10, entries=[online.Entry("right", 30)])
    assert stream.data.model_names == ["cheap", "dear", "right"]  # entering models last
    assert stream.opens.tolist() == [0, 0, 30]
    trace = online.run_stream(plan(Spy), stream, 0.1, "bandit", seed=0, batch=7)
    fit = Spy.seen[0][1][1]
    assert fit.shape == (10, 2)  # fitted without the model not yet open
    announce = [v for k, v in Spy.seen if k == "partial_fit" and v[0] == 0]
    assert len(announce) == 1 and announce[0][1].shape == (0, 3)
    assert trace.choices[:20].max() <= 1 and 2 in trace.choices[20:]
    ref = online.reference(stream, 0.1)
    assert ref.fixed != 2  # not open the whole time
    assert np.all(ref.oracle[20:] == 1.0 - 0.1 * 0.5) and np.all(ref.oracle[:20] < 0)
    frozen = online.run_stream(plan(Always, model=1), stream, 0.1, "bandit", seed=0)
    assert 2 not in frozen.choices  # a frozen router never sees it


def test_drift_brings_groups_in_blocks_and_orders_are_seeded():
    task = tiny(90, groups=3)
    groups = [str(g) for g in online.build_stream(task, 5, warmup=5, drift=True).data.groups]
    changes = sum(a != b for a, b in itertools.pairwise(groups))
    assert changes == 2  # three blocks
    a = online.build_stream(task, 5, warmup=5).data.ids
    assert a == online.build_stream(task, 5, warmup=5).data.ids
    assert a != online.build_stream(task, 6, warmup=5).data.ids
    assert online.build_stream(task, 5, warmup=5, length=20).data.ids == a[:20]


# --- the routers that learn online -----------------------------------------------------------
def _outcomes(scores: np.ndarray, costs: np.ndarray) -> Outcomes:
    return Outcomes(scores, costs, np.array(["g"] * len(scores), dtype=object),
                    [ModelInfo(f"m{j}") for j in range(scores.shape[1])])


def test_knn_partial_fit_is_a_fit_on_the_table_with_missing_cells():
    from routeharness_knn.router import KNNRouter

    rng = np.random.default_rng(0)
    X = rng.normal(size=(80, 8)).astype(np.float32)
    scores = rng.integers(0, 2, size=(80, 3)).astype(float)
    costs = rng.uniform(0.1, 1.0, size=(80, 3))
    seen_s, seen_c = np.full((30, 4), np.nan), np.full((30, 4), np.nan)
    picked = rng.integers(0, 4, size=30)
    seen_s[np.arange(30), picked] = 1.0
    seen_c[np.arange(30), picked] = 0.5
    online_router = KNNRouter(k=5).fit(X[:50], _outcomes(scores[:50], costs[:50]))
    online_router.partial_fit(X[50:], seen_s, seen_c)
    table_s = np.vstack([np.column_stack([scores[:50], np.full(50, np.nan)]), seen_s])
    table_c = np.vstack([np.column_stack([costs[:50], np.full(50, np.nan)]), seen_c])
    refit = KNNRouter(k=5).fit(X, _outcomes(table_s, table_c))
    query = rng.normal(size=(20, 8)).astype(np.float32)
    for a, b in zip(online_router.predict(query), refit.predict(query)):
        assert np.allclose(a, b, equal_nan=True)
    with pytest.raises(ValueError, match="partial_fit"):
        online_router.partial_fit(X[:2], np.zeros((2, 2)), np.zeros((2, 2)))


def test_linucb_online_updates_equal_a_fit_on_everything():
    from routeharness_bandit.linucb import LinUCBRouter

    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 6))
    scores = rng.integers(0, 2, size=(60, 3)).astype(float)
    costs = rng.uniform(0.1, 1.0, size=(60, 3))
    scores[rng.random((60, 3)) < 0.3] = np.nan  # bandit-like missing cells
    costs[np.isnan(scores)] = np.nan
    stepwise = LinUCBRouter(alpha=0.5).fit(X[:20], _outcomes(scores[:20], costs[:20]))
    for start in range(20, 60, 7):
        stepwise.partial_fit(X[start:start + 7], scores[start:start + 7], costs[start:start + 7])
    whole = LinUCBRouter(alpha=0.5).fit(X, _outcomes(scores, costs))
    for a, b in zip(stepwise.predict(X[:10]), whole.predict(X[:10])):
        assert np.allclose(a, b)
    stepwise.partial_fit(X[:0], np.zeros((0, 4)), np.zeros((0, 4)))  # a new model
    s_hat, c_hat = stepwise.predict(X[:10])
    assert s_hat.shape == (10, 4) and np.all(s_hat[:, 3] > 0)  # optimism: it is tried
    assert np.allclose(c_hat[:, 3], np.mean(c_hat[0, :3]))


def test_the_lambda_bandit_learns_from_observed_outcomes_and_takes_new_models():
    from routeharness_bandit.router import BanditRouter

    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 8)).astype(np.float32)
    scores = rng.integers(0, 2, size=(60, 3)).astype(float)
    costs = np.tile([0.1, 0.4, 1.0], (60, 1))
    router = BanditRouter(irt_epochs=30, epochs=2, random_state=0)
    router.fit(X[:40], _outcomes(scores[:40], costs[:40]))
    before = router.identity_b_.copy()
    seen = np.full((20, 4), np.nan)
    seen[:, 3] = 1.0  # the new model answers everything it is asked
    seen_c = np.where(np.isnan(seen), np.nan, 0.2)
    router.partial_fit(X[40:], seen, seen_c)
    assert len(router.models_) == 4 and router.identity_a_.shape[0] == 4
    assert np.allclose(router.identity_b_[:3], before)  # models not observed: unchanged
    assert router.predict_correct(X[:5])[:, 3].min() > 0.5
    assert router.model_costs_[3] == pytest.approx(0.2)
    assert router.route(X[:5], 0.0).max() <= 3


# --- bad input ----------------------------------------------------------------------------------
@pytest.mark.parametrize("text", ["gpt-4", "@5", "gpt-4@", "gpt-4@x", "gpt-4@-3"])
def test_a_bad_enter_is_one_line(text):
    with pytest.raises(RouteHarnessError, match="MODEL@N"):
        online.parse_enter(text)


def test_bad_streams_are_refused():
    task = tiny()
    with pytest.raises(UnknownNameError, match="unknown model \\(--enter\\) 'nosuch'"):
        online.build_stream(task, 0, warmup=10, entries=[online.Entry("nosuch", 20)])
    with pytest.raises(RouteHarnessError, match="from the end of the warm-up"):
        online.build_stream(task, 0, warmup=10, entries=[online.Entry("right", 5)])
    with pytest.raises(RouteHarnessError, match="not longer than the warm-up"):
        online.build_stream(task, 0, warmup=60)
    empty = np.tile([0.0, 1.0, np.nan], (60, 1))
    with pytest.raises(RouteHarnessError, match="the stream is empty"):
        online.build_stream(tiny(60, empty), 0)
    for lams in ([-1.0], [float("inf")], [0.1, 0.1]):
        with pytest.raises(RouteHarnessError, match="--lam"):
            online.check_lams(lams)


# --- the CLI end to end -------------------------------------------------------------------------
TASK = "routerbench:mbpp"


@pytest.fixture
def env(cache_dir):
    return {"ROUTEHARNESS_CACHE": str(cache_dir)}


def test_study_online_end_to_end_with_a_third_party_router(cli, env, tmp_path,
                                                           tmp_path_factory):
    out, plot = tmp_path / "online.json", tmp_path / "online.png"
    plugins = env_with(plugin_site(tmp_path_factory))
    result = cli("study", "online", "-r", "knn", "-r", "linucb", "-r", "nearest-centroid",
                 "-t", TASK, "--seeds", "0,1", "--length", "160", "--warmup", "40",
                 "--enter", "gpt-4-1106-preview@80", "--bootstrap", "50", "-o", str(out),
                 "--plot", str(plot), env={**env, **plugins})
    assert result.returncode == 0, result.stderr
    saved = json.loads(out.read_text())
    assert saved["schema"] == STUDY_SCHEMA and saved["study"] == "online"
    summary = saved["results"][TASK]
    assert summary["stream"]["routed"] == 120 and summary["models"][-1] == "gpt-4-1106-preview"
    rows = {(r["router"], r["feedback"]): r for r in summary["rows"]}
    assert set(rows) == {("knn", "bandit"), ("knn", "full"), ("linucb", "bandit"),
                         ("linucb", "full"), ("nearest-centroid", "frozen")}
    assert rows[("nearest-centroid", "frozen")]["entering"]["share"] == 0.0
    assert rows[("linucb", "bandit")]["entering"]["share"] > 0  # optimism tries it
    for row in rows.values():
        regret = row["metrics"]["regret_oracle"]
        assert regret["mean"] > 0 and len(regret["per_seed"]) == 2
        assert regret["ci95"][0] <= regret["mean"] <= regret["ci95"][1]
    assert "regret vs oracle" in result.stdout and "best fixed: " in result.stdout
    assert plot.read_bytes()[:4] == b"\x89PNG"
    shown = cli("study", "show", str(out), "--format", "json", env=env)
    assert shown.returncode == 0 and json.loads(shown.stdout)[0]["title"].startswith(TASK)


@pytest.mark.parametrize("args, message", [
    (("-r", "nosuch", "-t", TASK), "unknown router 'nosuch'"),
    (("-r", "knn", "-t", TASK, "--enter", "gpt-4"), "--enter 'gpt-4': write MODEL@N"),
    (("-r", "knn", "-t", TASK, "--enter", "nosuch@200"), "unknown model (--enter) 'nosuch'"),
    (("-r", "knn", "-t", TASK, "--lam", "-1"), "--lam -1: a trade-off is a finite number"),
    (("-r", "knn", "-t", TASK, "--lam", "x"), "numbers, e.g. 0,0.1,1"),
    (("-r", "knn", "-t", "{empty}", "--splits", "train"),
     "no prompt of train has every model's outcome: the stream is empty"),
    (("-r", "knn", "-t", TASK, "--warmup", "500"), "a stream of 427 prompts is not longer "
                                                   "than the warm-up (500)"),
])
def test_bad_online_input_is_one_line_and_writes_nothing(cli, env, tmp_path, args, message):
    empty = tmp_path / "empty.csv"  # every training prompt misses one model's outcome
    empty.write_text("id,prompt,group,split,score:a,cost:a,score:b,cost:b\n" + "".join(
        f"q{i},prompt {i},g,{('train', 'validation', 'test')[i % 3]},"
        + ("1,0.1,1,0.2\n" if i % 3 else ("1,0.1,,\n" if i % 2 else ",,1,0.2\n"))
        for i in range(12)), encoding="utf-8")
    out = tmp_path / "out.json"
    args = tuple(part.format(empty=empty) for part in args)
    result = cli("study", "online", *args, "-o", str(out), env=env)
    assert result.returncode != 0
    assert message in result.stderr, result.stderr
    lines = result.stderr.strip().splitlines()
    assert "Traceback" not in result.stderr and message in lines[-1]
    assert sum(line.startswith("Error") for line in lines) == 1
    assert not any(line.startswith("encoding") for line in lines)  # refused before work
    assert not out.exists()


# --- the conformance kit ------------------------------------------------------------------------
def test_the_kit_checks_what_the_online_tag_promises():
    from routeharness.testing.checks import check_online_update, router_checks

    class Forgetful(Spy):
        def partial_fit(self, X, scores, costs):
            return None

    check_online_update(Spy())
    with pytest.raises(AssertionError, match="partial_fit\\(\\) must return self"):
        check_online_update(Forgetful())
    skipped = {c.name: c.skip for c in router_checks(Always())}
    assert skipped["check_online_update"] == "tags do not declare online=True"
