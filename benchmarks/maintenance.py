"""The paper's maintenance claim on real data: a kNN router is kept current by adding
new evaluations to its lookup table (``update_outcomes``, what ``routeharness update``
calls), a parametric router by refitting.

Part 1 (new prompts): start from half of a task's training prompts (a seeded order),
add the rest in steps of 10%: kNN updated in place against mlp refitted at each step with
the configuration tuned at the start (both tuned once on validation with the first half).
Test AUC and wall time per step; kNN's updated routes are checked against a kNN fitted
from scratch on the same rows (they must be identical).

Part 2 (a new model): one model held out of the pool (the one the oracle picks most
often at lam = 0 on train), kNN tuned on validation without it, then the model added with
outcomes on 5%, 10% and 25% of the training prompts (every other cell missing): kNN with
the sparse rule off (``prior`` 0), on (the default ``prior`` 1 with the k and weighting
tuned before the model came, what ``routeharness update`` gives) and tuned on validation
with the sparse table (k, weighting and prior), against kNN without the model: test AUC,
how often each chooses the new model on test (at lam = 0 and at the lam where the
oracle's cost is half its maximum) and how well it does on the prompts routed to it.
Every kNN here is fitted on the table an update would hold (``update_outcomes`` gives
the same router as a fit on it: part 1 checks that).

Run: ``python benchmarks/maintenance.py [--task routerbench] [--seeds 0,1,2] [--parts
prompts,new-model] [--new-model-tasks routerbench,alpacaeval]``; writes
benchmarks/results/maintenance.json, maintenance_tables.md and maintenance.png (part 1),
maintenance_new_model.json and maintenance_new_model_tables.md (part 2); the reading is
benchmarks/maintenance.md.
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


def _with_models(embedded, order, train_new=None):
    """The task with its models in ``order`` (every split); ``train_new``: (scores,
    costs) replacing the last model's training column (NaN where missing)."""
    from dataclasses import replace

    task = embedded.task
    splits = {}
    for name, data in task.splits.items():
        scores, costs = data.scores[:, order].copy(), data.costs[:, order].copy()
        if name == "train" and train_new is not None:
            scores[:, -1], costs[:, -1] = train_new
        splits[name] = replace(data, scores=scores, costs=costs,
                               models=[data.models[j] for j in order])
    return replace(embedded, task=replace(task, splits=splits))


def part_new_model(embedded, protocol, seed) -> list[dict]:
    """A held-out model added with outcomes on a share of the training prompts: kNN with
    the sparse rule off (prior 0) and on (the default prior, 1, with the k and weighting
    tuned before the model came: what ``update`` gives), kNN tuned on validation with the
    sparse table (k, weighting and prior), against kNN without the model."""
    from routeharness_knn.router import KNNRouter

    task = embedded.task
    train, test = task.splits["train"], task.splits["test"]
    scale = metrics.cost_scale(train.costs)
    oracle_train = best_models(train.scores, train.costs / scale, 0.0, "cheapest")
    held = int(np.bincount(oracle_train, minlength=train.m).argmax())
    keep = [j for j in range(train.m) if j != held]
    order = np.asarray(keep + [held])  # the routers' model j is the task's model order[j]
    name = task.models[held].name
    rows = test.complete_rows()
    test_eval, X_test = test.subset(rows), embedded.X["test"][rows]
    lam_mid = _half_cost_lam(test_eval, protocol)
    lams = np.array([0.0, lam_mid])
    oracle = np.stack([best_models(test_eval.scores, test_eval.costs / scale, lam, "cheapest")
                       for lam in lams])
    rs = seed_streams(seed).router
    without = _with_models(embedded, keep)
    plan, params = _tuned("knn", without, protocol, seed)  # before the model comes
    inputs = TuningInputs.of(without)
    base = make_router(plan.router_cls, params, rs)
    fit_router(plan, base, inputs.X_train, inputs.train)
    base_choices = np.asarray(order[:-1])[np.asarray(base.route_sweep(X_test, lams))]
    base_auc = _scored(base, X_test, test_eval, protocol, order[:-1])
    mean_test = float(test_eval.scores[:, held].mean())
    out = [{"seed": seed, "model": name, "coverage": 0.0, "n_outcomes": 0,
            "oracle_share": [float((o == held).mean()) for o in oracle],
            "lam_mid": float(lam_mid), "model_test_mean": mean_test,
            "params": {"without": params},
            "without_auc": base_auc}]
    print(json.dumps(out[-1]), flush=True)
    S, C = train.scores, train.costs
    for coverage in COVERAGE:
        chosen = np.random.default_rng([seed, 11]).permutation(train.n)[: int(coverage * train.n)]
        s_new, c_new = np.full(train.n, np.nan), np.full(train.n, np.nan)
        s_new[chosen], c_new[chosen] = S[chosen, held], C[chosen, held]
        sparse = _with_models(embedded, list(order), (s_new, c_new))
        fitted = TuningInputs.of(sparse)
        started = time.perf_counter()
        tuned_plan, tuned = _tuned("knn", sparse, replace_protocol(protocol), seed)
        tune_s = time.perf_counter() - started
        variants = {"off": {**params, "prior": 0.0}, "on": dict(params), "tuned": tuned}
        given = chosen[~np.isnan(S[chosen, held])]  # a few training prompts have no outcome
        row = {"seed": seed, "model": name, "coverage": coverage,
               "n_outcomes": int(len(given)), "sample_mean": float(np.mean(S[given, held])),
               "oracle_share": [float((o == held).mean()) for o in oracle],
               "without_auc": base_auc, "tune_s": tune_s,
               "params": {k: v for k, v in variants.items()}}
        for label, config in variants.items():
            router = KNNRouter(**{**config, "random_state": rs})
            fit_router(tuned_plan, router, fitted.X_train, fitted.train)
            row[f"{label}_prior"] = float(router.prior)
            choices = order[np.asarray(router.route_sweep(X_test, lams))]
            picked = choices == held
            row[f"{label}_share"] = [float(p.mean()) for p in picked]
            row[f"{label}_quality"] = [
                float(test_eval.scores[p, held].mean()) if p.any() else None for p in picked]
            # what kNN without the model got on the prompts now routed to it
            row[f"{label}_quality_without"] = [
                float(test_eval.scores[p, c[p]].mean()) if p.any() else None
                for p, c in zip(picked, base_choices)]
            row[f"{label}_auc"] = _scored(router, X_test, test_eval, protocol, order)
        out.append(row)
        print(json.dumps(row), flush=True)
    return out


def replace_protocol(protocol):
    """The protocol with every configuration of kNN's sparse grid tuned (42 > 24)."""
    from dataclasses import replace

    return replace(protocol, max_configs=max(protocol.max_configs, 64))


def _scored(router, X_test, test_eval, protocol, order) -> float:
    full = np.asarray(order)[route_split(router, X_test, test_eval, protocol.lambdas, 1.0)]
    return float(score_choices(test_eval, full, protocol.lambdas, per_group=False)["auc"])


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
    """Part 1's table (means ± std over seeds) in ``md`` and its curves in ``png``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from routeharness.results.plots import save_figure

    prompts = result["prompts"]
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
    md.write_text("\n".join(lines) + "\n", encoding="utf-8")
    fig, left = plt.subplots(1, 1, figsize=(5, 4))
    for key, label in (("knn_auc", "kNN, updated in place"), ("mlp_auc", "mlp, refitted")):
        means = [np.mean([r[key] for r in prompts if r["share"] == s]) for s in result["steps"]]
        left.plot(result["steps"], means, marker="o", label=label)
    left.set(xlabel="share of the training prompts", ylabel="test AUC",
             title="new prompts added in steps")
    left.legend()
    save_figure(fig, png)


VARIANTS = (("off", "rule off (prior 0)"), ("on", "rule on (prior 1, as updated)"),
            ("tuned", "rule tuned on validation"))


def _pair(values) -> str:
    return " / ".join("-" if v is None else f"{v:.2f}" for v in values)


def _seed_means(rows: list[dict], key: str) -> list[float | None]:
    """Each lam's mean over the seeds of ``key`` (a pair), leaving out seeds with none."""
    out = []
    for i in range(len(rows[0][key])):
        values = [r[key][i] for r in rows if r[key][i] is not None]
        out.append(float(np.mean(values)) if values else None)
    return out


def report_new_model(result: dict, md: Path) -> None:
    """Part 2's tables, one pair per task (seed 0 unless more were run: means)."""
    lines = [f"Seeds {result['seeds']}, wall {result['wall_seconds']:.0f} s, load "
             f"{result['load'][0]:.1f} (1-minute average at the end).", ""]
    for task, rows in result["tasks"].items():
        base = [r for r in rows if r["coverage"] == 0.0]
        name = base[0]["model"]
        lines += [f"### {task}: new model `{name}`", "",
                  f"Its mean test score {base[0]['model_test_mean']:.3f}; the oracle routes "
                  f"{_pair(base[0]['oracle_share'])} of test prompts to it (lam = 0 / mid, mid "
                  f"= {base[0]['lam_mid']:g}). kNN without it: test AUC "
                  f"{_mean(base, 'without_auc')} ({base[0]['params']['without']}).", "",
                  "| coverage | outcomes (seed 0) | their mean (seed 0) | AUC without the model | "
                  + " | ".join(f"AUC, {label}" for _, label in VARIANTS) + " | tuned config |",
                  "|---:|---:|---:|---:|" + "---:|" * len(VARIANTS) + "---|"]
        for coverage in result["coverage"]:
            at = [r for r in rows if r["coverage"] == coverage]
            tuned = "; ".join(
                f"seed {r['seed']}: k={r['params']['tuned']['k']}, "
                f"{r['params']['tuned']['weighting']}, prior={r['params']['tuned']['prior']:g}"
                for r in at)
            lines.append(f"| {coverage:.2f} | {at[0]['n_outcomes']} | "
                         f"{at[0]['sample_mean']:.3f} | {_mean(at, 'without_auc')} | "
                         + " | ".join(_mean(at, f"{v}_auc") for v, _ in VARIANTS)
                         + f" | {tuned} |")
        lines += ["", "How often it is chosen on test and how well (lam = 0 / mid; means over "
                  "the seeds that chose it): its share of the routes, its mean score on the "
                  "prompts routed to it, and the mean score kNN without it got on those same "
                  "prompts.", "",
                  "| coverage | router | share | its quality when chosen | "
                  "without it, on those prompts |", "|---:|---|---|---|---|"]
        for coverage in result["coverage"]:
            at = [r for r in rows if r["coverage"] == coverage]
            for v, label in VARIANTS:
                lines.append(f"| {coverage:.2f} | {label} | "
                             f"{_pair(_seed_means(at, f'{v}_share'))} | "
                             f"{_pair(_seed_means(at, f'{v}_quality'))} | "
                             f"{_pair(_seed_means(at, f'{v}_quality_without'))} |")
        lines.append("")
    md.write_text("\n".join(lines), encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--task", default="routerbench")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--parts", default="prompts,new-model",
                        help="prompts (part 1), new-model (part 2), or both")
    parser.add_argument("--new-model-tasks", default=None,
                        help="tasks of part 2, comma-separated (default: --task)")
    parser.add_argument("--out", default=str(HERE / "results" / "maintenance.json"))
    parser.add_argument("--md", default=str(HERE / "results" / "maintenance_tables.md"))
    parser.add_argument("--png", default=str(HERE / "results" / "maintenance.png"))
    parser.add_argument("--new-model-out",
                        default=str(HERE / "results" / "maintenance_new_model.json"))
    parser.add_argument("--new-model-md",
                        default=str(HERE / "results" / "maintenance_new_model_tables.md"))
    args = parser.parse_args()
    seeds = [int(s) for s in args.seeds.split(",")]
    parts = {p.strip() for p in args.parts.split(",")}
    protocol = Protocol(seeds=tuple(seeds), n_bootstrap=0)

    def embedded_task(name):
        return embed_task(load_task(name), get_encoder("minilm"), EmbeddingCache(None),
                          Reporter())

    if "prompts" in parts:
        embedded = embedded_task(args.task)
        started = time.perf_counter()
        with one_torch_thread():
            prompts = [r for s in seeds for r in part_prompts(embedded, protocol, s)]
        result = {"task": args.task, "seeds": seeds, "steps": list(STEPS), "prompts": prompts,
                  "wall_seconds": time.perf_counter() - started, "load": os.getloadavg()}
        Path(args.out).write_text(json.dumps(result, indent=1), encoding="utf-8")
        report(result, Path(args.md), Path(args.png))
        print(f"saved {args.out}, {args.md} (table) and {args.png}")
    if "new-model" in parts:
        tasks = (args.new_model_tasks or args.task).split(",")
        started = time.perf_counter()
        rows = {}
        for name in tasks:
            embedded = embedded_task(name)
            rows[name] = [r for s in seeds for r in part_new_model(embedded, protocol, s)]
        result = {"seeds": seeds, "coverage": list(COVERAGE), "tasks": rows,
                  "wall_seconds": time.perf_counter() - started, "load": os.getloadavg()}
        Path(args.new_model_out).write_text(json.dumps(result, indent=1), encoding="utf-8")
        report_new_model(result, Path(args.new_model_md))
        print(f"saved {args.new_model_out} and {args.new_model_md}")


if __name__ == "__main__":
    main()
