"""A saved kNN router's approximate index: loaded (``index.safetensors``, faiss's bytes)
against built again (what loading did before the index was kept), with its build time.

Usage: ``python benchmarks/saved_index.py [--sizes 100000] [--kinds ivf,hnsw]
[--queries 2000] [--k 100] [--dim 384] [--clusters 50] [--models 20] [--timeout 600]``.

Data: ``routeharness.data.synth.synthetic_arrays`` (seed 12, locality 0.8), as
``benchmarks/scale.py``. Each (size, kind) runs in its own process: ``fit`` (the build,
ivf's nprobe calibration included), the state written as a saved router writes it
(``write_state``: ``state.safetensors``, ``state.json``, ``index.safetensors``), then,
each from a cleared index cache: ``read_state`` + ``set_state`` with the kept index
(load), and the same state without it (the build on load that a saved router did before),
and whether the loaded router routes the test prompts exactly as the fitted one (every
lam of a small sweep). Prints one JSON line per row, and the Markdown table at the end.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

import numpy as np

HERE = Path(__file__).resolve()


def child(args: argparse.Namespace) -> None:
    from routeharness_knn.router import KNNRouter
    from routeharness_knn.search import clear_index_cache

    from routeharness.data.synth import synthetic_arrays
    from routeharness.routers.state import INDEX_FILE, read_state, write_state

    n, kind = args.n, args.kind
    splits, _ = synthetic_arrays(n, 1, args.queries, n_models=args.models, dim=args.dim,
                                 n_clusters=args.clusters, locality=0.8, seed=12)
    train, Q = splits["train"], splits["test"].X
    outcomes = SimpleNamespace(n=n, m=args.models, scores=train.scores, costs=train.costs)
    KNNRouter(k=5, index=kind).fit(train.X[:2000], SimpleNamespace(  # warm-up: imports
        n=2000, m=args.models, scores=train.scores[:2000], costs=train.costs[:2000]))
    clear_index_cache()
    router = KNNRouter(k=args.k, index=kind)
    started = time.perf_counter()
    router.fit(train.X, outcomes)
    build_s = time.perf_counter() - started
    lams = np.array([0.0, 0.1, 1.0, 10.0])
    expected = router.route_sweep(Q, lams)
    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        hashes = write_state(router.get_state(), tmp)
        save_s = time.perf_counter() - started
        index_mb = (Path(tmp) / INDEX_FILE).stat().st_size / 1e6
        state_mb = sum((Path(tmp) / name).stat().st_size for name in hashes) / 1e6
        plan = router.index_plan_
        del router
        clear_index_cache()
        started = time.perf_counter()
        loaded = KNNRouter(k=args.k, index=kind).set_state(read_state(tmp, hashes))
        load_s = time.perf_counter() - started
        same = bool(np.array_equal(loaded.route_sweep(Q, lams), expected))
        del loaded
        clear_index_cache()
        state = read_state(tmp, hashes)
        started = time.perf_counter()
        values = {k: v for k, v in state.values.items() if k != "index_check_"}
        KNNRouter(k=args.k, index=kind).set_state(replace(state, values=values, indexes={}))
        rebuild_s = time.perf_counter() - started
    print(json.dumps({"n": n, "kind": kind, "plan": {k: v for k, v in plan.to_dict().items()
                                                     if v is not None and k not in
                                                     ("kind", "n")},
                      "build_s": round(build_s, 2), "save_s": round(save_s, 2),
                      "load_s": round(load_s, 2), "rebuild_on_load_s": round(rebuild_s, 2),
                      "index_mb": round(index_mb, 1), "state_mb": round(state_mb, 1),
                      "routes_identical": same}), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="100000")
    parser.add_argument("--kinds", default="ivf,hnsw")
    parser.add_argument("--queries", type=int, default=2000)
    parser.add_argument("--k", type=int, default=100)
    parser.add_argument("--dim", type=int, default=384)
    parser.add_argument("--clusters", type=int, default=50)
    parser.add_argument("--models", type=int, default=20)
    parser.add_argument("--timeout", type=int, default=600)
    parser.add_argument("--n", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--kind", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.n is not None:
        child(args)
        return
    rows = []
    for n in (int(s) for s in args.sizes.split(",")):
        for kind in args.kinds.split(","):
            with open("/proc/loadavg") as handle:
                load = handle.read().split()[0]
            command = [sys.executable, str(HERE), "--n", str(n), "--kind", kind,
                       *(f"--{name}={getattr(args, name)}" for name in
                         ("queries", "k", "dim", "clusters", "models"))]
            try:
                done = subprocess.run(command, capture_output=True, text=True,
                                      timeout=args.timeout)
                line = done.stdout.strip().splitlines()[-1] if done.returncode == 0 else \
                    json.dumps({"n": n, "kind": kind, "error": done.stderr.strip()[-300:]})
            except subprocess.TimeoutExpired:
                line = json.dumps({"n": n, "kind": kind,
                                   "error": f"not finished in {args.timeout} s"})
            row = {**json.loads(line), "load_before": load}
            print(json.dumps(row), flush=True)
            rows.append(row)
    print("\n| n train | index | settings | build s | load s (kept index) | load s (built "
          "again) | build / load | index MB | state MB | routes identical | load before |")
    print("|---:|---|---|---:|---:|---:|---:|---:|---:|---|---:|")
    for r in rows:
        if "error" in r:
            print(f"| {r['n']:,} | {r['kind']} | {r['error']} | | | | | | | | "
                  f"{r['load_before']} |")
            continue
        print(f"| {r['n']:,} | {r['kind']} | {json.dumps(r['plan'])} | {r['build_s']} | "
              f"{r['load_s']} | {r['rebuild_on_load_s']} | "
              f"{r['build_s'] / max(r['load_s'], 1e-3):.0f}x | {r['index_mb']} | "
              f"{r['state_mb']} | {r['routes_identical']} | {r['load_before']} |")


if __name__ == "__main__":
    main()
