"""The conformance kit (routeharness.testing): every registered router passes it, and
each check catches the broken router it is meant to catch."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pytest

from routeharness.common.resources import builtin_dir
from routeharness.plugins.registry import get_registry
from routeharness.routers.base import (
    SELECTION,
    UTILITY,
    BaseRouter,
    RouterContractError,
    Tags,
    tags_of,
)
from routeharness.testing import (
    check_encoder,
    check_router,
    check_task_card,
    parametrize_with_checks,
)
from routeharness.testing.runner import ConformanceError

#: built-in routers' known, deliberate deviations from the contract
KNOWN_FAILURES = {
    "random": {
        "check_batch_invariance": "draws a fresh random sequence per call, so the draw for a "
                                  "prompt depends on the batch it is in",
        "check_dominant_model": "routes uniformly at random by design: a floor, not a router",
    },
}


def _expected(router: Any) -> dict[str, str]:
    return KNOWN_FAILURES.get(getattr(router, "_routeharness_name", ""), {})


#: routers whose kit run takes seconds with their defaults; any other registered router
#: runs in the default suite only if it declares fast settings in Tags(check_params=...),
#: else under the ``slow`` marker (a learned router with hundreds of epochs takes minutes)
FAST_ROUTERS = {"knn", "knn-vote", "linear", "linucb", "random", "best-single", "cheapest",
                "nearest-centroid"}


def _kit_params() -> list[Any]:
    params = []
    for mark in parametrize_with_checks(get_registry("router").names(),
                                        expected_failures=_expected).args[1]:
        router = mark.values[0]
        fast = router._routeharness_name in FAST_ROUTERS or bool(tags_of(router).check_params)
        params.append(mark if fast else pytest.param(*mark.values, id=mark.id,
                                                      marks=[*mark.marks, pytest.mark.slow]))
    return params


# every router any loaded plugin registers, including those added later
@pytest.mark.parametrize("router, check", _kit_params())
def test_registered_router_conforms(router, check):
    check(router)


def test_the_builtins_are_all_covered():
    names = set(get_registry("router").names())
    assert {"knn", "knn-vote", "random", "best-single", "cheapest"} <= names
    assert "oracle" not in names  # a reference the harness computes, not a router


# --- each check catches what it is meant to catch -----------------------------------------
class _Good(BaseRouter):
    """A minimal correct utility router: the training means (every prompt alike)."""

    kind = UTILITY
    param_grid: ClassVar[dict[str, list[Any]]] = {"shrink": [0.0, 0.5]}
    tags: ClassVar[dict[str, Any]] = {"pickle": True, "saveable": True}

    def __init__(self, shrink: float = 0.0, random_state: int | None = None):
        self.shrink = shrink
        self.random_state = random_state

    def fit(self, X, outcomes):
        self.scores_ = np.nanmean(outcomes.scores, axis=0)
        self.costs_ = np.nanmean(outcomes.costs, axis=0)
        return self

    def predict(self, X, groups=None):
        self._check_fitted()
        n = len(X)
        return np.tile(self.scores_, (n, 1)), np.tile(self.costs_, (n, 1))


class _AlwaysFirst(_Good):
    def predict(self, X, groups=None):
        scores, costs = super().predict(X, groups)
        scores[:, 0] += 10.0
        return scores, costs


class _FitReturnsNone(_Good):
    def fit(self, X, outcomes):
        super().fit(X, outcomes)


class _ChangesParams(_Good):
    def __init__(self, shrink: float = 0.0, random_state: int | None = None):
        self.shrink = float(shrink) + 1.0
        self.random_state = random_state


class _NoFittedCheck(_Good):
    def predict(self, X, groups=None):
        n = len(X)
        return np.tile(self.scores_, (n, 1)), np.tile(self.costs_, (n, 1))


class _Accumulates(_Good):
    """Keeps adding to its state across fits: not idempotent."""

    def fit(self, X, outcomes):
        previous = getattr(self, "scores_", 0.0)
        super().fit(X, outcomes)
        self.scores_ = self.scores_ + previous
        return self


class _BatchDependent(_Good):
    """Scores relative to the batch's own first prompt: depends on the batch split."""

    def predict(self, X, groups=None):
        scores, costs = super().predict(X, groups)
        return scores + 5.0 * np.outer(X[:, 0] - X[0, 0], np.arange(scores.shape[1])), costs


class _PrefersExpensive(_Good):
    """Reads lam the wrong way round: dearer models as cost matters more."""

    kind = SELECTION

    def route(self, X, lam, groups=None):
        self._check_fitted()
        order = np.argsort(self.costs_)
        pick = order[-1] if lam > 1 else order[0]
        return np.full(len(X), pick, dtype=np.int64)


class _Leaky(_Good):
    """Asks the harness for the test outcomes: its routing method takes them."""

    def predict(self, X, groups=None, outcomes=None):
        return super().predict(X, groups)


class _NotPicklable(_Good):
    def fit(self, X, outcomes):
        super().fit(X, outcomes)
        self.transform_ = lambda x: x
        return self


class _MutatesInput(_Good):
    def fit(self, X, outcomes):
        outcomes.scores[np.isnan(outcomes.scores)] = 0.0
        outcomes.scores[0, 0] = 1.0 - outcomes.scores[0, 0]
        return super().fit(X, outcomes)


def _statuses(router: Any, **kwargs: Any) -> dict[str, str]:
    return {r.name: r.status for r in check_router(router, raise_on_failure=False, **kwargs)}


def test_a_correct_router_passes_everything():
    statuses = _statuses(_Good())
    skipped = {name for name, status in statuses.items() if status == "skipped"}
    # it takes a random_state; learning online is optional
    assert skipped == {"check_deterministic", "check_online_update"}, statuses
    assert set(statuses.values()) == {"passed", "skipped"}, statuses


@pytest.mark.parametrize("router, check", [
    (_AlwaysFirst(), "check_dominant_model"),
    (_FitReturnsNone(), "check_fit_returns_self"),
    (_ChangesParams(), "check_init_stores_params"),
    (_NoFittedCheck(), "check_unfitted_raises"),
    (_Accumulates(), "check_fit_idempotent"),
    (_BatchDependent(), "check_batch_invariance"),
    (_PrefersExpensive(), "check_cost_monotone"),
    (_Leaky(), "check_no_test_labels"),
    (_NotPicklable(), "check_pickle_roundtrip"),
    (_MutatesInput(), "check_fit_does_not_mutate_inputs"),
], ids=lambda value: value if isinstance(value, str) else type(value).__name__)
def test_each_check_catches_its_fault(router, check):
    statuses = _statuses(router)
    assert statuses[check] == "failed", statuses


class _SlowByDefault(_Good):
    """Declares fast settings for the kit; its defaults would be refused here."""

    param_grid: ClassVar[dict[str, list[Any]]] = {"epochs": [2, 5]}
    tags: ClassVar[dict[str, Any]] = {"pickle": True, "check_params": {"epochs": 2}}

    def __init__(self, epochs: int = 500, random_state: int | None = None):
        self.epochs = epochs
        self.random_state = random_state

    def fit(self, X, outcomes):
        if self.epochs > 10:
            raise RuntimeError("too slow for a test")
        return super().fit(X, outcomes)


def test_the_kit_applies_declared_check_params():
    statuses = _statuses(_SlowByDefault())
    assert set(statuses.values()) == {"passed", "skipped"}, statuses


def test_failures_raise_one_error_naming_each_check():
    with pytest.raises(ConformanceError, match="check_dominant_model: picked the dominant"):
        check_router(_AlwaysFirst())


def test_expected_failures_are_reported_with_their_reason():
    results = check_router(_AlwaysFirst(), expected_failures={
        "check_dominant_model": "always answers with model 0 on purpose"})
    by_name = {r.name: r for r in results}
    assert by_name["check_dominant_model"].status == "xfail"
    assert "on purpose" in by_name["check_dominant_model"].message
    # an expected failure that passes is reported, not hidden
    xpass = check_router(_Good(), expected_failures={"check_clone": "thought it broke"})
    assert {r.name: r.status for r in xpass}["check_clone"] == "xpass"
    with pytest.raises(ConformanceError, match="unknown check"):
        check_router(_Good(), expected_failures={"check_typo": "x"})


def test_capabilities_gate_the_checks():
    knn = _statuses("knn")
    assert knn["check_pickle_roundtrip"] == "skipped"  # knn does not declare it
    assert knn["check_deterministic"] == "passed"  # knn declares deterministic=True
    best = _statuses("best-single")
    assert best["check_pickle_roundtrip"] == "passed"
    assert _statuses(_Good())["check_deterministic"] == "skipped"  # takes a random_state


# --- the label proof goes through the harness's own routing path --------------------------
def test_scrambled_labels_prove_nothing_leaks_through_route_split(monkeypatch):
    """A router that could see test labels through the harness would change its routes
    when they are scrambled; the check scrambles them on the path evaluate uses."""
    import routeharness.testing.harness as harness_module
    from routeharness.testing import checks

    def leaky_route_split(router, X, data, lams, cost_scale):  # a harness bug, simulated
        best = np.nan_to_num(data.scores, nan=0.0).argmax(axis=1)
        return np.tile(best, (len(lams), 1))

    monkeypatch.setattr(harness_module, "route_split", leaky_route_split)
    with pytest.raises(AssertionError, match="test labels were scrambled"):
        checks.check_no_test_labels(_Good())


# --- encoders -----------------------------------------------------------------------------
class _BadEncoder:
    name, identity, revision = "bad", "bad-encoder", "1"
    modalities = frozenset({"text"})

    def __init__(self):
        self.calls = 0

    def encode(self, texts, images=None, *, progress=None):
        self.calls += 1
        if not texts:
            raise IndexError("list index out of range")
        rng = np.random.default_rng(self.calls)  # a new vector every call
        return rng.normal(size=(len(texts), 4))  # float64


def test_encoder_checks_catch_a_bad_encoder():
    statuses = {r.name: r.status for r in check_encoder(_BadEncoder(), raise_on_failure=False)}
    assert statuses == {"check_encoder_attributes": "passed", "check_encoder_shape_dtype": "failed",
                        "check_encoder_deterministic": "failed",
                        "check_encoder_empty_input": "failed"}


def test_the_default_encoder_conforms(minilm):
    results = check_encoder(minilm)
    assert all(r.status == "passed" for r in results), results


# --- task cards ---------------------------------------------------------------------------
@pytest.mark.parametrize("card", sorted(builtin_dir("tasks").glob("*.yaml")), ids=lambda p: p.stem)
def test_every_builtin_task_card_conforms(card):
    check_task_card(card)


def _write_card(folder: Path, name: str, **changes: Any) -> Path:
    import yaml

    data = yaml.safe_load((builtin_dir("tasks") / "routerbench.yaml").read_text(encoding="utf-8"))
    data["name"] = name
    data.update(changes)
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


def test_task_card_checks_catch_bad_cards(tmp_path):
    def failed(path: Path) -> dict[str, str]:
        return {r.name: r.message for r in check_task_card(path, raise_on_failure=False)
                if r.status == "failed"}

    for folder in "abcd":
        (tmp_path / folder).mkdir()
    unknown_key = _write_card(tmp_path / "a", "mine", homepage="https://example.org")
    assert "unknown key(s) ['homepage']" in failed(unknown_key)["check_card_schema"]
    moving = _write_card(tmp_path / "b", "moving", source={"upstream": "x", "revision": "main"})
    assert "moving reference" in failed(moving)["check_card_pinned_revision"]
    zero = _write_card(tmp_path / "c", "zero", version=0)
    assert "version" in failed(zero)["check_card_schema"]
    taken = _write_card(tmp_path / "d", "routerbench")
    assert "already registered" in failed(taken)["check_card_unique_name"]
    twin = _write_card(tmp_path / "d", "twin")
    (tmp_path / "d" / "twin-copy.yaml").write_text(twin.read_text(encoding="utf-8"), encoding="utf-8")
    assert "also declares name 'twin'" in failed(twin)["check_card_unique_name"]


# --- the command --------------------------------------------------------------------------
def test_check_command_prints_a_table(cli):
    done = cli("check", "knn")
    assert done.returncode == 0, done.stderr
    assert "check_no_test_labels" in done.stdout and "passed" in done.stdout
    assert "skipped" in done.stdout  # pickle is not declared by knn


def test_check_command_fails_on_unexpected_failures_and_accepts_declared_ones(cli):
    done = cli("check", "random", "--json")
    assert done.returncode == 1
    failed = {r["name"] for r in json.loads(done.stdout) if r["status"] == "failed"}
    assert failed == set(KNOWN_FAILURES["random"])
    declared = [f"--xfail={name}={reason}" for name, reason in KNOWN_FAILURES["random"].items()]
    done = cli("check", "random", *declared)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "xfail" in done.stdout
    unknown = cli("check", "no-such-router")
    assert unknown.returncode == 2 and "unknown router" in unknown.stderr


# --- the typed tags -----------------------------------------------------------------------
class _TypoTag(_Good):
    tags: ClassVar[dict[str, Any]] = {"pickle": True, "determinstic": True}


class _BadTagType(_Good):
    tags: ClassVar[dict[str, Any]] = {"pickle": "yes"}


def test_an_unknown_or_ill_typed_tag_is_a_one_line_error_naming_the_class():
    with pytest.raises(RouterContractError, match=r"_TypoTag\.tags has unknown tag\(s\) "
                                                  r"\['determinstic'\]"):
        check_router(_TypoTag())
    with pytest.raises(RouterContractError, match=r"_BadTagType\.tags\['pickle'\] must be a bool"):
        tags_of(_BadTagType)
    assert tags_of(_Good) == Tags(pickle=True, saveable=True)  # a plain dict converts


class _FalselyDeterministic(_Good):
    """Declares deterministic, but its fit draws from random_state."""

    tags: ClassVar[Tags] = Tags(deterministic=True, pickle=True)

    def fit(self, X, outcomes):
        super().fit(X, outcomes)
        self.scores_ = self.scores_ + np.random.default_rng(self.random_state).normal(
            0, 0.3, self.scores_.shape)
        return self


class _TextsUndeclared(_Good):
    """Takes texts= but does not declare needs_texts: the harness would never pass them."""

    def predict(self, X, groups=None, texts=None):
        return super().predict(X, groups)


class _TextsDeclared(_TextsUndeclared):
    tags: ClassVar[Tags] = Tags(pickle=True, needs_texts=True)

    def route_sweep(self, X, lams, groups=None, texts=None):
        assert texts is not None and len(texts) == len(X), "the harness passed no texts"
        return super().route_sweep(X, lams, groups)


class _GroupsSpy(_Good):
    """Records the groups the harness passes."""

    seen: ClassVar[list[Any]] = []

    def route_sweep(self, X, lams, groups=None):
        type(self).seen.append(groups)
        return super().route_sweep(X, lams, groups)


class _GroupsNeeded(_GroupsSpy):
    seen: ClassVar[list[Any]] = []
    tags: ClassVar[Tags] = Tags(pickle=True, needs_groups=True)


def test_tag_checks_catch_a_router_whose_tags_lie():
    assert _statuses(_FalselyDeterministic())["check_deterministic"] == "failed"
    assert _statuses(_TextsUndeclared())["check_tags"] == "failed"
    assert set(_statuses(_TextsDeclared()).values()) == {"passed", "skipped"}


def test_the_harness_passes_groups_only_to_routers_that_declare_them():
    from routeharness.evaluation.scoring import route_split
    from routeharness.testing import mock

    problem = mock.tradeoff_problem()
    for cls, wants in ((_GroupsSpy, False), (_GroupsNeeded, True)):
        router = cls().fit(problem.X_train, problem.train)
        route_split(router, problem.X_test, problem.test, [0.0, 1.0], 1.0)
        assert (cls.seen[-1] is not None) is wants, cls.__name__


# --- the saved-state check: a state that lies is caught, with a clear message --------------
class _ForgetfulState(_Good):
    """Declares saveable, but its state forgets ``costs_``, which routing reads."""

    def get_state(self):
        from routeharness.routers.state import default_state

        self._check_fitted()
        return default_state(self, skip=("costs_",))


class _StaleState(_Good):
    """Its state holds every name, but the scores it saves are not the fitted ones."""

    def get_state(self):
        state = super().get_state()
        state.arrays["scores_"] = state.arrays["scores_"][::-1].copy()
        return state


class _StateBeforeFit(_Good):
    """get_state() before fit returns an empty state instead of raising NotFittedError."""

    def get_state(self):
        from routeharness.routers.state import RouterState

        return RouterState() if not hasattr(self, "scores_") else super().get_state()


def _message(router: Any, check: str) -> str:
    by_name = {r.name: r for r in check_router(router, raise_on_failure=False)}
    assert by_name[check].status == "failed", by_name[check]
    return by_name[check].message


def test_the_state_check_catches_a_state_that_lies():
    assert _statuses(_Good())["check_state_roundtrip"] == "passed"
    forgot = _message(_ForgetfulState(), "check_state_roundtrip")
    assert "failed to route" in forgot and "costs_" in forgot, forgot
    assert "get_state() must hold everything routing reads" in forgot
    stale = _message(_StaleState(), "check_state_roundtrip")
    assert "routes on test prompts differ after get_state() -> write_state" in stale, stale
    early = _message(_StateBeforeFit(), "check_state_roundtrip")
    assert early == "get_state() before fit() did not raise NotFittedError"
    # a router that does not declare saveable is not asked to round-trip
    skipped = {r.name: r for r in check_router(_SlowByDefault(), raise_on_failure=False)}
    assert skipped["check_state_roundtrip"].status == "skipped"
    assert skipped["check_state_roundtrip"].message == "tags do not declare saveable=True"
