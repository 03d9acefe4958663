"""Fit time of the learned routers per router and seed on the largest text task.

Usage: ``python benchmarks/train_time.py [--task routerdc] [--data-dir ../shared/data]
[--seeds 0,1,2] [--routers linear,mlp,mlp-select,routerdc,graphrouter,bandit]
[--out benchmarks/train_time.md]``

The default task, ``routerdc``, is the largest text task by training prompts (6,838); it
is not shipped, so it is read from ``--data-dir`` (default: ``ROUTEHARNESS_DATA``).

Embeddings come from the cache (``ROUTEHARNESS_CACHE``), so only ``fit`` is timed, with
each router's default hyper-parameters (one fit; tuning multiplies it by the grid size).
Target: under 3 minutes per router and seed on 2 CPU cores. Writes a Markdown report.

``--from-results FILE [FILE...]`` writes the report from result files of
``routeharness eval`` instead: the seconds of each run's final fit (the tuned
configuration) and of its whole tuning, as the harness recorded them.
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from pathlib import Path

import numpy as np


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", default="routerdc")
    parser.add_argument("--data-dir", default=os.environ.get("ROUTEHARNESS_DATA"),
                        help="folder of the upstream task data (routerdc needs it; "
                             "default: ROUTEHARNESS_DATA)")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--routers",
                        default="linear,mlp,mlp-select,routerdc,graphrouter,bandit")
    parser.add_argument("--out", default=str(Path(__file__).with_name("train_time.md")))
    parser.add_argument("--from-results", nargs="+", default=None, metavar="FILE",
                        help="report the fit times recorded in these result files")
    args = parser.parse_args()
    if args.from_results:
        report_from_results(args.from_results, args.task, args.routers.split(","),
                            Path(args.out))
        return

    from routeharness.common.progress import Reporter
    from routeharness.data.tasks import load_task
    from routeharness.embedding.cache import EmbeddingCache
    from routeharness.embedding.embed import embed_task
    from routeharness.embedding.encoders import get_encoder
    from routeharness.evaluation import metrics
    from routeharness.plugins.registry import get_registry

    task = load_task(args.task, data_dir=args.data_dir)
    cache = EmbeddingCache(os.environ.get("ROUTEHARNESS_CACHE"))
    embedded = embed_task(task, get_encoder("minilm"), cache, Reporter())
    train = task.splits["train"]
    outcomes = train.outcomes(metrics.cost_scale(train.costs), task.group_descriptions,
                              embedded.encode_text)
    X = embedded.X["train"]
    load_before = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    rows = []
    for name in args.routers.split(","):
        cls = get_registry("router").get(name).load()
        # an untimed fit on 64 prompts first: library imports (torch_geometric takes
        # seconds) are paid once per process, not per fit
        cls(random_state=0).fit(X[:64], outcomes.subset(np.arange(64)))
        for seed in (int(s) for s in args.seeds.split(",")):
            started = time.perf_counter()
            cls(random_state=seed).fit(X, outcomes)
            seconds = time.perf_counter() - started
            rows.append((name, seed, seconds))
            print(f"{name} seed {seed}: {seconds:.1f} s", flush=True)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    lines = [
        "# Training time of the learned routers",
        "",
        f"Task `{args.task}`: {outcomes.n} training prompts x {outcomes.m} models, "
        f"MiniLM embeddings ({X.shape[1]}-d) from the cache; default hyper-parameters; "
        f"one `fit` per router and seed. Machine: {os.cpu_count()} CPU cores, "
        f"{platform.processor() or platform.machine()}, 1-minute load average "
        f"{load_before:.1f} before and {load:.1f} after (2.0 means both cores busy). Torch "
        "runs on one thread inside each fit. Target: < 180 s per router and seed.",
        "",
        "| router | seed | fit (s) | under 3 min |",
        "|---|---|---|---|",
        *[f"| {n} | {s} | {t:.1f} | {'yes' if t < 180 else 'NO'} |" for n, s, t in rows],
        "",
        "Seconds are wall time of `fit` alone (embeddings cached; the tuning that precedes "
        "it in `routeharness eval` multiplies it by the grid size).",
        "",
        "Reproduce: `ROUTEHARNESS_CACHE=... python benchmarks/train_time.py`.",
    ]
    Path(args.out).write_text("\n".join(lines) + "\n")
    print(f"wrote {args.out}")


def report_from_results(files: list[str], task: str, routers: list[str], out: Path) -> None:
    """The report from ``routeharness eval`` result files (merged if several)."""
    from routeharness.results.records import ResultSet
    from routeharness.results.sets import merge_results

    loaded = [(f, ResultSet.from_json(f)) for f in files]
    result = merge_results(loaded) if len(loaded) > 1 else loaded[0][1]
    reference = result.tasks.get(task)
    if reference is None:
        raise SystemExit(f"task {task!r} is not in {', '.join(files)}")
    records = sorted((r for r in result.records_of(task) if r.router in routers),
                     key=lambda r: (routers.index(r.router), r.seed))
    platform_info = result.platform
    lines = [
        "# Training time of the learned routers",
        "",
        f"Task `{task}`: {reference.sizes['train']} training prompts x "
        f"{len(reference.models)} models, {result.encoder.name} embeddings from "
        f"the cache. Measured inside `routeharness eval` (the text matrix, "
        f"benchmarks/text_matrix.md): *fit* is the final fit of the tuned configuration on "
        f"train, *tuning* all fits and validation routing of the grid before it. Machine: "
        f"{platform_info.get('cpus')} CPU cores, {platform_info.get('machine')}, torch "
        f"{platform_info.get('torch')}; the matrix runs its lanes at once, so other fits "
        "shared the machine for most of the run. "
        "Torch runs on one thread inside each fit. Target: fit < 180 s per router and seed.",
        "",
        "| router | seed | fit (s) | tuning (s) | configurations | under 3 min |",
        "|---|---|---|---|---|---|",
        *[f"| {r.router} | {r.seed} | {r.timings['fit_s']:.1f} | "
          f"{r.timings['tune_s']:.1f} | {max(1, len(r.tuning))} | "
          f"{'yes' if r.timings['fit_s'] < 180 else 'NO'} |" for r in records],
        "",
        "Reproduce: `python benchmarks/train_time.py --from-results "
        "benchmarks/results/text_matrix.json` (after benchmarks/text_matrix.sh); "
        "`python benchmarks/train_time.py` alone times fresh fits with default "
        "hyper-parameters.",
    ]
    out.write_text("\n".join(lines) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
