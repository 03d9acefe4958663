"""Exact against approximate kNN search at scale: test AUC (eval's own path), recall,
build time and the load time of a saved router folder (issue 22, item 3).

Usage: ``python benchmarks/approx_auc.py [--n 1000000] [--seed 12] [--out rows.jsonl]
[--configs knn,knn:index=ivf,...] [--timeout 7200]``; ``--render rows.jsonl`` prints the
Markdown table of a (possibly interrupted) run.

Data: ``routeharness.data.synth.synthetic_arrays(n, 2000, 2000, n_models=20, dim=384,
n_clusters=50, locality=0.8, seed=12)`` (``benchmarks/scale.py``'s task; ``--seed 0`` is
the table ``routeharness data synth`` writes by default, which scale.md's end-to-end
``eval`` at 10^6 read), built in memory
as a ``RoutingTask`` and an ``EmbeddedTask`` (no table written or read: the 10^6 task's
load and validation took ~480 s of each ``eval``). Each configuration runs in its own
process, one after another: ``routeharness.evaluation.run.route_one`` for seed 0 with
the default ``Protocol`` (eval's tuning, tie rules, refit and bootstrap), then, from a
cleared index cache, the tuned router fitted again (the build time: ivf's k-means and
nprobe calibration, hnsw's graph), its recall@k on the test prompts against the exact
search for the tuned k, its state written as a saved router writes it (``write_state``)
and read back (``read_state`` + ``set_state``: the load time, kept index included).
Progress goes to stderr. Each row (with tuning's validation AUC per configuration) is
appended to ``--out`` as one JSON line as soon as it is done, with the load average
before and after it.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve()
CONFIGS = "knn,knn:index=ivf,knn:index=ivf,recall=0.99,knn:index=hnsw"
SYNTH = {"n_models": 20, "dim": 384, "n_clusters": 50, "locality": 0.8}


def _split_configs(text: str) -> list[str]:
    """``knn,knn:index=ivf,recall=0.99`` -> the specs (a part with ``=`` and no ``:``
    continues the previous spec's parameters)."""
    specs: list[str] = []
    for part in text.split(","):
        if specs and "=" in part and ":" not in part:
            specs[-1] += "," + part
        else:
            specs.append(part)
    return specs


def embedded_task(n: int, seed: int = 12, n_eval: int = 2000):
    """The synthetic task of ``n`` training prompts as eval's ``EmbeddedTask``."""
    from routeharness.data.dataset import ModelInfo, RoutingData, RoutingTask
    from routeharness.data.synth import synthetic_arrays
    from routeharness.embedding.embed import EmbeddedTask

    splits, prices = synthetic_arrays(n, n_eval, n_eval, **SYNTH, seed=seed)
    models = [ModelInfo(f"m{j}", description=f"synthetic model {j}, {p:.4g} USD per call")
              for j, p in enumerate(prices)]
    data = {}
    for split, part in splits.items():
        rows = part.X.shape[0]
        data[split] = RoutingData(
            ids=[f"{split}-{i}" for i in range(rows)],
            prompts=[f"Synthetic {split} prompt {i}." for i in range(rows)],
            groups=np.array([f"g{c}" for c in part.cluster]), scores=part.scores,
            costs=part.costs, models=models, split=split)
    task = RoutingTask(name="synthetic", version=1, splits=data,
                       source=f"synthetic_arrays({n}, {SYNTH}, seed={seed})",
                       group_descriptions={f"g{c}": f"synthetic topic {c}"
                                           for c in range(SYNTH["n_clusters"])})
    return EmbeddedTask(task=task, X={s: p.X for s, p in splits.items()}, encoded=0,
                        cached=0)


def child(spec: str, n: int, seed: int) -> dict:
    from routeharness_knn.search import (
        ExactIndex,
        _recall,
        clear_index_cache,
        normalise,
        search,
    )

    from routeharness.evaluation.metrics import cost_scale
    from routeharness.evaluation.protocol import Protocol, seed_streams
    from routeharness.evaluation.run import route_one
    from routeharness.evaluation.tuning import make_router, plan_routers
    from routeharness.routers.state import read_state, write_state

    started = time.perf_counter()
    embedded = embedded_task(n, seed)
    data_s = time.perf_counter() - started
    print(f"  data: {data_s:.0f} s", file=sys.stderr, flush=True)
    protocol = Protocol()
    (plan,) = plan_routers([spec], references=False)
    started = time.perf_counter()

    def advance(steps: int, text: str | None = None) -> None:
        if text:
            print(f"  [{time.perf_counter() - started:6.0f} s] {text}", file=sys.stderr,
                  flush=True)

    record = route_one(plan, embedded, 0, protocol, advance).record
    eval_s = time.perf_counter() - started
    metrics = record.metrics
    tuned = {k: record.params[k] for k in ("k", "weighting", "prior") if k in record.params}
    print(f"  eval: {eval_s:.0f} s, AUC {metrics.auc:.2f} {metrics.auc_ci95}, {tuned}",
          file=sys.stderr, flush=True)
    # the tuned router again, from a cleared cache: its build, recall, save and load
    train = embedded.task.splits["train"]
    outcomes = train.outcomes(cost_scale(train.costs), embedded.task.group_descriptions,
                              None, None)
    params = {k: v for k, v in record.params.items() if k != "random_state"}
    clear_index_cache()
    router = make_router(plan.router_cls, params, seed_streams(0).router)
    started = time.perf_counter()
    router.fit(embedded.X["train"], outcomes)
    build_s = time.perf_counter() - started
    index_plan = router.index_plan_
    k = min(int(router.k), router.index_.ntotal)
    queries = normalise(embedded.X["test"])
    if index_plan.kind == "flat":
        test_recall = 1.0  # the exact search itself
    else:
        _, exact = ExactIndex(normalise(embedded.X["train"])).search(queries, k)
        _, found = search(router.index_, index_plan, queries, k, k)
        test_recall = _recall(exact, found)
    with tempfile.TemporaryDirectory(dir="/tmp") as tmp:
        started = time.perf_counter()
        hashes = write_state(router.get_state(), tmp)
        save_s = time.perf_counter() - started
        state_mb = sum((Path(tmp) / name).stat().st_size for name in hashes) / 1e6
        del router
        clear_index_cache()
        started = time.perf_counter()
        loaded = make_router(plan.router_cls, params, seed_streams(0).router)
        loaded.set_state(read_state(tmp, hashes))
        load_s = time.perf_counter() - started
        same_plan = loaded.index_plan_ == index_plan
    return {"spec": spec, "n": n, "data_seed": seed, "auc": round(metrics.auc, 2),
            "auc_ci95": [round(v, 2) for v in (metrics.auc_ci95 or [])],
            "tuned": tuned, "search": record.search,
            "test_recall_at_k": round(test_recall, 4), "k": k,
            "eval_s": round(eval_s, 1), "tune_s": round(record.timings["tune_s"], 1),
            "fit_s": round(record.timings["fit_s"], 1),
            "route_s": round(record.timings["route_s"], 1), "data_s": round(data_s, 1),
            "build_s": round(build_s, 1), "save_s": round(save_s, 1),
            "load_s": round(load_s, 1), "state_mb": round(state_mb, 1),
            "loaded_plan_same": bool(same_plan),
            "tuning": [[row.params.get("k"), row.params.get("weighting"),
                        round(row.validation_auc, 3)] for row in record.tuning]}


def _load() -> str:
    with open("/proc/loadavg") as handle:
        return " ".join(handle.read().split()[:3])


def render(path: str) -> str:
    rows = [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]
    flat = next((r for r in rows if r.get("spec") == "knn" and "auc" in r), None)
    out = ["| configuration | test AUC [95% CI] | AUC - flat | tuned | nprobe / ef (sample "
           "recall, target) | test recall@k | build s | load s (saved folder) | build / load "
           "| state MB | eval s (tune + fit + route) | load avg before / after |",
           "|---|---|---:|---|---|---:|---:|---:|---:|---:|---:|---|"]
    for r in rows:
        if "error" in r:
            out.append(f"| `{r['spec']}` | {r['error']} | | | | | | | | | | "
                       f"{r['load_before']} / {r.get('load_after', '')} |")
            continue
        s = r.get("search") or {}
        if s.get("kind") == "ivf":
            knob = (f"nprobe {s['nprobe']} of {s['nlist']} ({s.get('recall')}, "
                    f"{s.get('target_recall')})")
        elif s.get("kind") == "hnsw":
            knob = f"ef {s['ef_search']} (M {s['m']}, efC {s['ef_construction']})"
        else:
            knob = "exact"
        gap = f"{r['auc'] - flat['auc']:+.2f}" if flat else ""
        ci = r["auc_ci95"]
        tuned = ", ".join(f"{k}={v}" for k, v in r["tuned"].items())
        out.append(f"| `{r['spec']}` | {r['auc']:.2f} [{ci[0]:.2f}, {ci[1]:.2f}] | {gap} | "
                   f"{tuned} | {knob} | {r['test_recall_at_k']} | {r['build_s']} | "
                   f"{r['load_s']} | {r['build_s'] / max(r['load_s'], 0.1):.1f}x | "
                   f"{r['state_mb']} | {r['eval_s']:.0f} | "
                   f"{r['load_before']} / {r['load_after']} |")
    return "\n".join(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=12, help="the synthetic data's seed")
    parser.add_argument("--configs", default=CONFIGS)
    parser.add_argument("--out", default="approx_auc.jsonl")
    parser.add_argument("--timeout", type=int, default=7200)
    parser.add_argument("--render", metavar="JSONL")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.render:
        print(render(args.render))
        return
    if args.child is not None:
        print(json.dumps(child(args.child, args.n, args.seed)), flush=True)
        return
    for spec in _split_configs(args.configs):
        before = _load()
        print(f"{time.strftime('%H:%M:%S')} {spec} at n={args.n:,}, data seed {args.seed} "
              f"(load {before})",
              flush=True)
        command = [sys.executable, str(HERE), "--n", str(args.n), "--seed", str(args.seed),
                   "--child", spec]
        try:
            done = subprocess.run(command, stdout=subprocess.PIPE, text=True,
                                  timeout=args.timeout)
            lines = done.stdout.strip().splitlines()
            row = json.loads(lines[-1]) if done.returncode == 0 and lines else \
                {"spec": spec, "n": args.n, "error": f"exit {done.returncode}"}
        except subprocess.TimeoutExpired:
            row = {"spec": spec, "n": args.n, "error": f"not finished in {args.timeout} s"}
        row.update(load_before=before, load_after=_load(),
                   finished=time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()))
        print(json.dumps(row), flush=True)
        with open(args.out, "a") as handle:
            handle.write(json.dumps(row) + "\n")
    print(render(args.out))


if __name__ == "__main__":
    main()
