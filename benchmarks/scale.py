"""kNN routing at scale: this project's ``flat``, ``ivf`` and ``hnsw`` searches against
scikit-learn's NearestNeighbors (RouterBench's kNN) and KNeighborsClassifier (LLMRouter's
kNN router), each configuration fitted and routed in its own subprocess.

Usage: ``python benchmarks/scale.py [--sizes 10000,100000,1000000] [--queries 2000]
[--k 100] [--dim 384] [--clusters 50] [--models 20] [--methods flat,ivf,hnsw,nn,knc]
[--timeout 1200] [--work /tmp/routeharness-scale] [--out benchmarks/scale.md]``;
``--rows LOG``: the report again from the JSON lines a run printed (an interrupted run).

Data: ``routeharness.data.synth.synthetic_arrays`` (clustered unit vectors, d = ``--dim``,
outcomes with locality 0.8), written once per size to ``--work`` as ``.npy`` files; the
test prompts come from the same clusters. Every method does a router's whole job on them:
fit, then route the test prompts (ours and NearestNeighbors: the neighbours' mean score
and cost per model, then the choice at lambda 0; KNeighborsClassifier: a vote among the
neighbours' best models, as LLMRouter trains it). scikit-learn runs as those projects use
it: the same k, cosine metric, its default algorithm (``auto``, which is brute force for
cosine) and weights, the test prompts in one batch (LLMRouter predicts one query at a
time: one batch is the faster, fairer comparison). Each child loads the data, warms up on
a small problem (imports, BLAS), then times ``fit`` and the route and reads its peak
resident memory (``ru_maxrss``) above what it held before ``fit``. Recall@k: the share
of the exact (flat) search's k neighbours each method returns. Writes a Markdown report.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np

HERE = Path(__file__).resolve()
LABELS = {"flat": "routeharness flat (exact)", "ivf": "routeharness ivf",
          "hnsw": "routeharness hnsw", "nn": "sklearn NearestNeighbors (cosine)",
          "knc": "sklearn KNeighborsClassifier (cosine)"}


@dataclass(frozen=True)
class Timing:
    """One method at one size, from its own process: seconds to fit and to route every
    test prompt, memory in MB above what the process held before ``fit``, recall@k
    against the exact search, and the search's settings where it has any."""

    n: int
    method: str
    fit_s: float | None
    route_s: float | None
    peak_mb: float | None
    recall: float | None
    settings: str = ""
    error: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _rss_mb() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    return float("nan")  # pragma: no cover


def write_data(n: int, args: argparse.Namespace) -> Path:
    """The synthetic training and test arrays of one size, written once."""
    from routeharness.data.synth import synthetic_arrays

    folder = Path(args.work) / f"n{n}-q{args.queries}-d{args.dim}-c{args.clusters}"
    if (folder / "done").is_file():
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    splits, _ = synthetic_arrays(n, 1, args.queries, n_models=args.models, dim=args.dim,
                                 n_clusters=args.clusters, locality=0.8, seed=12)
    np.save(folder / "X.npy", splits["train"].X)
    np.save(folder / "scores.npy", splits["train"].scores)
    np.save(folder / "costs.npy", splits["train"].costs)
    np.save(folder / "Q.npy", splits["test"].X)
    (folder / "done").write_text("ok\n")
    return folder


def _ours(method: str, X: np.ndarray, scores: np.ndarray, costs: np.ndarray,
          Q: np.ndarray, k: int) -> tuple[Any, Any]:
    """fit and route closures for this project's router."""
    from routeharness_knn.router import KNNRouter
    from routeharness_knn.search import normalise, search

    outcomes = SimpleNamespace(n=X.shape[0], m=scores.shape[1], scores=scores, costs=costs)
    router = KNNRouter(k=k, index=method)

    def fit() -> None:
        router.fit(X, outcomes)

    def route() -> np.ndarray:
        scores_hat, costs_hat = router.predict(Q)
        np.argmax(scores_hat - 0.0 * costs_hat, axis=1)
        # the neighbours the route used: the kept search, not a second one
        return search(router.index_, router.index_plan_, normalise(Q), k, k)[1]

    fit.settings = lambda: json.dumps({key: v for key, v in router.search_settings().items()
                                       if v is not None and key not in ("kind", "n")})
    return fit, route


def _sklearn(method: str, X: np.ndarray, scores: np.ndarray, costs: np.ndarray,
             Q: np.ndarray, k: int) -> tuple[Any, Any]:
    from sklearn.neighbors import KNeighborsClassifier, NearestNeighbors

    if method == "nn":
        model = NearestNeighbors(n_neighbors=k, metric="cosine")

        def fit() -> None:
            model.fit(X)

        def route() -> np.ndarray:
            found = model.kneighbors(Q, return_distance=False)
            np.argmax(scores[found].mean(axis=1) - 0.0 * costs[found].mean(axis=1), axis=1)
            return found
    else:
        model = KNeighborsClassifier(n_neighbors=k, metric="cosine")
        best = np.argmax(scores - 1e-9 * costs, axis=1)  # each prompt's best model

        def fit() -> None:
            model.fit(X, best)

        def route() -> None:
            model.predict(Q)
            return None
    fit.settings = lambda: ""
    return fit, route


def child(args: argparse.Namespace) -> None:
    """One method on one size (``--one``): prints its ``Timing`` as JSON."""
    folder, method, k = Path(args.data), args.one, args.k
    X, Q = np.load(folder / "X.npy"), np.load(folder / "Q.npy")
    scores, costs = np.load(folder / "scores.npy"), np.load(folder / "costs.npy")
    make = _ours if method in ("flat", "ivf", "hnsw") else _sklearn
    small = slice(0, min(2000, X.shape[0]))  # warm-up: imports, BLAS, faiss, not timed
    warm_fit, warm_route = make(method if method != "hnsw" else "flat", X[small],
                                scores[small], costs[small], Q[:50], min(k, 10))
    warm_fit()
    warm_route()
    from routeharness_knn.search import clear_index_cache

    clear_index_cache()
    fit, route = make(method, X, scores, costs, Q, k)
    before = _rss_mb()
    t0 = time.perf_counter()
    fit()
    t1 = time.perf_counter()
    found = route()
    t2 = time.perf_counter()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    if found is not None:
        np.save(folder / f"found-{method}-k{k}.npy", np.asarray(found, dtype=np.int64))
    print(json.dumps(Timing(X.shape[0], method, t1 - t0, t2 - t1, peak - before, None,
                            fit.settings()).to_dict()))


def run_one(n: int, method: str, folder: Path, args: argparse.Namespace) -> Timing:
    command = [sys.executable, str(HERE), "--one", method, "--data", str(folder),
               "--k", str(args.k)]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=args.timeout)
    except subprocess.TimeoutExpired:
        return Timing(n, method, None, None, None, None, error=f"over {args.timeout} s")
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["failed"])[-1]
        return Timing(n, method, None, None, None, None, error=last[:120])
    return Timing(**json.loads(done.stdout.strip().splitlines()[-1]))


def _recall(folder: Path, method: str, k: int) -> float | None:
    exact, found = folder / f"found-flat-k{k}.npy", folder / f"found-{method}-k{k}.npy"
    if not (exact.is_file() and found.is_file()):
        return None
    a, b = np.load(exact), np.load(found)
    hits = sum(len(set(x.tolist()) & set(y[y >= 0].tolist())) for x, y in zip(a, b))
    return hits / float(a.size)


def _uptime() -> str:
    try:
        return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    except OSError:  # pragma: no cover
        return "uptime unavailable"


def _ratio(base: float | None, value: float | None) -> str:
    return "-" if base is None or not value else f"{base / value:.1f}"


def report(rows: list[Timing], args: argparse.Namespace, loads: list[str],
           seconds: float) -> str:
    """The Markdown table: each method's times, memory, recall, and speed-ups against
    NearestNeighbors (route alone, and fit + route)."""
    import faiss
    import sklearn

    lines = ["# kNN routing at scale: flat, ivf, hnsw against scikit-learn", "",
             f"`python benchmarks/scale.py --sizes {args.sizes} --queries {args.queries} "
             f"--k {args.k} --dim {args.dim} --clusters {args.clusters} --models "
             f"{args.models} --methods {args.methods}`", "",
             f"- data: `routeharness.data.synth.synthetic_arrays` (seed 12), d = {args.dim}, "
             f"{args.clusters} clusters, {args.models} models, locality 0.8; "
             f"{args.queries} test prompts from the same clusters; k = {args.k}",
             f"- machine: {platform.platform()}, {os.cpu_count()} CPUs, faiss "
             f"{faiss.__version__} ({faiss.omp_get_max_threads()} OpenMP threads; hnsw "
             f"builds on 1), scikit-learn {sklearn.__version__}",
             *[f"- load {when}: `{text}`" for when, text in zip(("before", "after"), loads)],
             f"- whole run: {seconds:.0f} s; every row its own process, one after another",
             "", "| n train | method | settings | fit s | route s | peak MB | recall@k | "
             "route: x NN | fit + route: x NN | route: x KNC |",
             "|---:|---|---|---:|---:|---:|---:|---:|---:|---:|"]
    for n in sorted({r.n for r in rows}):
        here = [r for r in rows if r.n == n]
        nn = next((r for r in here if r.method == "nn" and r.route_s), None)
        knc = next((r for r in here if r.method == "knc" and r.route_s), None)
        for r in here:
            if r.error:
                lines.append(f"| {n:,} | {LABELS[r.method]} | | not run: {r.error} | | | | "
                             "| | |")
                continue
            both = None if nn is None else (nn.fit_s + nn.route_s)
            recall = "n/a" if r.recall is None else f"{r.recall:.4f}"
            lines.append(
                f"| {n:,} | {LABELS[r.method]} | {r.settings.replace('|', '/')} | "
                f"{r.fit_s:.2f} | {r.route_s:.2f} | {r.peak_mb:,.0f} | {recall} | "
                f"{_ratio(nn and nn.route_s, r.route_s)} | "
                f"{_ratio(both, r.fit_s + r.route_s)} | "
                f"{_ratio(knc and knc.route_s, r.route_s)} |")
    lines += ["", "x NN, x KNC: scikit-learn's time over the row's, from the same run. "
              "peak MB: the child's peak resident memory above what it held before `fit` "
              "(the data it loaded). recall@k: the share of the exact search's k "
              "neighbours returned (KNeighborsClassifier returns a vote, not neighbours)."]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,100000,1000000")
    parser.add_argument("--queries", type=int, default=2000)
    parser.add_argument("--k", type=int, default=100)
    parser.add_argument("--dim", type=int, default=384)
    parser.add_argument("--clusters", type=int, default=50)
    parser.add_argument("--models", type=int, default=20)
    parser.add_argument("--methods", default="flat,ivf,hnsw,nn,knc")
    parser.add_argument("--timeout", type=int, default=1200)
    parser.add_argument("--work", default="/tmp/routeharness-scale")
    parser.add_argument("--out", default=str(HERE.with_name("scale.md")))
    parser.add_argument("--rows", help="re-render the report from a run's printed rows")
    parser.add_argument("--one", help=argparse.SUPPRESS)
    parser.add_argument("--data", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        child(args)
        return
    if args.rows:
        lines = Path(args.rows).read_text().splitlines()
        rows = [Timing(**json.loads(line)) for line in lines if line.startswith('{"n"')]
        Path(args.out).write_text(report(rows, args, ["(see the run)"], float("nan")))
        return
    loads, started, rows = [_uptime()], time.perf_counter(), []
    methods = [m for m in args.methods.split(",") if m]
    for n in (int(s) for s in args.sizes.split(",")):
        folder = write_data(n, args)
        for method in ["flat", *[m for m in methods if m != "flat"]]:
            timing = run_one(n, method, folder, args)
            rows.append(Timing(**{**timing.to_dict(),
                                  "recall": _recall(folder, method, args.k)}))
            print(json.dumps(rows[-1].to_dict()), flush=True)
            # the report so far after every row: an interrupted run still leaves one
            Path(args.out).write_text(report(rows, args, [*loads, _uptime()],
                                             time.perf_counter() - started))
    loads.append(_uptime())
    text = report(rows, args, loads, time.perf_counter() - started)
    Path(args.out).write_text(text)
    print(text)


if __name__ == "__main__":
    main()
