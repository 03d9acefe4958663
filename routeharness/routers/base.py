"""The router contract (scikit-learn style) and helpers every router shares.

- ``__init__`` only stores hyper-parameters, each under its own name;
- ``fit(X, outcomes)`` learns from training embeddings ``X`` (n, d) and their
  ``routeharness.data.dataset.Outcomes`` and returns ``self``; fitted state ends in ``_``;
- randomness only through a ``random_state`` hyper-parameter;
- a *utility* router implements ``predict(X, groups=None) -> (scores_hat, costs_hat)``,
  both (n, m), and the harness picks ``argmax(scores_hat - lam * costs_hat)``;
- a *selection* router implements ``route(X, lam, groups=None) -> (n,)`` model indices.
Costs are in normalised units (the most expensive model's mean training cost is 1).
The harness holds the test labels: a router never sees them.
"""

from __future__ import annotations

import dataclasses
import inspect
import warnings
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from routeharness.common.errors import RouteHarnessError

UTILITY, SELECTION = "utility", "selection"

#: tie rule: among models of equal utility, the one with the lower (predicted) cost wins,
#: then the lower index. Stated in every result record.
TIE_BREAK = "cheapest"


class NotFittedError(RouteHarnessError):
    """A router was used before ``fit``."""


class RouterContractError(RouteHarnessError):
    """A router class declares something the contract does not allow (an unknown tag,
    a tag of the wrong type)."""


@dataclass(frozen=True)
class Tags:
    """What a router declares about itself; each flag is read by the harness or the kit.

    - ``deterministic``: fit and routes do not depend on ``random_state``. The kit checks
      it (two fits with different ``random_state`` route identically); the harness fits
      and routes such a router once per task and configuration and reuses the routes
      for every seed (only the grid sample and the bootstrap differ between seeds).
    - ``needs_groups``: ``predict``/``route``/``route_sweep`` read the prompts' groups.
      The harness passes ``groups`` only to routers that declare it (others get
      ``None``), so a router cannot depend on them unannounced.
    - ``needs_texts``: the routing methods take ``texts=`` (the prompts as the encoder
      saw them), for routers with their own text encoder.
    - ``pickle``: a fitted router survives a pickle round trip (the kit checks it).
    - ``saveable``: ``get_state()``/``set_state()`` save and restore the fitted router
      as plain data (``routeharness.routers.state``; ``routeharness fit`` writes it, ``route``
      loads it); the kit checks that a restored router routes identically.
    - ``updatable``: new outcomes are added without refitting (``routeharness update``):
      ``outcome_table() -> (scores, costs)`` (n, m) as fitted, and
      ``update_outcomes(X_new, scores, costs)`` taking the merged table (old rows first,
      new models as appended columns) and the new rows' vectors; with ``rows=``,
      ``X_rows=`` it also gives those old rows new vectors (``update --replace``)
      (``routeharness.deploy.update``).
    - ``online``: the router learns while it routes (``routeharness study online``):
      ``partial_fit(X, scores, costs)`` takes the rows just routed (b, d) and what was
      observed of them, (b, m') scores and normalised costs with NaN where nothing was
      observed (bandit feedback: every cell but the chosen model's), and returns
      ``self``. ``m'`` larger than the router's models appends new models as columns (a
      call with no rows only announces them). A router without it enters an online
      study fitted on the warm-up prompts, then frozen.
    - ``check_params``: hyper-parameters the kit sets for its checks (fewer epochs).
    - ``expected_failures``: check name -> reason, reported by the kit as ``xfail``.
    """

    deterministic: bool = False
    needs_groups: bool = False
    needs_texts: bool = False
    pickle: bool = False
    saveable: bool = False
    updatable: bool = False
    online: bool = False
    check_params: Mapping[str, Any] = field(default_factory=dict)
    expected_failures: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any], owner: str = "router") -> Tags:
        """Tags from a plain dict (third-party routers); an unknown key or a value of the
        wrong type is a ``RouterContractError`` naming ``owner``."""
        known = {f.name: f for f in dataclasses.fields(cls)}
        unknown = sorted(set(map(str, values)) - set(known))
        if unknown:
            raise RouterContractError(f"{owner}.tags has unknown tag(s) {unknown}; the tags "
                                      f"are {sorted(known)}")
        for name, value in values.items():
            wanted = dict if name in ("check_params", "expected_failures") else bool
            if not isinstance(value, Mapping if wanted is dict else bool):
                raise RouterContractError(f"{owner}.tags[{name!r}] must be a "
                                          f"{'mapping' if wanted is dict else 'bool'}, got "
                                          f"{type(value).__name__}")
        return cls(**{k: (dict(v) if isinstance(v, Mapping) else v) for k, v in values.items()})


def tags_of(router: Any) -> Tags:
    """The ``Tags`` of a router instance or class (a plain dict is converted strictly)."""
    cls = router if isinstance(router, type) else type(router)
    tags = getattr(router, "tags", None)  # through the instance: wrappers forward it
    if tags is None:
        return Tags()
    if isinstance(tags, Tags):
        return tags
    if isinstance(tags, Mapping):
        return Tags.from_mapping(tags, cls.__name__)
    raise RouterContractError(f"{cls.__name__}.tags must be routeharness.routers.base.Tags or a "
                              f"dict, got {type(tags).__name__}")


def select(scores_hat: np.ndarray, costs_hat: np.ndarray, lam: float,
           tie_key: np.ndarray | None = None) -> np.ndarray:
    """Model index per row maximising ``scores_hat - lam * costs_hat``; ``lam = inf``
    means cost only. Ties go to the cheaper model (``TIE_BREAK``), or to the lowest
    ``tie_key`` (m,) when given. A missing cell (NaN score or cost) never wins."""
    missing = np.isnan(scores_hat) | np.isnan(costs_hat)
    scores_hat = np.where(np.isnan(scores_hat), -np.inf, scores_hat)
    costs_hat = np.where(np.isnan(costs_hat), np.inf, costs_hat)
    if np.isinf(lam):
        utility = -costs_hat
        default_key = -scores_hat  # among equally cheap, the better one
    else:
        with np.errstate(invalid="ignore"):  # 0 * inf for a missing cost at lam = 0
            utility = scores_hat - lam * costs_hat
        default_key = costs_hat
    # a missing cell never wins (a NaN utility would poison the row's maximum)
    utility = np.where(missing, -np.inf, utility)
    tie_key = default_key if tie_key is None else np.broadcast_to(tie_key, utility.shape)
    best = utility.max(axis=1, keepdims=True)
    tolerance = 1e-12 * np.maximum(1.0, np.abs(best))
    candidates = utility >= best - tolerance
    return np.where(candidates, tie_key, np.inf).argmin(axis=1)


TIE_RULES = ("cheapest", "best-average")


def best_models(scores: np.ndarray, costs: np.ndarray, lam: float,
                tie_break: str = TIE_BREAK) -> np.ndarray:
    """The label of each training row at trade-off ``lam``: its best model by actual
    outcome (for selection routers). With 0/1 scores most rows have several best models:
    ``tie_break="cheapest"`` labels the cheapest of them, ``"best-average"`` the one with
    the best mean training score (then the cheaper)."""
    if tie_break == "cheapest":
        return select(scores, costs, lam)
    if tie_break == "best-average":
        with warnings.catch_warnings():  # a model with no outcome at all: mean 0
            warnings.simplefilter("ignore", RuntimeWarning)
            means = np.nan_to_num(np.nanmean(scores, axis=0), nan=0.0)
            mean_costs = np.nan_to_num(np.nanmean(costs, axis=0), nan=0.0)
        order = np.lexsort((mean_costs, -means))  # rank: best average first, then cheaper
        rank = np.empty_like(order)
        rank[order] = np.arange(order.size)
        return select(scores, costs, lam, tie_key=rank.astype(float))
    raise ValueError(f"tie_break must be one of {TIE_RULES}, got {tie_break!r}")


#: how a router ranks the values of one tuned parameter when configurations tie on
#: validation AUC (``tie_preference``): the larger value, the smaller one, or the one
#: nearest the router's own default; a list of values ranks them in its order
PREFERENCE_RULES = ("larger", "smaller", "default")


def tie_preference_of(router: Any) -> tuple[tuple[str, Any], ...]:
    """A router's ``tie_preference`` checked against its ``param_grid``: ``(parameter,
    rule)`` pairs, most important first, where a rule is one of ``PREFERENCE_RULES`` or a
    tuple of grid values (most preferred first). Nothing declared: ``()`` (every tuned
    parameter then prefers its default, see ``evaluation.tuning.pick``). A declaration
    that names a parameter the grid does not tune, a rule that is none of these, a
    listed value not in the grid, or ``larger``/``smaller`` on a parameter with a
    non-numeric value is a ``RouterContractError`` naming the router."""
    cls = router if isinstance(router, type) else type(router)
    declared = getattr(cls, "tie_preference", None)
    if declared is None:
        return ()
    where = f"{cls.__name__}.tie_preference"
    if not isinstance(declared, Mapping):
        raise RouterContractError(f"{where} must be a dict of parameter -> rule, got "
                                  f"{type(declared).__name__}")
    grid = getattr(cls, "param_grid", {}) or {}
    out: list[tuple[str, Any]] = []
    for name, rule in declared.items():
        if name not in grid:
            raise RouterContractError(f"{where} names {name!r}, which param_grid does not "
                                      f"tune (it tunes {sorted(grid) or 'nothing'})")
        values = list(grid[name])
        if isinstance(rule, str):
            if rule not in PREFERENCE_RULES:
                raise RouterContractError(f"{where}[{name!r}] is {rule!r}; a rule is one of "
                                          f"{', '.join(PREFERENCE_RULES)} or a list of values")
            if rule in ("larger", "smaller") and not all(_is_number(v) for v in values):
                raise RouterContractError(f"{where}[{name!r}] is {rule!r}, but the grid of "
                                          f"{name!r} holds a value that is not a number")
            out.append((name, rule))
        elif isinstance(rule, (list, tuple)) and rule:
            listed = list(rule)
            missing = [v for v in listed if not any(same_value(v, g) for g in values)]
            if missing:
                raise RouterContractError(f"{where}[{name!r}] lists {missing[0]!r}, which is "
                                          f"not in param_grid[{name!r}]")
            if any(same_value(a, b) for i, a in enumerate(listed) for b in listed[i + 1:]):
                raise RouterContractError(f"{where}[{name!r}] lists a value twice")
            out.append((name, tuple(listed)))
        else:
            raise RouterContractError(f"{where}[{name!r}] must be one of "
                                      f"{', '.join(PREFERENCE_RULES)} or a non-empty list of "
                                      f"values, got {type(rule).__name__}")
    return tuple(out)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and \
        not isinstance(value, (bool, np.bool_)) and bool(np.isfinite(value))


def same_value(a: Any, b: Any) -> bool:
    """Two parameter values are the same value (a bool is never a number here)."""
    flags = isinstance(a, (bool, np.bool_)), isinstance(b, (bool, np.bool_))
    if any(flags):
        return all(flags) and bool(a) == bool(b)
    try:
        return bool(a == b)
    except (TypeError, ValueError):  # arrays and other values without one truth value
        return a is b


#: a model with outcomes on fewer than this share of a training table's prompts is
#: sparse (``sparse_models``): a router's ``sparse_params`` act on it (kNN's ``prior``)
#: and are tuned only on a table holding one. The built-in tasks miss a few cells
#: (routerbench: 8 training prompts without any outcome), far above it; a model added
#: by ``routeharness update`` with outcomes on some prompts is below it
SPARSE_COVERAGE = 0.5


def sparse_models(scores: np.ndarray) -> np.ndarray:
    """(m,) bool: the models of an outcome table (n, m; NaN where missing) with an
    outcome on fewer than ``SPARSE_COVERAGE`` of its n prompts."""
    scores = np.asarray(scores, dtype=np.float64)
    if scores.ndim != 2 or not scores.shape[0]:
        return np.zeros(scores.shape[-1] if scores.ndim else 0, dtype=bool)
    coverage = (~np.isnan(scores)).sum(axis=0) / scores.shape[0]
    return coverage < SPARSE_COVERAGE


class BaseRouter:
    """Base class giving ``get_params``/``set_params``, ``route`` for utility routers,
    the fitted check, and the sweep over trade-offs. Subclasses set ``kind``,
    ``param_grid`` (the hyper-parameter grid the harness tunes on validation) and
    ``tie_preference`` (which configuration wins a tie on validation AUC)."""

    kind: ClassVar[str] = UTILITY
    param_grid: ClassVar[dict[str, list[Any]]] = {}
    #: which of several configurations tied on validation AUC wins: parameter -> rule,
    #: most important first; a rule is "larger", "smaller", "default" (the value nearest
    #: the router's own default) or a list of values, most preferred first. A tuned
    #: parameter left out prefers its default (``evaluation.tuning.pick``)
    tie_preference: ClassVar[dict[str, Any]] = {}
    #: parameters of ``param_grid`` that act only on sparse models (``sparse_models``:
    #: kNN's ``prior``): on a table without one every value routes the same, so tuning
    #: leaves them at the router's default there (the grid, its sample and its ties are
    #: those of the other parameters) and tunes them on a table with one
    sparse_params: ClassVar[tuple[str, ...]] = ()
    #: parameters added after routers of this class were saved, each with the value that
    #: reproduces a folder saved before it existed (``deploy.saved.load`` fills it in)
    params_added: ClassVar[dict[str, Any]] = {}
    #: what the router declares (see ``Tags``)
    tags: ClassVar[Tags] = Tags()

    @classmethod
    def _param_names(cls) -> list[str]:
        signature = inspect.signature(cls.__init__)
        return [p.name for p in signature.parameters.values()
                if p.name != "self" and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]

    def get_params(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self._param_names()}

    def set_params(self, **params: Any) -> BaseRouter:
        valid = self._param_names()
        for name, value in params.items():
            if name not in valid:
                raise ValueError(f"{type(self).__name__} has no hyper-parameter {name!r}; "
                                 f"it has {valid}")
            setattr(self, name, value)
        return self

    def validate_params(self) -> None:
        """Raises ``ValueError`` (one line, naming the parameter) when a hyper-parameter
        is one this router cannot use (``k=0``, an unknown option). Called by ``fit`` and
        by ``routeharness.deploy.saved.load`` on the manifest's parameters, so a router
        states its ranges once. The default accepts everything."""

    def check_sizes(self, *, models: int, dimension: int, n_train: int) -> None:
        """Raises ``StateError`` (one line) when the fitted (or restored) state does not
        fit what a saved router's manifest says it was fitted on: ``models`` (m, the
        pool in column order), ``dimension`` (d of the embeddings), ``n_train`` (the
        training prompts). The default checks ``n_models_`` where the router sets it;
        a router whose state holds more (a table, a weight matrix) checks that too."""
        from routeharness.routers.state import StateError

        m = getattr(self, "n_models_", None)
        if isinstance(m, (int, np.integer)) and not isinstance(m, bool) and m != models:
            raise StateError(f"{type(self).__name__}: the state is for {m} models, the "
                             f"manifest lists {models}")

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({args})"

    def get_state(self) -> Any:
        """The fitted state as plain data (``routeharness.routers.state.RouterState``): by default
        every fitted attribute, arrays and JSON values; override for anything else."""
        from routeharness.routers.state import default_state

        self._check_fitted()
        return default_state(self)

    def set_state(self, state: Any) -> BaseRouter:
        """Restores ``get_state()``'s output on a router built with the same
        hyper-parameters; returns ``self``."""
        from routeharness.routers.state import restore

        return restore(self, state)

    def _check_fitted(self) -> None:
        if not any(name.endswith("_") and not name.startswith("_") for name in vars(self)):
            raise NotFittedError(f"{type(self).__name__} is not fitted: call fit() first")

    def fit(self, X: np.ndarray, outcomes: Any) -> BaseRouter:  # pragma: no cover - abstract
        raise NotImplementedError

    def predict(self, X: np.ndarray, groups: np.ndarray | None = None
                ) -> tuple[np.ndarray, np.ndarray]:
        raise NotImplementedError(f"{type(self).__name__} is a {self.kind} router: no predict()")

    def partial_fit(self, X: np.ndarray, scores: np.ndarray, costs: np.ndarray) -> BaseRouter:
        """Online update (routers whose tags declare ``online``): ``X`` (b, d) the prompts
        just routed, ``scores``/``costs`` (b, m') what was observed of them (normalised
        costs, NaN where a cell was not observed; ``m'`` >= the router's models, extra
        columns are new models, appended). Returns ``self``."""
        raise NotImplementedError(f"{type(self).__name__} does not learn online (its tags "
                                  "do not declare online)")

    def route(self, X: np.ndarray, lam: float, groups: np.ndarray | None = None) -> np.ndarray:
        """Model index (n,) for each prompt at trade-off ``lam``."""
        if self.kind != UTILITY:
            raise NotImplementedError(f"{type(self).__name__} must implement route()")
        scores_hat, costs_hat = self.predict(X, groups)
        return select(scores_hat, costs_hat, lam)

    def route_sweep(self, X: np.ndarray, lams: np.ndarray,
                    groups: np.ndarray | None = None) -> np.ndarray:
        """(L, n) model indices, one row per trade-off. Utility routers predict once.
        ``groups`` is ``None`` unless the router's tags declare ``needs_groups``."""
        if self.kind == UTILITY:
            scores_hat, costs_hat = self.predict(X, groups)
            return np.stack([select(scores_hat, costs_hat, lam) for lam in lams])
        return np.stack([np.asarray(self.route(X, lam, groups)) for lam in lams])


# --- the router spec grammar: NAME[:PARAM=VALUE[,PARAM=VALUE...]] ---------------------------
@dataclass(frozen=True)
class RouterSpec:
    """A parsed ``-r`` argument: the registered ``name`` and the raw ``PARAM=VALUE``
    strings that fix hyper-parameters (typed later by ``fixed_params``)."""

    name: str
    raw: tuple[tuple[str, str], ...] = ()


def parse_router_spec(text: str) -> RouterSpec:
    """``"knn"`` -> RouterSpec("knn"); ``"knn:k=10,weighting=uniform"`` -> the name and
    ``(("k", "10"), ("weighting", "uniform"))``. The one place the grammar lives."""
    name, colon, rest = text.partition(":")
    name = name.strip()
    if not name:
        raise RouteHarnessError(f"router spec {text!r}: give a router name, e.g. knn or "
                                f"knn:k=10")
    if not colon:
        return RouterSpec(name)
    raw: list[tuple[str, str]] = []
    for part in rest.split(","):
        param, equals, value = part.partition("=")
        param, value = param.strip(), value.strip()
        if not equals or not param or not value:
            raise RouteHarnessError(f"router spec {text!r}: {part.strip()!r} is not "
                                    f"PARAM=VALUE (e.g. {name}:k=10)")
        if param in dict(raw):
            raise RouteHarnessError(f"router spec {text!r} sets {param!r} twice")
        raw.append((param, value))
    return RouterSpec(name, tuple(raw))


_TRUE, _FALSE = ("true", "yes", "1", "on"), ("false", "no", "0", "off")


def _parse_value(text: str, like: Any, where: str) -> Any:
    """``text`` as the type of ``like`` (a parameter's default or grid value)."""
    if isinstance(like, bool):
        if text.lower() in _TRUE + _FALSE:
            return text.lower() in _TRUE
        raise RouteHarnessError(f"{where}: {text!r} is not a boolean (true or false)")
    if isinstance(like, int):
        try:
            return int(text)
        except ValueError:
            raise RouteHarnessError(f"{where}: {text!r} is not an integer") from None
    if isinstance(like, float):
        try:
            value = float(text)
        except ValueError:
            raise RouteHarnessError(f"{where}: {text!r} is not a number") from None
        if not np.isfinite(value):
            raise RouteHarnessError(f"{where}: {text!r} is not a finite number")
        return value
    if isinstance(like, str):
        return text
    raise RouteHarnessError(f"{where}: a {type(like).__name__} parameter cannot be set "
                            f"from the command line")


def fixed_params(router_cls: type, spec: RouterSpec) -> dict[str, Any]:
    """The spec's ``PARAM=VALUE`` pairs, typed by each parameter's default (or, for a
    default of ``None``, by its ``param_grid`` values; else int, float, bool, "none" or
    text). Unknown parameters and ``random_state`` (the harness's) are errors."""
    signature = inspect.signature(router_cls.__init__)
    params = {p.name: p.default for p in signature.parameters.values()
              if p.name != "self" and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)}
    grid = getattr(router_cls, "param_grid", {}) or {}
    out: dict[str, Any] = {}
    for name, text in spec.raw:
        where = f"router {spec.name!r}, parameter {name!r}"
        if name == "random_state":
            raise RouteHarnessError(f"{where}: the harness sets random_state from --seeds")
        if name not in params:
            listed = ", ".join(sorted(p for p in params if p != "random_state"))
            raise RouteHarnessError(f"router {spec.name!r} has no parameter {name!r}; its "
                                    f"parameters: {listed or '(none)'}")
        like = params[name]
        if like is None or like is inspect.Parameter.empty:
            like = next((v for v in grid.get(name, []) if v is not None), None)
        if like is None:
            out[name] = _guess_value(text)
        else:
            out[name] = _parse_value(text, like, where)
    return out


def _guess_value(text: str) -> Any:
    """A value for a parameter whose type nothing declares."""
    if text.lower() in ("none", "null"):
        return None
    if text.lower() in ("true", "false"):
        return text.lower() == "true"
    for parse in (int, float):
        try:
            return parse(text)
        except ValueError:
            pass
    return text


def spec_label(name: str, fixed: Mapping[str, Any]) -> str:
    """The canonical name of a router run: ``knn`` or ``knn:k=10`` (parameters sorted)."""
    if not fixed:
        return name
    return name + ":" + ",".join(f"{k}={fixed[k]}" for k in sorted(fixed))


def clone(router: Any) -> Any:
    """A new, unfitted router with the same hyper-parameters."""
    return type(router)(**router.get_params())


def accepts_random_state(router_cls: type) -> bool:
    return "random_state" in inspect.signature(router_cls.__init__).parameters


@contextmanager
def one_torch_thread() -> Iterator[None]:
    """Run torch on one intra-op thread, then restore the caller's setting. Routers'
    networks are small: on a busy 2-core machine a second spinning thread slows a fit
    down several-fold instead of speeding it up. Never changes the setting globally."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)
