"""The saved-state check of routers that declare ``Tags(saveable=True)``: the fitted router
as plain data (``get_state``), through the files a saved router is made of
(``routeharness.routers.state.write_state`` / ``read_state``: safetensors and JSON, no pickle),
rebuilt as ``cls(**params).set_state(state)``, routes exactly as the fitted one, and
accepts its own parameters and sizes (``validate_params``, ``check_sizes``: what loading a
saved folder asks).
"""

from __future__ import annotations

import tempfile
from typing import Any

import numpy as np

from routeharness.routers.base import UTILITY, NotFittedError, tags_of
from routeharness.testing import mock
from routeharness.testing.harness import LAMBDAS, fit_on, fresh_copy, routes_of

#: what the check does to a state, as its messages name it
ROUND_TRIP = "get_state() -> write_state -> read_state -> cls(**get_params()).set_state()"


def _restored(fitted: Any) -> Any:
    """``fitted`` through the round trip; any error on the way is a one-line failure."""
    from routeharness.routers.state import RouterState, read_state, write_state

    cls = type(fitted)
    state = fitted.get_state()
    assert isinstance(state, RouterState), (f"get_state() returned {type(state).__name__}, "
                                            "not routeharness.routers.state.RouterState")
    with tempfile.TemporaryDirectory(prefix="routeharness-state-") as folder:
        write_state(state, folder)
        loaded = read_state(folder)
    try:
        restored = cls(**fitted.get_params()).set_state(loaded)
    except Exception as exc:
        raise AssertionError(f"set_state() of the state get_state() wrote raised "
                             f"{type(exc).__name__}: {exc}") from None
    assert isinstance(restored, cls), (f"set_state() returned {type(restored).__name__}, "
                                       f"not the {cls.__name__} (return self)")
    return restored


def _check_saved_checks(restored: Any, problem: Any) -> None:
    """What loading a saved router asks of it: ``validate_params()`` accepts the router's
    own parameters and ``check_sizes`` the sizes it was fitted on."""
    sizes = {"models": problem.train.m, "dimension": problem.X_train.shape[1],
             "n_train": problem.X_train.shape[0]}
    for name, call in (("validate_params()", lambda: restored.validate_params()),
                       (f"check_sizes(**{sizes})", lambda: restored.check_sizes(**sizes))):
        if not hasattr(restored, name.split("(")[0]):
            continue
        try:
            call()
        except Exception as exc:
            raise AssertionError(f"the restored router's {name} raised "
                                 f"{type(exc).__name__}: {exc}; a saved router whose "
                                 "manifest holds its own parameters and sizes must load"
                                 ) from None


def check_state_roundtrip(router: Any) -> None:
    """``get_state()`` before ``fit`` raises ``NotFittedError``; after it, the state
    written to files, read back and restored on a new router (``ROUND_TRIP``) routes every
    prompt the same at every trade-off of the sweep, on the test prompts and on prompts of
    another problem; a utility router's predictions are bitwise equal."""
    try:
        fresh_copy(router).get_state()
    except NotFittedError:
        pass
    except Exception as exc:
        raise AssertionError(f"get_state() before fit() raised {type(exc).__name__}: {exc}; "
                             "expected routeharness.routers.base.NotFittedError") from None
    else:
        raise AssertionError("get_state() before fit() did not raise NotFittedError")
    problem, other = mock.tradeoff_problem(), mock.tradeoff_problem(seed=7)
    fitted = fit_on(fresh_copy(router), problem)
    restored = _restored(fitted)
    _check_saved_checks(restored, problem)
    for what, source in (("test", problem), ("fresh", other)):
        before = routes_of(fitted, problem, source.X_test, source.test, LAMBDAS)
        try:
            after = routes_of(restored, problem, source.X_test, source.test, LAMBDAS)
        except Exception as exc:
            raise AssertionError(f"the restored router failed to route ({type(exc).__name__}: "
                                 f"{exc}): get_state() must hold everything routing reads"
                                 ) from None
        changed = int((before != after).sum())
        assert changed == 0, (f"{changed} of {before.size} routes on {what} prompts differ "
                              f"after {ROUND_TRIP}: the state misses or changes something "
                              "routing reads")
        if getattr(fitted, "kind", UTILITY) == UTILITY:
            groups = source.test.groups if tags_of(fitted).needs_groups else None
            for name, a, b in zip(("scores_hat", "costs_hat"),
                                  fitted.predict(source.X_test, groups),
                                  restored.predict(source.X_test, groups)):
                assert np.array_equal(np.asarray(a), np.asarray(b)), \
                    f"predict() {name} on {what} prompts is not bitwise equal after {ROUND_TRIP}"
