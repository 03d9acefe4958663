"""kNN search at scale: this project's ``flat``, ``ivf`` and ``hnsw`` indexes against
scikit-learn's NearestNeighbors (brute force, cosine; RouterBench's kNN) and
KNeighborsClassifier (LLMRouter's kNN router), timed side by side in one process.

Usage: ``python benchmarks/knn_index.py [--sizes 10000,100000,1000000]
[--ivf-up-to 1000000] [--hnsw-up-to 100000] [--queries 2000] [--k 100] [--dim 384]
[--out benchmarks/knn_index.md]``

Data: clustered synthetic unit vectors (``--clusters`` centres on the sphere, each
cluster spread along ``--spread-dim`` directions of its own, a little noise in all,
renormalised), the test prompts drawn from the same clusters; ``--models``
random 0/1 outcomes with costs, so each method does a router's whole job: fit, then
route the test prompts at lambda 0 (neighbour means for ``knn`` and NearestNeighbors,
a vote for KNeighborsClassifier on each training prompt's best model). Recall@k is the
share of flat's k neighbours each index returns, measured on the same queries. Sizes
above ``--ivf-up-to``/``--hnsw-up-to`` skip that index (hnsw's one-thread build takes
about 20 s per 10^5 prompts here, so 10^6 would not fit the run's 8 minutes on 2
cores). A small untimed warm-up runs every method first. Writes a Markdown report.
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np


def clustered(n: int, centres: np.ndarray, bases: np.ndarray,
              rng: np.random.Generator) -> np.ndarray:
    """(n, dim) float32 unit rows: a random cluster's centre, plus a spread along that
    cluster's own few directions (``bases``: clusters x r x dim), plus a little noise in
    every direction; so a low intrinsic dimension, as prompt embeddings have."""
    dim, r = centres.shape[1], bases.shape[1]
    labels = rng.integers(0, len(centres), n)
    rows = np.empty((n, dim), dtype=np.float32)
    for c in range(len(centres)):
        where = np.flatnonzero(labels == c)
        spread = rng.normal(scale=0.6 / np.sqrt(r), size=(where.size, r)) @ bases[c]
        noise = rng.normal(scale=0.15 / np.sqrt(dim), size=(where.size, dim))
        block = centres[c] + spread + noise
        rows[where] = block / np.linalg.norm(block, axis=1, keepdims=True)
    return rows


@dataclass(frozen=True)
class Timing:
    """One method at one size: seconds to fit and to route every query, recall@k."""

    n: int
    method: str
    fit_s: float
    route_s: float
    recall: float | None

    def to_dict(self) -> dict[str, Any]:
        return {"n": self.n, "method": self.method, "fit_s": self.fit_s,
                "route_s": self.route_s, "recall": self.recall}


def _say(timing: Timing, quiet: bool) -> None:
    if not quiet:
        print(timing.to_dict(), flush=True)


def _recall(found: np.ndarray, exact: np.ndarray) -> float:
    hits = sum(len(set(a.tolist()) & set(b[b >= 0].tolist())) for a, b in zip(exact, found))
    return hits / float(exact.size)


def run_size(n: int, args: argparse.Namespace, indexes: tuple[str, ...],
             quiet: bool = False) -> list[Timing]:
    """Every method on one training size; flat's neighbours are the recall reference."""
    from routeharness_knn.router import KNNRouter, _normalise
    from sklearn.neighbors import KNeighborsClassifier, NearestNeighbors

    rng = np.random.default_rng(n)
    centres = rng.normal(size=(args.clusters, args.dim))
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    bases = np.linalg.qr(rng.normal(size=(args.clusters, args.dim, args.spread_dim)))[0]
    bases = bases.transpose(0, 2, 1)  # clusters x r x dim, orthonormal rows
    X = clustered(n, centres, bases, rng)
    Q = clustered(args.queries, centres, bases, rng)
    scores = (rng.random((n, args.models)) < 0.5).astype(np.float64)
    costs = np.linspace(0.01, 1.0, args.models)[None, :] * np.ones((n, 1))
    outcomes = SimpleNamespace(n=n, m=args.models, scores=scores, costs=costs)
    best = np.argmax(scores - 1e-9 * costs, axis=1)  # lambda 0, ties to the cheaper
    out: list[Timing] = []
    exact = None
    for index in indexes:
        router, t0 = KNNRouter(k=args.k, index=index), time.perf_counter()
        router.fit(X, outcomes)
        t1 = time.perf_counter()
        router.route(Q, 0.0)
        t2 = time.perf_counter()
        neighbours = router.index_.search(_normalise(Q), args.k)[1]
        exact = neighbours if index == "flat" else exact
        plan = router.index_plan_
        label = (f"routeharness ivf, nprobe={plan.nprobe} of {plan.nlist}" if index == "ivf"
                 else f"routeharness hnsw, efSearch={plan.ef_search}" if index == "hnsw"
                 else "routeharness flat")
        out.append(Timing(n, label, t1 - t0, t2 - t1,
                          _recall(neighbours, exact)))
        _say(out[-1], quiet)
        if index == "ivf":  # the speed knob: fewer lists scanned, the same index
            plan = router.index_plan_
            router.index_.nprobe = probe = max(1, plan.nlist // 32)
            t1 = time.perf_counter()
            router.route(Q, 0.0)
            t2 = time.perf_counter()
            neighbours = router.index_.search(_normalise(Q), args.k)[1]
            out.append(Timing(n, f"routeharness ivf, nprobe={probe} of {plan.nlist} "
                              "(same index)", t0 - t0, t2 - t1, _recall(neighbours, exact)))
            _say(out[-1], quiet)
    nn, t0 = NearestNeighbors(n_neighbors=args.k, algorithm="brute", metric="cosine"), \
        time.perf_counter()
    nn.fit(X)
    t1 = time.perf_counter()
    found = nn.kneighbors(Q, return_distance=False)
    np.argmax(scores[found].mean(axis=1) - 1e-9 * costs[0], axis=1)  # the same routing
    t2 = time.perf_counter()
    out.append(Timing(n, "sklearn NearestNeighbors (brute, cosine)", t1 - t0, t2 - t1,
                      _recall(found, exact)))
    _say(out[-1], quiet)
    clf, t0 = KNeighborsClassifier(n_neighbors=args.k, algorithm="brute", metric="cosine"), \
        time.perf_counter()
    clf.fit(X, best)
    t1 = time.perf_counter()
    clf.predict(Q)
    t2 = time.perf_counter()
    out.append(Timing(n, "sklearn KNeighborsClassifier (brute, cosine)", t1 - t0, t2 - t1,
                      None))
    _say(out[-1], quiet)
    return out


def _threads() -> str:
    import faiss

    parts = [f"faiss OpenMP threads {faiss.omp_get_max_threads()} (hnsw builds on 1)"]
    try:
        import threadpoolctl

        pools = threadpoolctl.threadpool_info()
        found = sorted({f"{p['internal_api']} {p['num_threads']} threads" for p in pools})
        parts.append("BLAS/OpenMP pools: " + (", ".join(found) or "none loaded"))
    except ImportError:  # pragma: no cover
        pass
    try:
        import torch

        parts.append(f"torch threads {torch.get_num_threads()} (not used by these searches)")
    except ImportError:  # pragma: no cover
        pass
    return "; ".join(parts)


def _uptime() -> str:
    try:
        return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    except OSError:  # pragma: no cover
        return "uptime unavailable"


def report(rows: list[Timing], args: argparse.Namespace, before: str, after: str,
           threads: str, seconds: float) -> str:
    """The Markdown report: one table, speed-ups against NearestNeighbors (fit + route)."""
    lines = ["# kNN search at scale: flat, ivf, hnsw against scikit-learn", "",
             f"`python benchmarks/knn_index.py --sizes {args.sizes} --ivf-up-to "
             f"{args.ivf_up_to} --hnsw-up-to {args.hnsw_up_to} --queries {args.queries} "
             f"--k {args.k} --dim {args.dim}`",
             "", f"- data: clustered synthetic unit vectors, d = {args.dim}, "
             f"{args.clusters} clusters each spread along {args.spread_dim} directions; "
             f"{args.queries} test prompts from the same clusters; "
             f"k = {args.k}; {args.models} models with random 0/1 outcomes",
             f"- machine: {platform.platform()}, {os.cpu_count()} CPUs; {threads}",
             f"- load before: `{before}`", f"- load after: `{after}`",
             f"- whole run: {seconds:.0f} s, one process, methods one after another", "",
             "| n train | method | fit s | route s | route: x NearestNeighbors | fit + route: "
             "x NearestNeighbors | recall@k |", "|---:|---|---:|---:|---:|---:|---:|"]
    for n in sorted({r.n for r in rows}):
        here = [r for r in rows if r.n == n]
        base = next(r for r in here if r.method.startswith("sklearn Nearest"))
        for r in here:
            shared = r.method.endswith("(same index)")
            fit = "(above)" if shared else f"{r.fit_s:.2f}"
            both = "-" if shared else f"{(base.fit_s + base.route_s) / (r.fit_s + r.route_s):.1f}"
            recall = "n/a" if r.recall is None else f"{r.recall:.4f}"
            lines.append(f"| {n:,} | {r.method} | {fit} | {r.route_s:.2f} | "
                         f"{base.route_s / r.route_s:.1f} | {both} | {recall} |")
    lines += ["", "recall@k: the share of the exact (flat) index's k neighbours returned, "
              "over every test prompt. The row marked (same index) re-routes with the ivf "
              "index above it, fewer lists scanned: its fit is the row above's."]
    for n in sorted({r.n for r in rows}):
        skipped = [i for i in ("ivf", "hnsw") if not any(r.n == n and f" {i}" in r.method
                                                          for r in rows)]
        if skipped:
            lines.append(f"Not run at n = {n:,}: {', '.join(skipped)} (see --ivf-up-to, "
                         "--hnsw-up-to).")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,100000,1000000")
    parser.add_argument("--ivf-up-to", type=int, default=1_000_000)
    parser.add_argument("--hnsw-up-to", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=2000)
    parser.add_argument("--k", type=int, default=100)
    parser.add_argument("--dim", type=int, default=384)
    parser.add_argument("--clusters", type=int, default=200)
    parser.add_argument("--spread-dim", type=int, default=16)
    parser.add_argument("--models", type=int, default=10)
    parser.add_argument("--out", default=str(Path(__file__).with_name("knn_index.md")))
    args = parser.parse_args()
    before, started = _uptime(), time.perf_counter()
    rows: list[Timing] = []
    warm = argparse.Namespace(**{**vars(args), "queries": 200, "k": 10})
    run_size(2000, warm, ("flat", "ivf", "hnsw"), quiet=True)  # one-time costs, not timed
    for n in (int(s) for s in args.sizes.split(",")):
        indexes = ("flat",) + ("ivf",) * (n <= args.ivf_up_to) + ("hnsw",) * (
            n <= args.hnsw_up_to)
        rows += run_size(n, args, indexes)
    text = report(rows, args, before, _uptime(), _threads(), time.perf_counter() - started)
    Path(args.out).write_text(text)
    print(text)


if __name__ == "__main__":
    main()
