"""The conformance checks: routers, encoders and task cards.

Every check is a function ``check_<what>(obj)`` that returns ``None`` when ``obj`` conforms
and raises ``AssertionError`` with a one-line reason when it does not. Which checks apply
to a router depends on what it declares: its ``kind`` (utility or selection) and its
``routeharness.base.Tags`` (``pickle``: must survive a pickle round trip;
``deterministic``: two fits with different ``random_state`` route the same;
``check_params``: the settings the checks run with). Routers are always exercised through the
harness's own code path (``routeharness.evaluate.route_split``), on the mock problems in
``routeharness.testing.mock``.
"""

from __future__ import annotations

import functools
import inspect
import pickle
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from routeharness.base import (
    SELECTION,
    UTILITY,
    NotFittedError,
    Tags,
    accepts_random_state,
    clone,
    tags_of,
)
from routeharness.errors import RouteHarnessError, UnknownNameError
from routeharness.protocol import lambda_sweep
from routeharness.testing import mock

#: the trade-offs the checks sweep: quality only, the protocol's range in decades, cost
#: only (0, 1e-3, 1e-2, ..., 1e3, inf)
LAMBDAS: tuple[float, ...] = lambda_sweep(7)
#: a router must pick the dominant model on at least this share of prompts, at every lam
DOMINANT_SHARE = 0.95
#: allowed rise of mean routed cost between consecutive lams (normalised cost units)
COST_RISE_TOLERANCE = 0.02
#: names a routing method may take: the harness passes nothing else
ROUTING_PARAMETERS = {"self", "X", "lam", "lams", "groups", "texts"}
MOVING_REVISIONS = {"", "main", "master", "head", "latest", "dev", "trunk"}


class ConformanceError(RouteHarnessError):
    """A router, encoder or task card failed checks it was not expected to fail."""


@dataclass(frozen=True)
class Check:
    """One check bound to its name; ``skip`` says why it does not apply, if it does not."""

    name: str
    func: Callable[[Any], None]
    skip: str | None = None

    def __call__(self, obj: Any) -> None:
        self.func(obj)


@dataclass
class CheckResult:
    """The outcome of one check: passed, failed, xfail (expected), xpass, or skipped."""

    name: str
    status: str
    message: str = ""
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.status != "failed"


# --- helpers ------------------------------------------------------------------------------
def _fresh(router: Any, **overrides: Any) -> Any:
    """An unfitted copy with ``random_state=0`` when the router takes one (reproducible),
    and the router's declared ``tags["check_params"]`` applied: smaller settings (fewer
    epochs) under which the contract still holds and the checks run in seconds, as
    scikit-learn's checks lower ``max_iter``."""
    new = clone(router)
    if accepts_random_state(type(new)) and getattr(new, "random_state", None) is None:
        new.set_params(random_state=0)
    check_params = tags_of(new).check_params
    if check_params:
        new.set_params(**check_params)
    if overrides:
        new.set_params(**overrides)
    return new


def _fit(router: Any, problem: mock.MockProblem) -> Any:
    return router.fit(problem.X_train, problem.train)


def _routes(router: Any, problem: mock.MockProblem, X: np.ndarray | None = None,
            data: Any = None, lams: Iterable[float] = LAMBDAS) -> np.ndarray:
    """(L, n) choices through the harness's own path (``evaluate.route_split``)."""
    from routeharness.evaluate import route_split

    X = problem.X_test if X is None else X
    data = problem.test if data is None else data
    return route_split(router, X, data, list(lams), problem.cost_scale)


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
                                         "routeharness.base.BaseRouter")
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
    """``routeharness.base.clone`` of a fitted router is a new, unfitted router with the
    same hyper-parameters."""
    fitted = _fit(_fresh(router), mock.tradeoff_problem())
    copy = clone(fitted)
    assert copy is not fitted, "clone() returned the same object"
    assert type(copy) is type(fitted), f"clone() returned a {type(copy).__name__}"
    for name, value in fitted.get_params().items():
        assert _same(copy.get_params()[name], value), f"clone changed hyper-parameter {name!r}"
    leftovers = _fitted_attributes(copy)
    assert not leftovers, f"a clone carries fitted state {leftovers}"


def check_fit_returns_self(router: Any) -> None:
    """``fit`` returns the router itself (so ``router.fit(X, y).route(...)`` works)."""
    fresh = _fresh(router)
    returned = _fit(fresh, mock.tradeoff_problem())
    assert returned is fresh, f"fit() returned {type(returned).__name__}, not self"
    assert _fitted_attributes(fresh), "fit() set no fitted attribute (name ending in '_')"


def check_fit_does_not_mutate_inputs(router: Any) -> None:
    """``fit`` leaves the embeddings and the outcome arrays it was given untouched."""
    problem = mock.tradeoff_problem()
    before = (problem.X_train.copy(), problem.train.scores.copy(), problem.train.costs.copy())
    _fit(_fresh(router), problem)
    for what, old, new in zip(("X", "outcomes.scores", "outcomes.costs"), before,
                              (problem.X_train, problem.train.scores, problem.train.costs)):
        assert np.array_equal(old, new, equal_nan=True), f"fit() modified {what} in place"


def check_route_shape_and_range(router: Any) -> None:
    """Routes are integer model indices of shape (L, n), in 0..m-1; a utility router's
    ``predict`` gives two finite (n, m) arrays; a single ``route`` gives (n,)."""
    problem = mock.tradeoff_problem()
    fitted = _fit(_fresh(router), problem)
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
    choices = _routes(fitted, problem)
    assert choices.shape == (len(LAMBDAS), n)


def check_unfitted_raises(router: Any) -> None:
    """Routing before ``fit`` raises ``routeharness.base.NotFittedError`` (not an
    AttributeError from deep inside)."""
    problem = mock.tradeoff_problem()
    try:
        _routes(_fresh(router), problem)
    except NotFittedError:
        return
    except Exception as exc:
        raise AssertionError(f"routing before fit() raised {type(exc).__name__}: {exc}; expected "
                             "routeharness.base.NotFittedError (call self._check_fitted())") from None
    raise AssertionError("routing before fit() did not raise")


def check_fit_idempotent(router: Any) -> None:
    """Fitting on other data and then again on the first gives the first result: fit
    forgets everything from earlier fits."""
    problem, other = mock.tradeoff_problem(seed=0), mock.tradeoff_problem(seed=7)
    first = _routes(_fit(_fresh(router), problem), problem)
    again = _fresh(router)
    _fit(again, problem)
    _fit(again, other)
    _fit(again, problem)
    second = _routes(again, problem)
    changed = int((first != second).sum())
    assert changed == 0, f"refitting changed {changed} of {first.size} routes"


def check_batch_invariance(router: Any) -> None:
    """Routing the test prompts in two batches gives the same choices as one batch."""
    problem = mock.tradeoff_problem()
    fitted = _fit(_fresh(router), problem)
    whole = _routes(fitted, problem)
    half = problem.test.n // 3
    parts = [_routes(fitted, problem, problem.X_test[rows], problem.test.subset(rows))
             for rows in (np.arange(half), np.arange(half, problem.test.n))]
    split = np.concatenate(parts, axis=1)
    changed = int((whole != split).sum())
    assert changed == 0, f"{changed} of {whole.size} routes change when the batch is split"


def check_reproducible(router: Any) -> None:
    """Two fits with the same ``random_state`` give the same routes."""
    problem = mock.tradeoff_problem()
    first = _routes(_fit(_fresh(router), problem), problem)
    second = _routes(_fit(_fresh(router), problem), problem)
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
    from routeharness.data import Outcomes, RoutingData
    from routeharness.evaluate import _labels_free

    for method in ("predict", "route", "route_sweep"):
        func = getattr(type(router), method, None)
        if func is None:
            continue
        extra = sorted(set(inspect.signature(func).parameters) - ROUTING_PARAMETERS)
        assert not extra, (f"{method}() takes {extra}: a routing method may take only "
                           "X, lam(s), groups and texts (the prompts, never their labels)")
    problem = mock.tradeoff_problem()
    fitted = _fit(_fresh(router), problem)
    spy = _Spy(fitted)
    reference = _routes(spy, problem)
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
        routes = _routes(fitted, problem, data=data)
        changed = int((routes != reference).sum())
        assert changed == 0, f"{changed} routes changed when the test labels were {label}"


def check_dominant_model(router: Any) -> None:
    """When one model is right on every prompt and the cheapest, the router picks it
    (on at least 95% of test prompts, at every trade-off)."""
    problem = mock.dominant_problem()
    choices = _routes(_fit(_fresh(router), problem), problem)
    share = (choices == mock.DOMINANT_INDEX).mean(axis=1)
    worst = int(np.argmin(share))
    assert share[worst] >= DOMINANT_SHARE, (
        f"picked the dominant model on {share[worst]:.0%} of prompts at lam={LAMBDAS[worst]} "
        f"(needs {DOMINANT_SHARE:.0%})")


def check_cost_monotone(router: Any) -> None:
    """Mean routed cost does not rise as the trade-off moves towards cost (within 0.02
    normalised units per step), and cost-only routing is no dearer than quality-only."""
    problem = mock.tradeoff_problem()
    choices = _routes(_fit(_fresh(router), problem), problem)
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
    """The tags are ``routeharness.base.Tags`` (or a dict of known tags), and what they
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


def check_deterministic(router: Any) -> None:
    """A router declared ``deterministic`` (or one without ``random_state``, which the
    contract makes deterministic) routes the same after two fits with different
    ``random_state``: the harness fits it once per task and reuses the routes for every
    seed."""
    problem = mock.tradeoff_problem()
    first = _routes(_fit(_fresh(router), problem), problem)
    other = _fresh(router)
    if accepts_random_state(type(other)):
        other.set_params(random_state=12345)
    second = _routes(_fit(other, problem), problem)
    changed = int((first != second).sum())
    assert changed == 0, (f"{changed} of {first.size} routes differ between two fits with "
                          "different random_state: do not declare deterministic=True"
                          if tags_of(router).deterministic else
                          f"{changed} of {first.size} routes differ between two fits, and the "
                          "router takes no random_state to control its randomness")


def check_pickle_roundtrip(router: Any) -> None:
    """A fitted router survives ``pickle`` (in memory) and routes the same afterwards."""
    problem = mock.tradeoff_problem()
    fitted = _fit(_fresh(router), problem)
    before = _routes(fitted, problem)
    restored = pickle.loads(pickle.dumps(fitted))  # our own object, in memory only
    after = _routes(restored, problem)
    assert np.array_equal(before, after), "routes differ after a pickle round trip"


def router_checks(router: Any) -> list[Check]:
    """The checks for ``router``, gated by its kind and tags (skipped ones say why)."""
    tags: Tags = tags_of(router)  # an unknown tag: RouterContractError, one line
    deterministic = tags.deterministic or not accepts_random_state(type(router))
    checks = [
        Check("check_tags", check_tags),
        Check("check_init_stores_params", check_init_stores_params),
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
    ]
    return checks


# --- encoder checks -----------------------------------------------------------------------
SAMPLE_TEXTS = ["What is the capital of France?", "Write a Python function that reverses a list.",
                "naïve café, 東京, emoji 🙂", "", "A much longer prompt " * 20]


def check_encoder_attributes(encoder: Any) -> None:
    """``name``, ``identity`` and ``revision`` are non-empty strings (the cache key), and
    ``modalities`` is a set with ``"text"``, within {"text", "image"}."""
    for attribute in ("name", "identity", "revision"):
        value = getattr(encoder, attribute, None)
        assert isinstance(value, str) and value, f"encoder.{attribute} must be a non-empty string"
    modalities = getattr(encoder, "modalities", None)
    assert isinstance(modalities, (set, frozenset)), "encoder.modalities must be a (frozen)set"
    assert "text" in modalities and set(modalities) <= {"text", "image"}, \
        f"encoder.modalities {sorted(modalities)} must include 'text', within text and image"
    assert callable(getattr(encoder, "encode", None)), "encoder has no encode()"


def _encode(encoder: Any, texts: list[str]) -> np.ndarray:
    return encoder.encode(list(texts), None)


def check_encoder_shape_dtype(encoder: Any) -> None:
    """``encode(texts)`` returns a finite float32 array of shape (len(texts), d), d > 0."""
    out = _encode(encoder, SAMPLE_TEXTS)
    assert isinstance(out, np.ndarray), f"encode returned {type(out).__name__}, not numpy"
    assert out.dtype == np.float32, f"encode returned dtype {out.dtype}, expected float32"
    assert out.ndim == 2 and out.shape[0] == len(SAMPLE_TEXTS) and out.shape[1] > 0, \
        f"encode returned shape {out.shape} for {len(SAMPLE_TEXTS)} texts"
    assert np.isfinite(out).all(), "encode returned NaN or infinite values"


def check_encoder_deterministic(encoder: Any) -> None:
    """The same texts give the same vectors (the embedding cache relies on it), also when
    encoded alone instead of in a batch."""
    first, second = _encode(encoder, SAMPLE_TEXTS), _encode(encoder, SAMPLE_TEXTS)
    assert np.allclose(first, second, atol=1e-5), "two encodings of the same texts differ"
    alone = _encode(encoder, SAMPLE_TEXTS[:1])
    assert np.allclose(alone, first[:1], atol=1e-4), \
        "a text encoded alone differs from the same text encoded in a batch"


def check_encoder_empty_input(encoder: Any) -> None:
    """``encode([])`` returns a (0, d) float32 array (or raises a clear RouteHarnessError)."""
    d = _encode(encoder, SAMPLE_TEXTS[:1]).shape[1]
    try:
        out = _encode(encoder, [])
    except RouteHarnessError:
        return
    except Exception as exc:
        raise AssertionError(f"encode([]) raised {type(exc).__name__}: {exc}") from None
    out = np.asarray(out)
    assert out.shape == (0, d), f"encode([]) returned shape {out.shape}, expected (0, {d})"
    assert out.dtype == np.float32, f"encode([]) returned dtype {out.dtype}"


def encoder_checks(encoder: Any) -> list[Check]:
    return [Check("check_encoder_attributes", check_encoder_attributes),
            Check("check_encoder_shape_dtype", check_encoder_shape_dtype),
            Check("check_encoder_deterministic", check_encoder_deterministic),
            Check("check_encoder_empty_input", check_encoder_empty_input)]


# --- task card checks ---------------------------------------------------------------------
def _card_path(card: Any) -> Path:
    """A card path from a path, a registered task name, or a parsed TaskCard."""
    if hasattr(card, "path") and hasattr(card, "version"):
        return Path(card.path)
    text = str(card)
    if Path(text).suffix in (".yaml", ".yml") or Path(text).exists():
        return Path(text)
    from routeharness.registry import get_registry

    entry = get_registry("task").get(text)
    path = entry.options.get("card")
    assert path, f"task {text!r} has no task card"
    return Path(path)


def check_card_schema(card: Any) -> None:
    """The card parses under the strict schema (unknown keys, missing keys and wrong
    types are errors)."""
    from routeharness.errors import TaskCardError
    from routeharness.tasks import load_card

    try:
        load_card(_card_path(card))
    except TaskCardError as exc:
        raise AssertionError(str(exc)) from None


def _parsed(card: Any) -> Any:
    from routeharness.tasks import load_card

    return load_card(_card_path(card))


def check_card_version(card: Any) -> None:
    """``version`` is a positive integer (a changed task is a new version)."""
    parsed = _parsed(card)
    assert isinstance(parsed.version, int) and parsed.version >= 1, \
        f"version must be a positive integer, got {parsed.version!r}"


def check_card_pinned_revision(card: Any) -> None:
    """The source names a fixed revision or commit, not a moving branch."""
    parsed = _parsed(card)
    revision = parsed.revision
    assert revision is not None, "source has neither 'revision' nor 'commit': pin the data"
    assert str(revision).strip().lower() not in MOVING_REVISIONS, \
        f"source revision {revision!r} is a moving reference: pin a commit or tag"


def check_card_models_and_splits(card: Any) -> None:
    """At least two candidate models (else there is nothing to route) and all three splits."""
    parsed = _parsed(card)
    assert len(parsed.models) >= 2, f"{len(parsed.models)} model(s): routing needs at least two"
    missing = [s for s in ("train", "validation", "test") if s not in parsed.splits]
    assert not missing, f"splits lacks {missing}"


def check_card_unique_name(card: Any) -> None:
    """No other card in the same folder, and no other registered task, uses its name."""
    path = _card_path(card)
    parsed = _parsed(card)
    import yaml

    for other in sorted(path.parent.glob("*.y*ml")):
        if other.resolve() == path.resolve():
            continue
        try:
            data = yaml.safe_load(other.read_text(encoding="utf-8"))
        except Exception:
            continue
        assert not (isinstance(data, dict) and data.get("name") == parsed.name), \
            f"{other} also declares name {parsed.name!r}"
    from routeharness.registry import get_registry

    try:
        entry = get_registry("task").get(parsed.name)
    except UnknownNameError:
        return
    registered = entry.options.get("card")
    assert registered is None or Path(registered).resolve() == path.resolve(), (
        f"task name {parsed.name!r} is already registered by plugin {entry.plugin!r} "
        f"({entry.distribution}) with card {registered}")


def task_card_checks(card: Any) -> list[Check]:
    return [Check("check_card_schema", check_card_schema),
            Check("check_card_version", check_card_version),
            Check("check_card_pinned_revision", check_card_pinned_revision),
            Check("check_card_models_and_splits", check_card_models_and_splits),
            Check("check_card_unique_name", check_card_unique_name)]


# --- running ------------------------------------------------------------------------------
ExpectedFailures = Mapping[str, str] | Callable[[Any], Mapping[str, str]] | None


def expected_failures_of(obj: Any, expected: ExpectedFailures = None) -> dict[str, str]:
    """Declared expected failures: the object's ``tags["expected_failures"]`` and the
    caller's mapping (or callable ``obj -> mapping``), check name -> reason."""
    tags = getattr(obj, "tags", None)
    if isinstance(tags, Tags) or hasattr(obj, "fit"):
        out = dict(tags_of(obj).expected_failures)
    else:  # encoders and task cards may carry a plain mapping
        out = dict((tags or {}).get("expected_failures", {}) or {}) if isinstance(tags, Mapping) \
            else {}
    if callable(expected):
        out.update(expected(obj) or {})
    elif expected:
        out.update(expected)
    return out


def run_checks(obj: Any, checks: list[Check], expected: Mapping[str, str]) -> list[CheckResult]:
    """Run each check; classify as passed / failed / xfail / xpass / skipped."""
    unknown = sorted(set(expected) - {c.name for c in checks})
    if unknown:
        raise ConformanceError(f"expected_failures names unknown check(s) {unknown}; "
                               f"the checks are {[c.name for c in checks]}")
    results = []
    for check in checks:
        if check.skip:
            results.append(CheckResult(check.name, "skipped", check.skip))
            continue
        started = time.perf_counter()
        try:
            check(obj)
        except Exception as exc:
            message = str(exc) if isinstance(exc, AssertionError) else f"{type(exc).__name__}: {exc}"
            message = message.strip().splitlines()[0] if message.strip() else type(exc).__name__
            if check.name in expected:
                status, message = "xfail", f"{expected[check.name]} ({message})"
            else:
                status = "failed"
        else:
            status, message = ("xpass", f"expected to fail: {expected[check.name]}") \
                if check.name in expected else ("passed", "")
        results.append(CheckResult(check.name, status, message, time.perf_counter() - started))
    return results


def _raise_on_failures(what: str, results: list[CheckResult]) -> None:
    failed = [r for r in results if r.status == "failed"]
    if failed:
        raise ConformanceError(f"{what} failed {len(failed)} check(s): " + "; ".join(
            f"{r.name}: {r.message}" for r in failed))
