"""The public API is what the built-in plugins use (issue 17): every name a plugin
imports from routeharness is in ``routeharness.__all__`` and documented in docs/api.md,
and the built-in plugins' implementation modules load when first used, not on every
command."""

from __future__ import annotations

import numpy as np


# --- the routers' own training trade-offs ---------------------------------------------------
def test_the_learned_routers_train_on_the_harness_sweep_range():
    """``mlp-select`` and ``bandit`` hold their training trade-offs as their own constants
    (a fitted network is trained on them), not the protocol's; they must still cover the
    sweep the harness routes on."""
    from routeharness_bandit.router import TRAIN_LOG10_LAMBDA_RANGE
    from routeharness_mlp.router import TRAIN_LAMBDAS

    from routeharness.evaluation.protocol import DEFAULT_LAMBDAS, LOG10_LAMBDA_RANGE

    assert TRAIN_LOG10_LAMBDA_RANGE == LOG10_LAMBDA_RANGE
    low, high = LOG10_LAMBDA_RANGE
    assert TRAIN_LAMBDAS[0] == 0.0 and np.isinf(TRAIN_LAMBDAS[-1]) and len(TRAIN_LAMBDAS) == 27
    np.testing.assert_array_equal(TRAIN_LAMBDAS[1:-1], np.logspace(low, high, 25))
    finite = [lam for lam in DEFAULT_LAMBDAS if 0 < lam < np.inf]
    assert min(TRAIN_LAMBDAS[1:-1]) <= min(finite) and max(finite) <= max(TRAIN_LAMBDAS[1:-1])
