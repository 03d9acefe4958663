"""Fit time of the learned routers per router and seed on the largest text task.

Usage: ``python benchmarks/train_time.py [--task routerdc] [--seeds 0,1,2]
[--routers linear,mlp,mlp-select,routerdc,graphrouter,bandit] [--out benchmarks/train_time.md]``

The default task, ``routerdc``, is the largest text task by training prompts (6,838).

Embeddings come from the cache (``ROUTEHARNESS_CACHE``), so only ``fit`` is timed, with
each router's default hyper-parameters (one fit; tuning multiplies it by the grid size).
Target: under 3 minutes per router and seed on 2 CPU cores. Writes a Markdown report.
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
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--routers",
                        default="linear,mlp,mlp-select,routerdc,graphrouter,bandit")
    parser.add_argument("--out", default=str(Path(__file__).with_name("train_time.md")))
    args = parser.parse_args()

    from routeharness import metrics
    from routeharness.encoders import EmbeddingCache, get_encoder
    from routeharness.evaluate import Reporter, embed_task
    from routeharness.registry import get_registry
    from routeharness.tasks import load_task

    task = load_task(args.task)
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


if __name__ == "__main__":
    main()
