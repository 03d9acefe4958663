"""The paper's maintenance claim on real data: a kNN router is kept current by adding
new evaluations to its lookup table (``update_outcomes``, what ``routeharness update``
calls), a parametric router by refitting.

Part 1 (new prompts): start from half of a task's training prompts (a seeded order),
add the rest in steps of 10%: kNN updated in place against mlp refitted at each step with
the configuration tuned at the start (both tuned once on validation with the first half).
Test AUC and wall time per step; kNN's updated routes are checked against a kNN fitted
from scratch on the same rows (they must be identical).

Part 2 (a new model): one model held out of the pool (the one the oracle picks most
often at lam = 0 on train), both routers fitted without it, then the model added with
outcomes on 5%, 10% and 25% of the training prompts (every other cell missing): how often
each router now chooses it on test (at lam = 0 and at the lam where the oracle's cost is
half its maximum) and the test AUC with the full pool, against the oracle's share.

Run: ``python benchmarks/maintenance.py [--task routerbench] [--seeds 0,1,2]``; writes
benchmarks/maintenance.md, benchmarks/results/maintenance.json and maintenance.png.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np

from routeharness.common.progress import Reporter
from routeharness.data.tasks import load_task
from routeharness.embedding.cache import EmbeddingCache
from routeharness.embedding.embed import embed_task
from routeharness.embedding.encoders import get_encoder
from routeharness.evaluation import metrics
from routeharness.evaluation.protocol import Protocol, seed_streams
from routeharness.evaluation.scoring import route_split, score_choices
from routeharness.evaluation.tuning import TuningInputs, fit_router, make_router, plan_routers, tune
from routeharness.routers.base import best_models, one_torch_thread
from routeharness.study.runs import derive

HERE = Path(__file__).resolve().parent
STEPS = (0.5, 0.6, 0.7, 0.8, 0.9, 1.0)
COVERAGE = (0.05, 0.10, 0.25)


def _auc(router, X, data, protocol, scale) -> tuple[float, np.ndarray]:
    choices = route_split(router, X, data, protocol.lambdas, scale)
    return float(score_choices(data, choices, protocol.lambdas, per_group=False)["auc"]), choices


def _tuned(name, embedded, protocol, seed):
    plan = plan_routers([name], references=False)[0]
    best, _ = tune(plan, TuningInputs.of(embedded), protocol, seed_streams(seed))
    return plan, {**best, **plan.fixed}


def part_prompts(embedded, protocol, seed) -> list[dict]:
    task = embedded.task
    n = task.splits["train"].n
    order = np.random.default_rng([seed, 7]).permutation(n)
    test = task.splits["test"]
    rows = test.complete_rows()
    test_eval, X_test = test.subset(rows), embedded.X["test"][rows]
    first = np.sort(order[: int(STEPS[0] * n)])
    start = derive(embedded, {"train": ("train", first),
                              "validation": ("validation", np.arange(task.splits["validation"].n)),
                              "test": ("test", np.arange(test.n))})
    knn_plan, knn_params = _tuned("knn", start, protocol, seed)
    mlp_plan, mlp_params = _tuned("mlp", start, protocol, seed)
    rs = seed_streams(seed).router
    inputs = TuningInputs.of(start)
    scale = inputs.train.cost_scale
    knn = make_router(knn_plan.router_cls, knn_params, rs)
    fit_router(knn_plan, knn, inputs.X_train, inputs.train)
    out, kept = [], first
    for step, share in enumerate(STEPS):
        keep = np.sort(order[: int(share * n)]) if step else first
        added = np.setdiff1d(keep, kept)
        # the table keeps the old rows first, the new ones appended in the order added
        table_rows = np.concatenate([kept, added]) if step else first
        sub = derive(embedded, {"train": ("train", table_rows),
                                "validation": ("validation", np.arange(1)),
                                "test": ("test", np.arange(1))})
        outcomes = TuningInputs.of(sub).train
        started = time.perf_counter()
        if step:
            knn.update_outcomes(embedded.X["train"][added],
                                task.splits["train"].scores[table_rows],
                                task.splits["train"].costs[table_rows] / scale)
        knn_seconds = time.perf_counter() - started
        fresh = make_router(knn_plan.router_cls, knn_params, rs)
        fit_router(knn_plan, fresh, embedded.X["train"][table_rows], _rescaled(outcomes, scale))
        knn_auc, knn_choices = _auc(knn, X_test, test_eval, protocol, scale)
        _, fresh_choices = _auc(fresh, X_test, test_eval, protocol, scale)
        started = time.perf_counter()
        mlp = make_router(mlp_plan.router_cls, mlp_params, rs)
        fit_router(mlp_plan, mlp, embedded.X["train"][table_rows], _rescaled(outcomes, scale))
        mlp_seconds = time.perf_counter() - started
        mlp_auc, _ = _auc(mlp, X_test, test_eval, protocol, scale)
        out.append({"seed": seed, "share": share, "n_train": int(len(table_rows)),
                    "knn_auc": knn_auc, "knn_update_s": knn_seconds,
                    "knn_same_as_refit": bool(np.array_equal(knn_choices, fresh_choices)),
                    "mlp_auc": mlp_auc, "mlp_refit_s": mlp_seconds,
                    "knn_params": knn_params, "mlp_params": mlp_params})
        kept = table_rows
        print(json.dumps(out[-1]), flush=True)
    return out


def _rescaled(outcomes, scale):
    """Outcomes with costs in the units of the first half's scale (as the update sees)."""
    from dataclasses import replace

    return replace(outcomes, costs=outcomes.costs * outcomes.cost_scale / scale,
                   cost_scale=scale)


def part_new_model(embedded, protocol, seed) -> list[dict]:
    task = embedded.task
    train, test = task.splits["train"], task.splits["test"]
    scale = metrics.cost_scale(train.costs)
    oracle_train = best_models(train.scores, train.costs / scale, 0.0, "cheapest")
    held = int(np.bincount(oracle_train, minlength=train.m).argmax())
    keep = [j for j in range(train.m) if j != held]
    name = task.models[held].name
    rows = test.complete_rows()
    test_eval, X_test = test.subset(rows), embedded.X["test"][rows]
    lam_mid = _half_cost_lam(test_eval, protocol)
    lams = np.array([0.0, lam_mid])
    oracle = np.stack([best_models(test_eval.scores, test_eval.costs / scale, lam, "cheapest")
                       for lam in lams])
    plans = {r: _tuned(r, embedded, protocol, seed) for r in ("knn", "mlp")}
    inputs = TuningInputs.of(embedded)
    rs = seed_streams(seed).router
    S, C = train.scores, train.costs / scale
    knn = make_router(plans["knn"][0].router_cls, plans["knn"][1], rs)
    fit_router(plans["knn"][0], knn, inputs.X_train, _pool(inputs.train, S[:, keep], C[:, keep]))
    out = []
    for coverage in (0.0, *COVERAGE):
        chosen = np.random.default_rng([seed, 11]).permutation(train.n)[: int(coverage * train.n)]
        s_new, c_new = np.full(train.n, np.nan), np.full(train.n, np.nan)
        s_new[chosen], c_new[chosen] = S[chosen, held], C[chosen, held]
        scores = np.column_stack([S[:, keep], s_new])
        costs = np.column_stack([C[:, keep], c_new])
        row = {"seed": seed, "model": name, "coverage": coverage, "n_outcomes": int(len(chosen)),
               "oracle_share": [float((o == held).mean()) for o in oracle]}
        if coverage:
            started = time.perf_counter()
            knn.update_outcomes(np.zeros((0, inputs.X_train.shape[1]), np.float32), scores,
                                costs)
            row["knn_update_s"] = time.perf_counter() - started
        pool = _pool(inputs.train, scores, costs) if coverage else \
            _pool(inputs.train, S[:, keep], C[:, keep])
        started = time.perf_counter()
        mlp = make_router(plans["mlp"][0].router_cls, plans["mlp"][1], rs)
        fit_router(plans["mlp"][0], mlp, inputs.X_train, pool)
        row["mlp_refit_s"] = time.perf_counter() - started
        order = keep + [held]  # the routers' model j is the task's model order[j]
        for label, router in (("knn", knn), ("mlp", mlp)):
            choices = np.asarray(router.route_sweep(X_test, lams))
            row[f"{label}_share"] = [float((np.asarray(order)[c] == held).mean())
                                     for c in choices]
            full = np.asarray(order)[route_split(router, X_test, test_eval, protocol.lambdas,
                                                 scale)]
            row[f"{label}_auc"] = float(score_choices(test_eval, full, protocol.lambdas,
                                                      per_group=False)["auc"])
        out.append(row)
        print(json.dumps(row), flush=True)
    return out


def _pool(outcomes, scores, costs):
    from dataclasses import replace

    from routeharness.data.dataset import ModelInfo

    models = [ModelInfo(f"m{j}") for j in range(scores.shape[1])]
    return replace(outcomes, scores=scores, costs=costs, models=models)


def _half_cost_lam(data, protocol) -> float:
    """The sweep's lam where the oracle's mean cost first falls to half its lam=0 cost."""
    scale = metrics.cost_scale(data.costs)
    at0 = None
    for lam in protocol.lambdas:
        c = data.costs / scale
        chosen = best_models(data.scores, c, lam, "cheapest")
        mean = float(c[np.arange(data.n), chosen].mean())
        at0 = mean if at0 is None else at0
        if mean <= at0 / 2:
            return float(lam)
    return float(protocol.lambdas[-2])


def _mean(rows: list[dict], key: str, index: int | None = None) -> str:
    values = [r[key] if index is None else r[key][index] for r in rows if key in r]
    if not values:
        return "-"
    return f"{np.mean(values):.2f} ± {np.std(values):.2f}" if len(values) > 1 else \
        f"{values[0]:.2f}"


def _ms(rows: list[dict], key: str) -> str:
    values = [r[key] * 1000 for r in rows if key in r]
    return f"{np.median(values):.1f}" if values else "-"


def report(result: dict, md: Path, png: Path) -> None:
    """The tables (means ± std over seeds) in ``md`` and the curves in ``png``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from routeharness.results.plots import save_figure

    prompts, models = result["prompts"], result["new_model"]
    lines = [f"Task {result['task']}, seeds {result['seeds']}, wall {result['wall_seconds']:.0f} s, "
             f"load {result['load'][0]:.1f}.", "",
             "| share of train | n train | kNN updated: test AUC | kNN update ms | "
             "same as refit | mlp refitted: test AUC | mlp refit ms |",
             "|---:|---:|---:|---:|---|---:|---:|"]
    for share in result["steps"]:
        rows = [r for r in prompts if r["share"] == share]
        same = all(r["knn_same_as_refit"] for r in rows)
        lines.append(f"| {share:.1f} | {rows[0]['n_train']} | {_mean(rows, 'knn_auc')} | "
                     f"{_ms(rows, 'knn_update_s')} | {'yes' if same else 'NO'} | "
                     f"{_mean(rows, 'mlp_auc')} | {_ms(rows, 'mlp_refit_s')} |")
    name = models[0]["model"]
    lines += ["", f"New model `{name}` (held out, then added with outcomes on a share of the "
              "training prompts; shares of test prompts routed to it at lam = 0 and at the "
              "lam where the oracle's cost halves):", "",
              "| coverage | outcomes | oracle share (0 / mid) | kNN share (0 / mid) | kNN AUC | "
              "kNN update ms | mlp share (0 / mid) | mlp AUC | mlp refit ms |",
              "|---:|---:|---|---|---:|---:|---|---:|---:|"]
    for coverage in (0.0, *result["coverage"]):
        rows = [r for r in models if r["coverage"] == coverage]
        lines.append(
            f"| {coverage:.2f} | {rows[0]['n_outcomes']} | {_mean(rows, 'oracle_share', 0)} / "
            f"{_mean(rows, 'oracle_share', 1)} | {_mean(rows, 'knn_share', 0)} / "
            f"{_mean(rows, 'knn_share', 1)} | {_mean(rows, 'knn_auc')} | "
            f"{_ms(rows, 'knn_update_s')} | {_mean(rows, 'mlp_share', 0)} / "
            f"{_mean(rows, 'mlp_share', 1)} | {_mean(rows, 'mlp_auc')} | "
            f"{_ms(rows, 'mlp_refit_s')} |")
    md.write_text("\n".join(lines) + "\n", encoding="utf-8")
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    for key, label in (("knn_auc", "kNN, updated in place"), ("mlp_auc", "mlp, refitted")):
        means = [np.mean([r[key] for r in prompts if r["share"] == s]) for s in result["steps"]]
        left.plot(result["steps"], means, marker="o", label=label)
    left.set(xlabel="share of the training prompts", ylabel="test AUC",
             title="new prompts added in steps")
    left.legend()
    cover = [0.0, *result["coverage"]]
    for key, label in (("knn_auc", "kNN, updated"), ("mlp_auc", "mlp, refitted")):
        means = [np.mean([r[key] for r in models if r["coverage"] == c and key in r])
                 for c in cover]
        right.plot(cover, means, marker="o", label=label)
    right.set(xlabel="share of training prompts with the new model's outcome",
              ylabel="test AUC (full pool)", title=f"a new model: {name}")
    right.legend()
    save_figure(fig, png)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--task", default="routerbench")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--out", default=str(HERE / "results" / "maintenance.json"))
    parser.add_argument("--md", default=str(HERE / "results" / "maintenance_tables.md"))
    parser.add_argument("--png", default=str(HERE / "results" / "maintenance.png"))
    args = parser.parse_args()
    seeds = [int(s) for s in args.seeds.split(",")]
    protocol = Protocol(seeds=tuple(seeds), n_bootstrap=0)
    task = load_task(args.task)
    embedded = embed_task(task, get_encoder("minilm"), EmbeddingCache(None), Reporter())
    started = time.perf_counter()
    with one_torch_thread():
        prompts = [r for s in seeds for r in part_prompts(embedded, protocol, s)]
        models = [r for s in seeds for r in part_new_model(embedded, protocol, s)]
    result = {"task": args.task, "seeds": seeds, "steps": list(STEPS),
              "coverage": list(COVERAGE), "prompts": prompts, "new_model": models,
              "wall_seconds": time.perf_counter() - started, "load": os.getloadavg()}
    Path(args.out).write_text(json.dumps(result, indent=1), encoding="utf-8")
    report(result, Path(args.md), Path(args.png))
    print(f"saved {args.out}, {args.md} (tables) and {args.png}")


if __name__ == "__main__":
    main()
