"""The public API is what the built-in plugins use (issue 17): every name a plugin
imports from routeharness is in ``routeharness.__all__`` and documented in docs/api.md,
and the built-in plugins' implementation modules load when first used, not on every
command."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import numpy as np

import routeharness

ROOT = Path(__file__).resolve().parent.parent
API_DOC = ROOT / "docs" / "api.md"


# --- docs/api.md documents exactly __all__ ----------------------------------------------------
def documented() -> dict[str, str]:
    """Each name documented in docs/api.md (a ``### `NAME``` heading) -> its section."""
    sections = re.split(r"^### `([^`]+)`[ \t]*$", API_DOC.read_text(encoding="utf-8"),
                        flags=re.M)
    return {name: body.split("\n## ", 1)[0] for name, body in zip(sections[1::2],
                                                                  sections[2::2])}


def test_every_public_name_is_documented_and_every_documented_name_is_public():
    names = documented()
    assert len(names) == len(re.findall(r"^### `", API_DOC.read_text(encoding="utf-8"),
                                        flags=re.M)), "a name documented twice in docs/api.md"
    undocumented = sorted(set(routeharness.__all__) - set(names))
    not_public = sorted(set(names) - set(routeharness.__all__))
    assert not undocumented, f"in routeharness.__all__ but not in docs/api.md: {undocumented}"
    assert not not_public, f"documented in docs/api.md but not in routeharness.__all__: " \
                           f"{not_public}"


def test_each_documented_signature_names_every_parameter():
    """The code block under each name shows its real parameters (a renamed or added
    parameter fails here until the page follows)."""
    stale = []
    for name, section in documented().items():
        value = getattr(routeharness, name)
        if not (inspect.isfunction(value) or isinstance(value, type)):
            continue  # a constant or pluggy's marker
        try:
            parameters = inspect.signature(value).parameters.values()
        except (TypeError, ValueError):
            continue
        if any(p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD) for p in parameters):
            continue  # an exception without its own __init__, a protocol
        block = re.search(r"```python\n(.*?)```", section, flags=re.S)
        shown = block.group(1) if block else ""
        missing = [p.name for p in parameters if not re.search(rf"\b{p.name}\b", shown)]
        if missing:
            stale.append(f"{name}: {missing}")
    assert not stale, f"docs/api.md's signatures lack parameters: {stale}"


def test_the_plugin_docs_link_the_api_page():
    for page in ("writing-a-router.md", "plugin-hooks.md"):
        assert "(api.md)" in (ROOT / "docs" / page).read_text(encoding="utf-8"), page


def test_every_public_name_resolves_from_the_module_that_defines_it():
    assert set(routeharness.__all__) == {*routeharness._PUBLIC, "__version__"}
    for name, module in routeharness._PUBLIC.items():
        value = getattr(routeharness, name)
        assert value is getattr(__import__(module, fromlist=[name]), name), name
        if inspect.isfunction(value) or inspect.isclass(value):
            assert value.__module__ == module, f"{name} is defined in {value.__module__}"


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
