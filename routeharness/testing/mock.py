"""Small mock routing problems for the conformance kit: offline, seeded, instant.

These are *test fixtures for the router contract*, not data to report numbers on: a few
hundred prompts as points around cluster centres in a 16-d space, three or four models
with 0/1 scores drawn per cluster and per-call costs around a per-model price. They are
built so that a sensible router has something to learn (which cluster needs which model)
and so that facts the checks rely on hold by construction (one model dominates, costs
differ by an order of magnitude).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np

from routeharness.data.dataset import ModelInfo, Outcomes, RoutingData

DIM = 16
#: cheap, mid, expensive: USD per call (the mock's own price list)
TRADEOFF_PRICES = (0.0005, 0.002, 0.01)
#: P(correct) per cluster (rows) and model (columns): cluster 0 is easy for everyone,
#: cluster 1 needs the mid or expensive model, cluster 2 only the expensive one.
TRADEOFF_ACCURACY = np.array([[0.9, 0.92, 0.95],
                              [0.15, 0.85, 0.9],
                              [0.05, 0.2, 0.9]])


@dataclass(frozen=True)
class MockProblem:
    """A train/test pair as the harness hands it to a router.

    X_train: (n_train, 16) float32; train: ``Outcomes`` with costs normalised (the most
    expensive model's mean training cost = 1); X_test: (n_test, 16) float32; test: the
    held-out ``RoutingData`` (scores 0/1, costs in USD) that only the harness reads;
    ``cost_scale``: USD per normalised cost unit.
    """

    name: str
    X_train: np.ndarray
    train: Outcomes
    X_test: np.ndarray
    test: RoutingData
    cost_scale: float

    @property
    def m(self) -> int:
        return self.train.m


def hash_encode(texts: list[str], dim: int = DIM) -> np.ndarray:
    """A deterministic stand-in for ``Outcomes.encode_text``: (k, dim) float32 unit
    vectors seeded by each text's sha256 (routers that embed model or group
    descriptions need *some* vectors in the prompt space)."""
    rows = []
    for text in texts:
        seed = int.from_bytes(hashlib.sha256(text.encode("utf-8")).digest()[:8], "little")
        vector = np.random.default_rng(seed).normal(size=dim)
        rows.append(vector / np.linalg.norm(vector))
    return np.asarray(rows, dtype=np.float32).reshape(len(texts), dim)


def _clusters(n: int, rng: np.random.Generator, centres: np.ndarray
              ) -> tuple[np.ndarray, np.ndarray]:
    labels = rng.integers(0, len(centres), size=n)
    X = centres[labels] + 0.35 * rng.normal(size=(n, centres.shape[1]))
    return X.astype(np.float32), labels


def _build(name: str, labels_to_outcomes, n_train: int, n_test: int, n_clusters: int,
           models: list[ModelInfo], seed: int) -> MockProblem:
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(n_clusters, DIM)) * 1.5
    X_train, c_train = _clusters(n_train, rng, centres)
    X_test, c_test = _clusters(n_test, rng, centres)
    s_train, k_train = labels_to_outcomes(c_train, rng)
    s_test, k_test = labels_to_outcomes(c_test, rng)
    groups_train = np.asarray([f"cluster-{c}" for c in c_train], dtype=object)
    groups_test = np.asarray([f"cluster-{c}" for c in c_test], dtype=object)
    scale = float(k_train.mean(axis=0).max())
    train = Outcomes(s_train, k_train / scale, groups_train, models, scale,
                     {f"cluster-{c}": f"mock prompts of cluster {c}" for c in range(n_clusters)},
                     hash_encode)
    test = RoutingData(ids=[f"{name}-test-{i}" for i in range(n_test)],
                       prompts=[f"mock prompt {i}" for i in range(n_test)],
                       groups=groups_test, scores=s_test, costs=k_test, models=models,
                       split="test")
    return MockProblem(name, X_train, train, X_test, test, scale)


def tradeoff_problem(seed: int = 0, n_train: int = 240, n_test: int = 90) -> MockProblem:
    """Three models (cheap, mid, expensive) and three clusters needing more and more
    of a model: the best choice depends on the trade-off."""
    models = [ModelInfo("mock-cheap", "a small, cheap model that answers easy prompts"),
              ModelInfo("mock-mid", "a mid-sized model"),
              ModelInfo("mock-expensive", "a large, expensive model that answers most prompts")]
    prices = np.asarray(TRADEOFF_PRICES)

    def outcomes(labels: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        scores = (rng.random((len(labels), 3)) < TRADEOFF_ACCURACY[labels]).astype(np.float64)
        costs = prices[None, :] * rng.uniform(0.8, 1.2, size=(len(labels), 3))
        return scores, costs

    return _build("tradeoff", outcomes, n_train, n_test, 3, models, seed)


DOMINANT_INDEX = 1


def dominant_problem(seed: int = 1, n_train: int = 200, n_test: int = 60) -> MockProblem:
    """Four models; model ``DOMINANT_INDEX`` is right on every prompt and the cheapest on
    every prompt, so any sensible router picks it at every trade-off. (It is not model 0,
    so a router that always answers 0 is caught.)"""
    models = [ModelInfo(f"mock-{i}") for i in range(4)]
    prices = np.asarray([0.004, 0.001, 0.006, 0.01])

    def outcomes(labels: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        scores = (rng.random((len(labels), 4)) < 0.5).astype(np.float64)
        scores[:, DOMINANT_INDEX] = 1.0
        costs = prices[None, :] * rng.uniform(0.9, 1.1, size=(len(labels), 4))
        costs[:, DOMINANT_INDEX] = 0.0009  # below every other model's cheapest draw
        return scores, costs

    return _build("dominant", outcomes, n_train, n_test, 3, models, seed)
