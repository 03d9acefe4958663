"""Synthetic routing tasks with a known answer: how local model performance is.

Prompts are points around ``n_clusters`` centres on the unit sphere (one group per
cluster, ``g0``, ``g1``...). Each cluster has a fixed outcome profile in which its own
model is best (cluster c: model c mod m); with ``locality=1`` a prompt's outcomes are
exactly its cluster's profile, so a nearest-neighbour router can reach the oracle; with
``locality=0`` they are drawn independently of the prompt (per-model rates, the costlier
models better); in between each cell comes from the profile with probability
``locality``, else from the independent draw. Used by the tests of ``study`` and, through
``data synth`` (issue 12), by anyone who wants a task whose answer is known.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from routeharness.data.columns import SPLITS
from routeharness.data.dataset import ModelInfo, RoutingTask

#: USD per call of model m0; each next model costs three times more
BASE_PRICE = 1e-4
#: the dearest model's price over the cheapest's, whatever the number of models
PRICE_RANGE = 100.0


def _rates(n_models: int) -> np.ndarray:
    """Per-model mean score of the prompt-independent outcomes: 0.3 ... 0.8 by cost."""
    return np.linspace(0.3, 0.8, n_models) if n_models > 1 else np.array([0.5])


def _profiles(n_clusters: int, n_models: int, graded: bool,
              rng: np.random.Generator) -> np.ndarray:
    """(n_clusters, n_models): each cluster's outcomes, its own model (c mod m) best.

    0/1: the own model right, every other model right with probability 0.3, except
    models below the own one, which are wrong, so the own model is also the first best
    (the tie rule picks the lowest index). Graded: others in [0, 0.6], own 0.9."""
    profiles = np.empty((n_clusters, n_models))
    for c in range(n_clusters):
        own = c % n_models
        if graded:
            row = np.round(rng.uniform(0.0, 0.6, n_models), 3)
            row[own] = 0.9
        else:
            row = (rng.random(n_models) < 0.3).astype(float)
            row[:own] = 0.0
            row[own] = 1.0
        profiles[c] = row
    return profiles


def _independent(n: int, n_models: int, graded: bool, rng: np.random.Generator) -> np.ndarray:
    """(n, n_models) outcomes that do not depend on the prompt."""
    rates = _rates(n_models)
    if graded:  # Beta with mean = the rate, rounded like a judge's score
        return np.round(rng.beta(4.0 * rates, 4.0 * (1.0 - rates), size=(n, n_models)), 3)
    return (rng.random((n, n_models)) < rates).astype(float)


#: rows drawn per block: 10^6 prompts of 384 without 3 GB float64 temporaries
_BLOCK = 1 << 15

#: the most numbers (embedding values and outcome and cost cells) one synthetic task may
#: hold: about 8 GB in memory while it is built, far more than a test or benchmark needs
MAX_CELLS = 10**9


def _check(n_train: int, n_val: int, n_test: int, n_models: int, dim: int, n_clusters: int,
           locality: float, noise: float, seed: int = 0) -> None:
    from routeharness.common.errors import RouteHarnessError

    if not 0 <= seed < 2**32:
        raise RouteHarnessError(f"synthetic task: seed must be in [0, 2**32), got {seed}")
    cells = (n_train + n_val + n_test) * (dim + 2 * n_models)
    if cells > MAX_CELLS:
        raise RouteHarnessError(f"synthetic task: {cells:,} numbers (prompts x (dim + 2 x "
                                f"models)) is over the limit of {MAX_CELLS:,}")
    if min(n_train, n_val, n_test) < 1:
        raise RouteHarnessError("synthetic task: every split needs at least one prompt")
    if n_models < 1 or dim < 2 or n_clusters < 1:
        raise RouteHarnessError("synthetic task: needs n_models >= 1, dim >= 2, "
                                "n_clusters >= 1")
    if not 0.0 <= locality <= 1.0 or not noise >= 0.0:
        raise RouteHarnessError("synthetic task: locality must be in [0, 1] and noise >= 0")


@dataclass(frozen=True)
class SynthSplit:
    """One synthetic split as arrays: ``X`` (n, dim) float32 unit rows, each row's
    ``cluster`` (its group), ``scores`` and ``costs`` (n, m) in USD."""

    X: np.ndarray
    cluster: np.ndarray
    scores: np.ndarray
    costs: np.ndarray

    def to_dict(self) -> dict[str, Any]:
        return {"n": int(self.X.shape[0]), "dim": int(self.X.shape[1]),
                "models": int(self.scores.shape[1])}


def synthetic_arrays(n_train: int, n_val: int, n_test: int, *, n_models: int = 5,
                     dim: int = 32, n_clusters: int = 8, locality: float = 1.0,
                     graded: bool = False, seed: int = 0, noise: float = 0.1
                     ) -> tuple[dict[str, SynthSplit], np.ndarray]:
    """The numbers of ``synthetic_task`` (the same random stream, so the same values)
    without its texts and table: (splits, the models' prices), for benchmarks at 10^6
    prompts that need only vectors and outcomes."""
    _check(n_train, n_val, n_test, n_models, dim, n_clusters, locality, noise, seed)
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(n_clusters, dim))
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    profiles = _profiles(n_clusters, n_models, graded, rng)
    prices = BASE_PRICE * PRICE_RANGE ** (np.arange(n_models) / max(n_models - 1, 1))
    splits = {}
    for split, n in zip(SPLITS, (n_train, n_val, n_test)):
        clusters = rng.integers(0, n_clusters, size=n)
        X = np.empty((n, dim), dtype=np.float32)
        for start in range(0, n, _BLOCK):  # the same draws as one call, less memory
            rows = slice(start, min(start + _BLOCK, n))
            points = centres[clusters[rows]] + noise / np.sqrt(dim) * rng.normal(
                size=(rows.stop - rows.start, dim))
            norms = np.linalg.norm(points, axis=1, keepdims=True)
            X[rows] = points / np.where(norms > 0, norms, 1.0)
        local = rng.random((n, n_models)) < locality
        scores = np.where(local, profiles[clusters], _independent(n, n_models, graded, rng))
        costs = prices[None, :] * rng.uniform(0.5, 1.5, size=(n, 1))
        splits[split] = SynthSplit(X, clusters, scores, costs)
    return splits, prices


def synthetic_task(n_train: int, n_val: int, n_test: int, *, n_models: int = 5,
                   dim: int = 32, n_clusters: int = 8, locality: float = 1.0,
                   graded: bool = False, seed: int = 0, noise: float = 0.1
                   ) -> tuple[RoutingTask, dict[str, np.ndarray]]:
    """A validated ``RoutingTask`` named ``synthetic`` and its embeddings per split.

    Embeddings: (n, dim) float32 unit rows, a cluster's unit centre plus isotropic
    Gaussian noise of root-mean-square length ``noise`` (whatever ``dim``), renormalised.
    Models ``m0``... cost ``BASE_PRICE * PRICE_RANGE**(j / (m - 1))`` USD per call
    (geometric, cheapest to dearest) times a per-prompt length factor in [0.5, 1.5].
    Texts are distinct and name the cluster's topic (``topic 3``), so a text encoder
    also finds the clusters. Deterministic for a seed.
    """
    from routeharness.data.readers import task_from_table

    splits, prices = synthetic_arrays(n_train, n_val, n_test, n_models=n_models, dim=dim,
                                      n_clusters=n_clusters, locality=locality,
                                      graded=graded, seed=seed, noise=noise)
    names = [f"m{j}" for j in range(n_models)]
    columns: dict[str, list[Any]] = {"id": [], "prompt": [], "group": [], "split": []}
    columns.update({f"score:{name}": [] for name in names})
    columns.update({f"cost:{name}": [] for name in names})
    for split, part in splits.items():
        n = part.X.shape[0]
        columns["id"] += [f"{split}-{i}" for i in range(n)]
        columns["prompt"] += [f"Synthetic {split} prompt {i} about topic {c}."
                              for i, c in enumerate(part.cluster)]
        columns["group"] += [f"g{c}" for c in part.cluster]
        columns["split"] += [split] * n
        for j, name in enumerate(names):
            columns[f"score:{name}"] += part.scores[:, j].tolist()
            columns[f"cost:{name}"] += part.costs[:, j].tolist()
    models = [ModelInfo(name, description=f"synthetic model {j}, {prices[j]:.4g} USD per call")
              for j, name in enumerate(names)]
    descriptions = {f"g{c}": f"synthetic topic {c}" for c in range(n_clusters)}
    task = task_from_table(columns, name="synthetic", version=1,
                           source=f"synthetic(seed={seed}, locality={locality})", models=models,
                           group_descriptions=descriptions,
                           notes=[f"synthetic: {n_clusters} clusters, locality {locality}, "
                                  f"{'graded' if graded else '0/1'} scores, seed {seed}"])
    return task, {split: part.X for split, part in splits.items()}
