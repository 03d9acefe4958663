"""The conformance checks of routers, and running any list of checks (encoder and task-card
checks: ``routeharness.testing.component_checks``).

Every check is a function ``check_<what>(obj)`` that returns ``None`` when ``obj`` conforms
and raises ``AssertionError`` with a one-line reason when it does not. Which checks apply
to a router depends on what it declares: its ``kind`` (utility or selection) and its
``routeharness.routers.base.Tags`` (``pickle``: must survive a pickle round trip;
``deterministic``: two fits with different ``random_state`` route the same;
``check_params``: the settings the checks run with). Routers are always exercised through the
harness's own code path (``routeharness.evaluation.scoring.route_split``, through
``routeharness.testing.harness``), on the mock problems in
``routeharness.testing.mock``.
"""

from __future__ import annotations

import functools
import inspect
import pickle
from typing import Any

import numpy as np

from routeharness.data.dataset import ModelInfo, RoutingData
from routeharness.routers.base import (
    SELECTION,
    UTILITY,
    NotFittedError,
    RouterContractError,
    Tags,
    accepts_random_state,
    clone,
    tags_of,
    tie_preference_of,
)
from routeharness.testing import mock
from routeharness.testing.harness import LAMBDAS, fit_on, fresh_copy, routes_of
from routeharness.testing.runner import Check
from routeharness.testing.state_checks import check_state_roundtrip

#: a router must pick the dominant model on at least this share of prompts, at every lam
DOMINANT_SHARE = 0.95
#: allowed rise of mean routed cost between consecutive lams (normalised cost units)
COST_RISE_TOLERANCE = 0.02
#: names a routing method may take: the harness passes nothing else
ROUTING_PARAMETERS = {"self", "X", "lam", "lams", "groups", "texts"}


# --- helpers ------------------------------------------------------------------------------
def _fitted_attributes(router: Any) -> list[str]:
    return sorted(n for n in vars(router) if n.endswith("_") and not n.startswith("_"))


def _same(a: Any, b: Any) -> bool:
    if a is b:
        return True
    try:
        return bool(np.all(a == b)) and type(a) is type(b)
    except Exception:
        return False


# --- router checks ------------------------------------------------------------------------
def check_init_stores_params(router: Any) -> None:
    """``__init__`` stores each hyper-parameter unchanged under its own name, sets no
    fitted (``name_``) attribute, and every hyper-parameter has a default."""
    cls = type(router)
    for method in ("get_params", "set_params", "fit"):
        assert hasattr(router, method), (f"{cls.__name__} has no {method}(): subclass "
                                         "routeharness.routers.base.BaseRouter")
    signature = inspect.signature(cls.__init__)
    names = [p.name for p in signature.parameters.values()
             if p.name != "self" and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
    varargs = [p.name for p in signature.parameters.values()
               if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
    assert not varargs, f"__init__ takes *{varargs[0]}: hyper-parameters must be named"
    no_default = [p.name for p in signature.parameters.values()
                  if p.name in names and p.default is p.empty]
    assert not no_default, (f"hyper-parameter(s) {no_default} have no default: the harness "
                            "must be able to build the router untuned")
    params = router.get_params()
    assert sorted(params) == sorted(names), (f"get_params() keys {sorted(params)} differ "
                                            f"from __init__ parameters {sorted(names)}")
    rebuilt = cls(**params)
    for name, value in params.items():
        stored = getattr(rebuilt, name, inspect.Parameter.empty)
        assert _same(stored, value), (f"__init__ stored {name}={stored!r}, "
                                      f"but was given {value!r}: store it unchanged")
    fitted = _fitted_attributes(cls())
    assert not fitted, f"__init__ sets fitted attribute(s) {fitted}: only fit() may"
    kind = getattr(cls, "kind", None)
    assert kind in (UTILITY, SELECTION), f"kind must be 'utility' or 'selection', got {kind!r}"
    grid = getattr(cls, "param_grid", {}) or {}
    unknown = sorted(set(grid) - set(names))
    assert not unknown, f"param_grid names unknown hyper-parameter(s) {unknown}"
    for name, values in grid.items():
        assert isinstance(values, list) and values, f"param_grid[{name!r}] must be a non-empty list"


def check_clone(router: Any) -> None:
    """``routeharness.routers.base.clone`` of a fitted router is a new, unfitted router with the
    same hyper-parameters."""
    fitted = fit_on(fresh_copy(router), mock.tradeoff_problem())
    copy = clone(fitted)
    assert copy is not fitted, "clone() returned the same object"
    assert type(copy) is type(fitted), f"clone() returned a {type(copy).__name__}"
    for name, value in fitted.get_params().items():
        assert _same(copy.get_params()[name], value), f"clone changed hyper-parameter {name!r}"
    leftovers = _fitted_attributes(copy)
    assert not leftovers, f"a clone carries fitted state {leftovers}"


def check_fit_returns_self(router: Any) -> None:
    """``fit`` returns the router itself (so ``router.fit(X, y).route(...)`` works)."""
    fresh = fresh_copy(router)
    returned = fit_on(fresh, mock.tradeoff_problem())
    assert returned is fresh, f"fit() returned {type(returned).__name__}, not self"
    assert _fitted_attributes(fresh), "fit() set no fitted attribute (name ending in '_')"


def check_fit_does_not_mutate_inputs(router: Any) -> None:
    """``fit`` leaves the embeddings and the outcome arrays it was given untouched."""
    problem = mock.tradeoff_problem()
    before = (problem.X_train.copy(), problem.train.scores.copy(), problem.train.costs.copy())
    fit_on(fresh_copy(router), problem)
    for what, old, new in zip(("X", "outcomes.scores", "outcomes.costs"), before,
                              (problem.X_train, problem.train.scores, problem.train.costs)):
        assert np.array_equal(old, new, equal_nan=True), f"fit() modified {what} in place"


def check_route_shape_and_range(router: Any) -> None:
    """Routes are integer model indices of shape (L, n), in 0..m-1; a utility router's
    ``predict`` gives two finite (n, m) arrays; a single ``route`` gives (n,)."""
    problem = mock.tradeoff_problem()
    fitted = fit_on(fresh_copy(router), problem)
    n, m = problem.test.n, problem.m
    groups = problem.test.groups if tags_of(fitted).needs_groups else None
    texts = problem.test.texts_to_embed() if tags_of(fitted).needs_texts else None

    def kwargs(method: str) -> dict[str, Any]:  # texts= for the methods that take them
        takes = "texts" in inspect.signature(getattr(fitted, method)).parameters
        return {"texts": texts} if texts is not None and takes else {}

    sweep = np.asarray(fitted.route_sweep(problem.X_test, np.asarray(LAMBDAS), groups,
                                          **kwargs("route_sweep")))
    assert sweep.shape == (len(LAMBDAS), n), (f"route_sweep returned shape {sweep.shape}, "
                                              f"expected {(len(LAMBDAS), n)}")
    assert np.issubdtype(sweep.dtype, np.integer), f"routes have dtype {sweep.dtype}, not int"
    assert sweep.min() >= 0 and sweep.max() < m, f"route outside 0..{m - 1}"
    single = np.asarray(fitted.route(problem.X_test, 1.0, groups, **kwargs("route")))
    assert single.shape == (n,), f"route returned shape {single.shape}, expected {(n,)}"
    assert np.array_equal(single, sweep[LAMBDAS.index(1.0)]), \
        "route(X, lam) differs from route_sweep(X, [..., lam, ...])"
    if getattr(fitted, "kind", UTILITY) == UTILITY:
        scores_hat, costs_hat = fitted.predict(problem.X_test, groups)
        for what, array in (("scores_hat", scores_hat), ("costs_hat", costs_hat)):
            array = np.asarray(array)
            assert array.shape == (n, m), f"predict {what} has shape {array.shape}, expected {(n, m)}"
            assert np.isfinite(array).all(), f"predict {what} has NaN or infinite values"
    choices = routes_of(fitted, problem)
    assert choices.shape == (len(LAMBDAS), n)


def check_unfitted_raises(router: Any) -> None:
    """Routing before ``fit`` raises ``routeharness.routers.base.NotFittedError`` (not an
    AttributeError from deep inside)."""
    problem = mock.tradeoff_problem()
    try:
        routes_of(fresh_copy(router), problem)
    except NotFittedError:
        return
    except Exception as exc:
        raise AssertionError(f"routing before fit() raised {type(exc).__name__}: {exc}; expected "
                             "routeharness.routers.base.NotFittedError (call self._check_fitted())") from None
    raise AssertionError("routing before fit() did not raise")


def check_fit_idempotent(router: Any) -> None:
    """Fitting on other data and then again on the first gives the first result: fit
    forgets everything from earlier fits."""
    problem, other = mock.tradeoff_problem(seed=0), mock.tradeoff_problem(seed=7)
    first = routes_of(fit_on(fresh_copy(router), problem), problem)
    again = fresh_copy(router)
    fit_on(again, problem)
    fit_on(again, other)
    fit_on(again, problem)
    second = routes_of(again, problem)
    changed = int((first != second).sum())
    assert changed == 0, f"refitting changed {changed} of {first.size} routes"


def check_batch_invariance(router: Any) -> None:
    """Routing the test prompts in two batches gives the same choices as one batch."""
    problem = mock.tradeoff_problem()
    fitted = fit_on(fresh_copy(router), problem)
    whole = routes_of(fitted, problem)
    half = problem.test.n // 3
    parts = [routes_of(fitted, problem, problem.X_test[rows], problem.test.subset(rows))
             for rows in (np.arange(half), np.arange(half, problem.test.n))]
    split = np.concatenate(parts, axis=1)
    changed = int((whole != split).sum())
    assert changed == 0, f"{changed} of {whole.size} routes change when the batch is split"


def check_reproducible(router: Any) -> None:
    """Two fits with the same ``random_state`` give the same routes."""
    problem = mock.tradeoff_problem()
    first = routes_of(fit_on(fresh_copy(router), problem), problem)
    second = routes_of(fit_on(fresh_copy(router), problem), problem)
    changed = int((first != second).sum())
    assert changed == 0, f"{changed} of {first.size} routes differ between two fits with random_state=0"


class _Spy:
    """Forwards to a router and records every argument the harness passes it."""

    def __init__(self, router: Any):
        object.__setattr__(self, "_router", router)
        object.__setattr__(self, "calls", [])

    def __getattr__(self, name: str) -> Any:
        value = getattr(self._router, name)
        if not callable(value):
            return value

        @functools.wraps(value)  # keeps the signature: the harness inspects it
        def recorded(*args: Any, **kwargs: Any) -> Any:
            self.calls.append((name, args, kwargs))
            return value(*args, **kwargs)

        return recorded


def check_no_test_labels(router: Any) -> None:
    """The router never receives the test labels. Proved three ways: its routing methods
    take only (X, lam, groups, texts); a spy on the harness path sees no score or cost array, no
    ``Outcomes`` and no ``RoutingData`` go in; and scrambling (or removing) the test
    labels leaves every route unchanged."""
    from routeharness.data.dataset import Outcomes, RoutingData
    from routeharness.evaluation.scoring import _labels_free

    for method in ("predict", "route", "route_sweep"):
        func = getattr(type(router), method, None)
        if func is None:
            continue
        extra = sorted(set(inspect.signature(func).parameters) - ROUTING_PARAMETERS)
        assert not extra, (f"{method}() takes {extra}: a routing method may take only "
                           "X, lam(s), groups and texts (the prompts, never their labels)")
    problem = mock.tradeoff_problem()
    fitted = fit_on(fresh_copy(router), problem)
    spy = _Spy(fitted)
    reference = routes_of(spy, problem)
    test = problem.test
    for name, args, kwargs in spy.calls:
        for value in (*args, *kwargs.values()):
            assert not isinstance(value, (Outcomes, RoutingData)), \
                f"the harness passed {type(value).__name__} to {name}()"
            if isinstance(value, np.ndarray) and value.shape == test.scores.shape:
                for label in ("scores", "costs"):
                    assert not np.array_equal(value, getattr(test, label), equal_nan=True), \
                        f"{name}() received the test {label}"
    rng = np.random.default_rng(0)
    scrambled = test.subset(np.arange(test.n))
    scrambled.scores = rng.permutation(test.scores.ravel()).reshape(test.scores.shape)
    scrambled.costs = rng.permutation(test.costs.ravel()).reshape(test.costs.shape)
    for label, data in (("scrambled", scrambled), ("removed", _labels_free(test))):
        routes = routes_of(fitted, problem, data=data)
        changed = int((routes != reference).sum())
        assert changed == 0, f"{changed} routes changed when the test labels were {label}"


def check_dominant_model(router: Any) -> None:
    """When one model is right on every prompt and the cheapest, the router picks it
    (on at least 95% of test prompts, at every trade-off)."""
    problem = mock.dominant_problem()
    choices = routes_of(fit_on(fresh_copy(router), problem), problem)
    share = (choices == mock.DOMINANT_INDEX).mean(axis=1)
    worst = int(np.argmin(share))
    assert share[worst] >= DOMINANT_SHARE, (
        f"picked the dominant model on {share[worst]:.0%} of prompts at lam={LAMBDAS[worst]} "
        f"(needs {DOMINANT_SHARE:.0%})")


def check_cost_monotone(router: Any) -> None:
    """Mean routed cost does not rise as the trade-off moves towards cost (within 0.02
    normalised units per step), and cost-only routing is no dearer than quality-only."""
    problem = mock.tradeoff_problem()
    choices = routes_of(fit_on(fresh_copy(router), problem), problem)
    costs = problem.test.costs / problem.test.costs.mean(axis=0).max()
    mean_cost = np.take_along_axis(costs.T, choices, axis=0).mean(axis=1)
    rises = np.diff(mean_cost)
    step = int(np.argmax(rises))
    assert rises[step] <= COST_RISE_TOLERANCE, (
        f"mean cost rose from {mean_cost[step]:.3f} to {mean_cost[step + 1]:.3f} as lam went "
        f"from {LAMBDAS[step]} to {LAMBDAS[step + 1]}")
    assert mean_cost[-1] <= mean_cost[0] + 1e-12, (
        f"cost-only routing ({mean_cost[-1]:.3f}) is dearer than quality-only ({mean_cost[0]:.3f})")


def check_tags(router: Any) -> None:
    """The tags are ``routeharness.routers.base.Tags`` (or a dict of known tags), and what they
    declare matches the code: ``needs_texts`` if and only if the routing methods take
    ``texts``; ``check_params`` names hyper-parameters."""
    tags = tags_of(router)
    takes_texts = [m for m in ("route", "route_sweep", "predict")
                   if getattr(type(router), m, None) is not None
                   and "texts" in inspect.signature(getattr(type(router), m)).parameters]
    if tags.needs_texts:
        assert "route_sweep" in takes_texts or "route" in takes_texts, \
            "tags declare needs_texts, but route()/route_sweep() take no texts="
    else:
        assert not takes_texts, (f"{takes_texts[0]}() takes texts=, but the tags do not "
                                 "declare needs_texts=True: the harness would never pass them")
    unknown = sorted(set(tags.check_params) - set(router.get_params()))
    assert not unknown, f"tags.check_params names unknown hyper-parameter(s) {unknown}"


def check_tie_preference(router: Any) -> None:
    """``tie_preference`` (which configuration wins a tie on validation AUC) is valid: a
    dict naming parameters of ``param_grid``, each with ``larger``/``smaller`` (numeric
    grid values), ``default``, or a list of its grid values, most preferred first. A
    router that declares none gets the harness's default (each tuned parameter nearest
    the router's default): allowed, never grid order."""
    try:
        tie_preference_of(router)
    except RouterContractError as exc:
        raise AssertionError(str(exc)) from None


def check_deterministic(router: Any) -> None:
    """A router declared ``deterministic`` (or one without ``random_state``, which the
    contract makes deterministic) routes the same after two fits with different
    ``random_state``: the harness fits it once per task and reuses the routes for every
    seed."""
    problem = mock.tradeoff_problem()
    first = routes_of(fit_on(fresh_copy(router), problem), problem)
    other = fresh_copy(router)
    if accepts_random_state(type(other)):
        other.set_params(random_state=12345)
    second = routes_of(fit_on(other, problem), problem)
    changed = int((first != second).sum())
    assert changed == 0, (f"{changed} of {first.size} routes differ between two fits with "
                          "different random_state: do not declare deterministic=True"
                          if tags_of(router).deterministic else
                          f"{changed} of {first.size} routes differ between two fits, and the "
                          "router takes no random_state to control its randomness")


def check_pickle_roundtrip(router: Any) -> None:
    """A fitted router survives ``pickle`` (in memory) and routes the same afterwards."""
    problem = mock.tradeoff_problem()
    fitted = fit_on(fresh_copy(router), problem)
    before = routes_of(fitted, problem)
    restored = pickle.loads(pickle.dumps(fitted))  # our own object, in memory only
    after = routes_of(restored, problem)
    assert np.array_equal(before, after), "routes differ after a pickle round trip"


def check_online_update(router: Any) -> None:
    """A router declared ``online`` learns from what ``study online`` gives it and keeps
    routing: ``partial_fit`` with bandit feedback (one observed cell per row, NaN
    elsewhere) returns ``self``; a call with no rows and one more column adds a model;
    afterwards it routes every prompt to a model of the wider pool, through the harness."""
    problem = mock.tradeoff_problem()
    fitted = fit_on(fresh_copy(router), problem)
    X = problem.X_test[:12]
    m = problem.m
    scores, costs = np.full((len(X), m), np.nan), np.full((len(X), m), np.nan)
    chosen = np.arange(len(X)) % m
    scores[np.arange(len(X)), chosen] = problem.test.scores[np.arange(len(X)), chosen]
    costs[np.arange(len(X)), chosen] = 0.5
    assert fitted.partial_fit(X, scores, costs) is fitted, "partial_fit() must return self"
    empty = np.full((0, m + 1), np.nan)
    assert fitted.partial_fit(X[:0], empty, empty.copy()) is fitted, \
        "partial_fit() with no rows and a new model must return self"
    wide = np.full((len(X), m + 1), np.nan)
    wide[:, m] = 1.0
    fitted.partial_fit(X, wide, np.where(np.isnan(wide), np.nan, 0.1))
    test = problem.test
    wider = RoutingData(test.ids, test.prompts, test.groups,
                        np.column_stack([test.scores, np.ones(test.n)]),
                        np.column_stack([test.costs, np.full(test.n, 0.1 * problem.cost_scale)]),
                        [*test.models, ModelInfo("mock-new")], split="test")
    routes = routes_of(fitted, problem, data=wider)
    assert routes.min() >= 0 and routes.max() <= m, "routes outside the wider pool"


def router_checks(router: Any) -> list[Check]:
    """The checks for ``router``, gated by its kind and tags (skipped ones say why)."""
    tags: Tags = tags_of(router)  # an unknown tag: RouterContractError, one line
    deterministic = tags.deterministic or not accepts_random_state(type(router))
    checks = [
        Check("check_tags", check_tags),
        Check("check_init_stores_params", check_init_stores_params),
        Check("check_tie_preference", check_tie_preference),
        Check("check_clone", check_clone),
        Check("check_fit_returns_self", check_fit_returns_self),
        Check("check_fit_does_not_mutate_inputs", check_fit_does_not_mutate_inputs),
        Check("check_route_shape_and_range", check_route_shape_and_range),
        Check("check_unfitted_raises", check_unfitted_raises),
        Check("check_fit_idempotent", check_fit_idempotent),
        Check("check_batch_invariance", check_batch_invariance),
        Check("check_reproducible", check_reproducible,
              None if accepts_random_state(type(router)) else "takes no random_state"),
        Check("check_deterministic", check_deterministic,
              None if deterministic else "not declared deterministic (takes a random_state)"),
        Check("check_no_test_labels", check_no_test_labels),
        Check("check_dominant_model", check_dominant_model),
        Check("check_cost_monotone", check_cost_monotone),
        Check("check_pickle_roundtrip", check_pickle_roundtrip,
              None if tags.pickle else "tags do not declare pickle=True"),
        Check("check_state_roundtrip", check_state_roundtrip,
              None if tags.saveable else "tags do not declare saveable=True"),
        Check("check_online_update", check_online_update,
              None if tags.online else "tags do not declare online=True"),
    ]
    return checks


