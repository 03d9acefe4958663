"""The pure statistics of ``routeharness study``: rank correlations against scipy and
known values, the percentile bootstrap, the neighbour searches against brute force, and
the intrinsic-dimension estimators on points of known dimension in 384-d."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats as scipy_stats

from routeharness.study.stats import (
    Dimension,
    bootstrap_ci,
    kendall_tau,
    mle_dimension,
    nearest_unlike,
    neighbour_distances,
    percentile_band,
    random_unlike,
    spearman,
    spearman_resampler,
    twonn_dimension,
)

AMBIENT = 384


def _embed(points: np.ndarray, seed: int) -> np.ndarray:
    """Points (n, k) placed in AMBIENT dimensions by a random orthonormal map."""
    basis, _ = np.linalg.qr(np.random.default_rng(seed).normal(size=(AMBIENT, points.shape[1])))
    return points @ basis.T


def _subspace(n: int, dim: int, seed: int) -> np.ndarray:
    return _embed(np.random.default_rng(seed).normal(size=(n, dim)), seed + 1)


def _swiss_roll(n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    turn = rng.uniform(1.5 * np.pi, 4.5 * np.pi, n)
    height = rng.uniform(0.0, 21.0, n)
    return _embed(np.column_stack([turn * np.cos(turn), height, turn * np.sin(turn)]), seed + 1)


def _sphere(n: int, seed: int) -> np.ndarray:
    points = np.random.default_rng(seed).normal(size=(n, 3))
    return _embed(points / np.linalg.norm(points, axis=1, keepdims=True), seed + 1)


# --- rank correlations ----------------------------------------------------------------------

def test_spearman_matches_scipy_with_ties_and_known_values():
    rng = np.random.default_rng(0)
    x = rng.normal(size=300)
    y = np.round(x + rng.normal(size=300))  # many ties
    assert spearman(x, y) == pytest.approx(scipy_stats.spearmanr(x, y)[0], abs=1e-12)
    assert spearman([1, 2, 3, 4], [10, 20, 30, 40]) == pytest.approx(1.0)
    assert spearman([1, 2, 3, 4], [4, 3, 2, 1]) == pytest.approx(-1.0)
    assert math.isnan(spearman([1, 2, 3], [5, 5, 5]))  # a constant side has no ranking
    # NaN items are left out
    assert spearman([1, 2, np.nan, 3], [1, 2, 0, 3]) == pytest.approx(1.0)


def test_spearman_resampler_reranks_each_resample():
    rng = np.random.default_rng(1)
    x = rng.integers(0, 5, size=200).astype(float)
    y = x + rng.normal(size=200)
    value = spearman_resampler(x, y)
    assert value(np.arange(200)) == pytest.approx(spearman(x, y), abs=1e-12)
    index = rng.integers(0, 200, size=200)  # repeats: ties the full sample did not have
    assert value(index) == pytest.approx(scipy_stats.spearmanr(x[index], y[index])[0],
                                         abs=1e-12)


def test_kendall_tau_b_matches_scipy_and_known_values():
    rng = np.random.default_rng(2)
    a = np.round(rng.normal(size=12), 1)
    b = np.round(a + rng.normal(size=12), 0)
    assert kendall_tau(a, b) == pytest.approx(scipy_stats.kendalltau(a, b)[0], abs=1e-12)
    assert kendall_tau([0.1, 0.5, 0.9], [3, 4, 5]) == pytest.approx(1.0)
    assert kendall_tau([0.1, 0.5, 0.9], [5, 4, 3]) == pytest.approx(-1.0)
    # one discordant pair of three: (2 - 1) / 3
    assert kendall_tau([1, 2, 3], [1, 3, 2]) == pytest.approx(1 / 3)
    assert math.isnan(kendall_tau([1, 1, 1], [1, 2, 3]))
    assert kendall_tau([1, 2, np.nan, 3], [1, 2, 9, 3]) == pytest.approx(1.0)


def test_bootstrap_ci_covers_the_mean_with_the_normal_width_and_is_seeded():
    values = np.random.default_rng(3).normal(size=400)
    low, high = bootstrap_ci(lambda index: float(values[index].mean()), values.size,
                             n_resamples=1000, seed=0)
    assert low < values.mean() < high
    normal_width = 2 * 1.96 * values.std() / np.sqrt(values.size)
    assert (high - low) == pytest.approx(normal_width, rel=0.15)
    assert bootstrap_ci(lambda index: float(values[index].mean()), values.size,
                        n_resamples=1000, seed=0) == (low, high)
    assert bootstrap_ci(lambda index: float("nan"), 5, n_resamples=10, seed=0) == \
        pytest.approx((np.nan, np.nan), nan_ok=True)
    with pytest.raises(ValueError):
        bootstrap_ci(lambda index: 0.0, 0, n_resamples=10, seed=0)


def test_percentile_band_ignores_nan_replicates():
    replicates = np.column_stack([np.arange(101.0), np.full(101, np.nan)])
    low, high = percentile_band(replicates, 0.9)
    assert low[0] == pytest.approx(5.0) and high[0] == pytest.approx(95.0)
    assert math.isnan(low[1]) and math.isnan(high[1])


# --- neighbours -------------------------------------------------------------------------------

def test_neighbour_distances_match_brute_force():
    X = np.random.default_rng(4).normal(size=(300, 20))
    brute = np.linalg.norm(X[:, None] - X[None], axis=2)
    np.fill_diagonal(brute, np.inf)
    expected = np.sort(brute, axis=1)[:, :5]
    np.testing.assert_allclose(neighbour_distances(X, 5), expected, rtol=1e-12)


def test_nearest_and_random_unlike_skip_rows_of_the_same_label():
    rng = np.random.default_rng(5)
    X = rng.normal(size=(200, 8))
    X /= np.linalg.norm(X, axis=1, keepdims=True)
    X[1] = X[0]  # an exact duplicate: same label, so never the answer for row 0
    labels = np.arange(200)
    labels[1] = 0
    queries = np.arange(200)
    nearest = nearest_unlike(X, labels, queries)
    similarity = X @ X.T
    similarity[labels[:, None] == labels[None, :]] = -np.inf
    np.testing.assert_array_equal(nearest, np.argmax(similarity, axis=1))
    assert nearest[0] not in (0, 1)
    assert (nearest_unlike(X[:3], np.zeros(3, dtype=int), np.arange(3)) == -1).all()
    partner = random_unlike(labels, queries, np.random.default_rng(0))
    assert (labels[partner] != labels[queries]).all()
    assert (random_unlike(np.zeros(5, dtype=int), np.arange(5), rng) == -1).all()


# --- intrinsic dimension ----------------------------------------------------------------------
# Tolerances measured over 20 seeds at n = 1000 (points in 384-d): on a 5-d subspace TwoNN
# gave 4.59..5.46 (sd 0.21) and the MLE 4.89..5.15 (k = 10) and 4.89..5.03 (k = 20); on the
# swiss roll and the 2-sphere TwoNN gave 1.83..2.13 (sd <= 0.07) and the MLE 1.88..2.05.
# The bounds below are about 3.5 sd of TwoNN and 10% for the MLE around the truth.

@pytest.mark.parametrize("make, truth, twonn_tol, mle_tol", [
    (lambda: _subspace(1000, 5, 10), 5.0, 0.75, 0.5),
    (lambda: _swiss_roll(1000, 11), 2.0, 0.3, 0.2),
    (lambda: _sphere(1000, 12), 2.0, 0.3, 0.2),
], ids=["5-d subspace", "swiss roll", "2-sphere"])
def test_intrinsic_dimension_of_known_manifolds_in_384d(make, truth, twonn_tol, mle_tol):
    X = make()
    twonn = twonn_dimension(X)
    assert isinstance(twonn, Dimension) and twonn.n_points == 1000 and twonn.n_dropped == 0
    assert abs(float(twonn) - truth) < twonn_tol
    for k in (10, 20):
        mle = mle_dimension(X, k)
        assert mle.estimator == "mle" and mle.k == k
        assert abs(mle.value - truth) < mle_tol


def test_intrinsic_dimension_drops_and_counts_duplicates_and_samples():
    X = _subspace(600, 3, 20)
    with_copies = np.vstack([X, X[:50]])
    clean = twonn_dimension(X)
    copied = twonn_dimension(with_copies)
    assert copied.n_dropped == 50 and copied.n_points == 600
    assert copied.value == pytest.approx(clean.value, rel=0.02)  # same points, other order
    sampled = mle_dimension(with_copies, 10, max_points=300, seed=1)
    assert sampled.n_points + sampled.n_dropped == 300
    assert mle_dimension(with_copies, 10, max_points=300, seed=1) == sampled
    assert sampled.to_dict() == {"estimator": "mle", "value": sampled.value,
                                 "n_points": sampled.n_points,
                                 "n_dropped": sampled.n_dropped, "k": 10}
    with pytest.raises(ValueError):
        twonn_dimension(np.zeros((2, 4)))
