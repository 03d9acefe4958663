"""A fitted router saved as a folder, and loaded to route new prompts (``routeharness fit``,
``routeharness route``).

The folder holds ``manifest.json`` (``RouterManifest``, a contract, schema
``routeharness.router/1``: the router, its plugin distribution and version,
hyper-parameters, the encoder's identity and revision, the task's fingerprint, the model
pool with prices, the cost scale, the training protocol, the validation operating points,
the updates since, the state's hashes and the provenance) and the router's state (``routeharness.routers.state``:
``state.safetensors`` and ``state.json``, their sha256 in the manifest). No pickle, ever.

``fit`` trains exactly as one ``eval`` run does (``tuning.tune`` on validation with the
seed's streams, then ``make_router`` + ``fit_router`` on train), so routing the task's
test prompts with a saved router gives ``eval``'s test routes for that router and seed.
Loading reads the manifest through its contract (unknown keys, wrong types, values out of
range: one line naming the file and the key), checks it against what is installed and
refuses, in one line, what it cannot honour: another router class, distribution or version, another encoder identity
or revision, files changed after saving.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

import numpy as np
from pydantic import AfterValidator, ConfigDict, WithJsonSchema, field_validator

from routeharness.common.contract import (
    Contract,
    Field,
    FiniteFloat,
    NonNegative,
    Number,
    check,
    dump_json,
    read_json,
)
from routeharness.common.errors import RouteHarnessError
from routeharness.data.cards import CardModel
from routeharness.embedding.encoders import EncoderIdentity

SCHEMA = "routeharness.router/1"
MANIFEST = "manifest.json"
#: the training prompts' ids, in the table's row order (for ``update``)
IDS_FILE = "train_ids.json"


def _lam(value: float | None) -> float:
    if value is None or math.isnan(value) or value < 0:
        raise ValueError('must be a number >= 0 or "inf"')
    return float(value)


#: a trade-off: a number >= 0, or ``"inf"`` (cost only) on disk
Lam = Annotated[Number, AfterValidator(_lam),
                WithJsonSchema({"anyOf": [{"type": "number", "minimum": 0},
                                          {"const": "inf"}]})]
#: a sha256 in hex
Sha256 = Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]


class OperatingPoint(Contract):
    """The saved router on the validation split at one trade-off: mean cost per prompt
    in USD and quality (score x100). ``--budget`` chooses among these."""

    lam: Lam = Field(description='the trade-off (>= 0; "inf": cost only)')
    cost_usd: NonNegative = Field(description="mean cost per validation prompt, USD")
    quality: FiniteFloat = Field(description="mean score x100 on validation")

    def to_dict(self) -> dict[str, Any]:
        return {"lam": self.lam, "cost_usd": self.cost_usd, "quality": self.quality}


class SavedRouterClass(Contract):
    """Which router this is and who installed it: ``load`` refuses another class,
    distribution or version."""

    label: str = Field(description="the router as the user named it (NAME or "
                       "NAME:PARAM=VALUE)")
    name: str = Field(description="the registered router name")
    plugin: str = Field(description="the plugin that registered it")
    distribution: str = Field(description="the distribution that installed the plugin")
    version: str = Field(description="the distribution's version")
    class_path: str = Field(alias="class", description="module.Class of the router")
    kind: Literal["utility", "selection"] = Field(description="a utility router predicts "
                                                  "scores and costs; a selection router "
                                                  "picks a model")


class SavedEncoder(EncoderIdentity):
    """The encoder the router was fitted with (``precomputed``: the dataset's own
    vectors): its identity, the spec that rebuilds it and the vectors' dimension."""

    spec: str = Field(description="the --encoder spec that rebuilds it")
    dimension: int = Field(ge=1, description="the embeddings' dimension")


class SavedTask(Contract):
    """The task the router was fitted on."""

    name: str = Field(description="the task's name")
    version: int | None = Field(None, description="the task's version")
    fingerprint: str = Field(description="sha256 of the task's data (RoutingTask.fingerprint)")


class TuningRow(Contract):
    """One configuration tried while tuning."""

    params: dict[str, Any] = Field(description="the configuration")
    validation_auc: Number = Field(description="its validation AUC")
    chosen: bool | None = Field(None, description="true on the configuration tuning kept")
    tie: str | None = Field(None, description="how a tie on validation AUC was broken "
                                              "(only on the kept configuration's row)")


class Training(Contract):
    """How the router was fitted: as one ``eval`` run of ``seed``."""

    seed: int = Field(ge=0, description="the seed whose streams tuned and fitted it")
    random_state: int = Field(ge=0, description="the router's random stream")
    tuned: bool = Field(description="whether hyper-parameters were tuned")
    tuning: list[TuningRow] = Field(description="every configuration tried, in order")
    tune_on: str = Field(description="the split tuned on")
    fit_on: str = Field(description="the split fitted on")
    n_train: int = Field(ge=1, description="training prompts in the router's table")
    validation_auc: FiniteFloat = Field(description="the fitted router's validation AUC")
    validation_points_before_updates: bool = Field(
        False, description="true once update added outcomes: the validation points are "
        "the fitted router's")


class UpdateEntry(Contract):
    """One ``routeharness update``."""

    new_prompts: int = Field(ge=0, description="prompts appended")
    new_models: list[str] = Field(description="models added")
    filled_cells: int = Field(ge=0, description="cells filled on known prompts")
    n_train: int = Field(ge=1, description="training prompts afterwards")
    source: str = Field(description="the file of new outcomes")
    at: str = Field(description="when (ISO 8601, UTC)")


class ManifestProvenance(Contract):
    """What wrote the folder."""

    routeharness_version: str = Field(description="the routeharness version")
    git_commit: str | None = Field(None, description="the checkout's commit (+dirty), if "
                                  "any")
    platform: dict[str, Any] = Field(description="Python, OS and library versions")


class FittedRouter(Contract):
    """What ``fit`` knows of a fitted router: the manifest before ``save`` adds the
    state's hashes and the provenance (``RouterManifest``)."""

    schema_: Literal["routeharness.router/1"] = Field(SCHEMA, alias="schema",
                                                     description="the format")
    router: SavedRouterClass = Field(description="the router and its plugin")
    params: dict[str, Any] = Field(description="every hyper-parameter of the fitted router")
    fixed_params: dict[str, Any] = Field(description="those the user fixed "
                                         "(NAME:PARAM=VALUE)")
    encoder: SavedEncoder = Field(description="the encoder, rebuilt and checked on load")
    task: SavedTask = Field(description="the task it was fitted on")
    models: list[CardModel] = Field(description="the model pool, in the router's column "
                                    "order (names unique, prices in USD)")
    cost_scale_usd: float = Field(gt=0, allow_inf_nan=False, description="USD per "
                                  "normalised cost unit (train's most expensive model's "
                                  "mean cost)")
    training: Training = Field(description="how it was tuned and fitted")
    validation: list[OperatingPoint] = Field(description="the validation operating points "
                                             "--budget chooses among (at least one)")
    updates: list[UpdateEntry] = Field(default_factory=list, description="the updates "
                                       "since the fit, in order")

    @field_validator("models")
    @classmethod
    def _models(cls, value: list[CardModel]) -> list[CardModel]:
        names = [m.name for m in value]
        if not names:
            raise ValueError("must list at least one model")
        twice = next((n for i, n in enumerate(names) if n in names[:i]), None)
        if twice is not None:
            raise ValueError(f"name {twice!r} is listed twice")
        return value

    @field_validator("validation")
    @classmethod
    def _points(cls, value: list[OperatingPoint]) -> list[OperatingPoint]:
        if not value:
            raise ValueError("must list at least one operating point")
        return value


class RouterManifest(FittedRouter):
    """``manifest.json`` of a saved router (``routeharness.router/1``): what ``fit``
    knows, the sha256 of each state file, and what wrote it."""

    model_config = ConfigDict(title="routeharness saved router manifest")

    state: dict[str, Sha256] = Field(description="file name -> sha256 of the state files "
                                     "(and the training ids)")
    provenance: ManifestProvenance = Field(description="what wrote the folder")


@dataclass(frozen=True)
class Routes:
    """Routed prompts: the model index per prompt, its name, and (utility routers) the
    predicted scores and costs (USD) of every model, (n, m); None for selection routers."""

    lam: float
    choices: np.ndarray
    models: list[str]
    scores: np.ndarray | None = None
    costs_usd: np.ndarray | None = None

    def rows(self) -> list[dict[str, Any]]:
        """One JSON-able row per prompt: chosen model, its predicted score and cost."""
        out = []
        for i, j in enumerate(self.choices.tolist()):
            row: dict[str, Any] = {"model": self.models[j], "lam": self.lam}
            if self.scores is not None and self.costs_usd is not None:
                row["predicted_score"] = float(self.scores[i, j])
                row["predicted_cost_usd"] = float(self.costs_usd[i, j])
                row["predicted"] = {m: {"score": float(self.scores[i, k]),
                                        "cost_usd": float(self.costs_usd[i, k])}
                                    for k, m in enumerate(self.models)}
            out.append(row)
        return out


@dataclass
class SavedRouter:
    """A fitted router and its manifest (see the module doc): a ``FittedRouter`` until
    ``save`` makes it the folder's ``RouterManifest``. ``router`` is the live router
    object (rebuilt from the state on load)."""

    manifest: FittedRouter
    router: Any
    models: list[Any] = field(default_factory=list)
    #: the training prompts' ids in the router's row order (what ``update`` matches on)
    train_ids: list[str] | None = None

    @property
    def cost_scale(self) -> float:
        """USD per normalised cost unit (train's most expensive model's mean cost)."""
        return self.manifest.cost_scale_usd

    @property
    def validation(self) -> list[OperatingPoint]:
        return list(self.manifest.validation)

    @property
    def tags(self) -> Any:
        from routeharness.routers.base import tags_of

        return tags_of(self.router)

    def lam_for_budget(self, usd_per_1k: float) -> tuple[OperatingPoint, bool]:
        """The validation point of highest quality whose mean cost per 1,000 prompts is
        within ``usd_per_1k`` (ties to the cheaper); (the cheapest point, False) when none
        is."""
        if not np.isfinite(usd_per_1k) or usd_per_1k < 0:
            raise RouteHarnessError(f"--budget must be a non-negative number of USD per "
                                    f"1,000 prompts, got {usd_per_1k}")
        points = self.validation
        within = [p for p in points if p.cost_usd * 1000 <= usd_per_1k * (1 + 1e-12)]
        if not within:
            return min(points, key=lambda p: (p.cost_usd, -p.quality)), False
        return max(within, key=lambda p: (p.quality, -p.cost_usd)), True

    def route_vectors(self, X: np.ndarray, lam: float, groups: Sequence[str] | None = None,
                      texts: Sequence[str] | None = None) -> Routes:
        """Routes for embeddings ``X`` (n, d) at trade-off ``lam``."""
        from routeharness.routers.base import UTILITY, select

        X = np.ascontiguousarray(X, dtype=np.float32)
        dim = self.manifest.encoder.dimension
        if X.ndim != 2 or X.shape[1] != dim:
            raise RouteHarnessError(f"embeddings of shape {X.shape}: this router was fitted "
                                    f"on {dim}-d embeddings")
        tags = self.tags
        if tags.needs_groups and groups is None:
            raise RouteHarnessError(f"router {self.manifest.router.label!r} needs each "
                                    "prompt's group: give a \"group\" per prompt")
        group_array = np.asarray(list(groups), dtype=object) if groups is not None else None
        kwargs = {"texts": list(texts or [])} if tags.needs_texts else {}
        names = [m.name for m in self.models]
        if self.router.kind == UTILITY:
            scores, costs = self.router.predict(X, group_array if tags.needs_groups else None,
                                                **kwargs)
            scores, costs = np.asarray(scores, float), np.asarray(costs, float)
            choices = select(scores, costs, lam)
            return Routes(lam, np.asarray(choices, np.int64), names, scores,
                          costs * self.cost_scale)
        choices = self.router.route(X, lam, group_array if tags.needs_groups else None,
                                    **kwargs)
        return Routes(lam, np.asarray(choices, np.int64), names)

    def encoder(self) -> Any:
        """The encoder the router was fitted with, rebuilt from its spec and checked:
        identity and revision must be the saved ones."""
        from routeharness.embedding.encoders import get_encoder

        saved = self.manifest.encoder
        if saved.name == "precomputed":
            raise RouteHarnessError("this router was fitted on the dataset's own vectors "
                                    "(precomputed): give an \"embedding\" with each prompt")
        enc = get_encoder(saved.spec)
        for key in ("identity", "revision"):
            if str(getattr(enc, key, None)) != getattr(saved, key):
                raise RouteHarnessError(
                    f"encoder {saved.spec!r}: the installed {key} is "
                    f"{getattr(enc, key, None)!r}, the router was fitted with "
                    f"{getattr(saved, key)!r}; refit it (routeharness fit)")
        return enc


def fit(router: str, task: str, *, encoder: str | None = None, seed: int = 0,
        tune: bool = True, data_dir: str | None = None, cache_dir: str | None = None,
        reporter: Any = None, task_options: dict[str, Any] | None = None) -> SavedRouter:
    """``router`` (a name or ``NAME:PARAM=VALUE``) tuned on ``task``'s validation split
    (unless ``tune`` is False) and fitted on its train split, as ``eval`` does for
    ``seed``; returns the ``SavedRouter`` to ``save``."""
    from routeharness.common.progress import Reporter
    from routeharness.embedding.cache import EmbeddingCache
    from routeharness.embedding.embed import embed_task
    from routeharness.embedding.encoders import choose_encoder, get_encoder
    from routeharness.evaluation import metrics
    from routeharness.evaluation.matrix import load_tasks
    from routeharness.evaluation.protocol import Protocol, seed_streams
    from routeharness.evaluation.scoring import route_split, score_choices
    from routeharness.evaluation.tuning import (
        TuningInputs,
        fit_router,
        jsonable,
        make_router,
        plan_routers,
        tuning_steps,
    )
    from routeharness.evaluation.tuning import tune as tune_router

    reporter = reporter or Reporter()
    plan = plan_routers([router], references=False)[0]
    _check_saveable(plan)
    loaded = load_tasks([task], data_dir=data_dir, reporter=reporter,
                        task_options=task_options)[0]
    spec = choose_encoder(encoder, [loaded])
    enc = get_encoder(spec)
    if callable(getattr(enc, "fit", None)):
        raise RouteHarnessError(f"encoder {spec!r} is fitted on the task's prompts: a saved "
                                "router cannot rebuild it yet; choose a pretrained encoder")
    embedded = embed_task(loaded, enc, EmbeddingCache(cache_dir), reporter)
    protocol = Protocol(seeds=(seed,), tune=tune)
    streams = seed_streams(seed)
    inputs = TuningInputs.of(embedded)
    with reporter.progress(f"fitting {plan.label} on {loaded.name}",
                           tuning_steps(plan, protocol)) as advance:
        best, table = tune_router(plan, inputs, protocol, streams, advance,
                                  f"{plan.label} on {loaded.name}: ")
        params = {**best, **plan.fixed}
        fitted = make_router(plan.router_cls, params, streams.router)
        fit_router(plan, fitted, inputs.X_train, inputs.train)
        advance(1)
    scale = inputs.train.cost_scale
    choices = route_split(fitted, inputs.X_val, inputs.validation, protocol.lambdas, scale)
    scored = score_choices(inputs.validation, choices, protocol.lambdas, per_group=False)
    val_scale = metrics.cost_scale(inputs.validation.costs)
    validation = [{"lam": float(lam), "cost_usd": float(c) * val_scale,
                   "quality": float(q) * 100.0}
                  for lam, c, q in zip(protocol.lambdas, scored["curve"]["cost"],
                                       scored["curve"]["quality"])]
    cls = plan.router_cls
    manifest = {
        "schema": SCHEMA,
        "router": {"label": plan.label, "name": plan.name, "plugin": plan.entry.plugin,
                   "distribution": plan.entry.distribution, "version": plan.entry.version,
                   "class": f"{cls.__module__}.{cls.__qualname__}",
                   "kind": getattr(cls, "kind", "utility")},
        "params": jsonable(fitted.get_params() if hasattr(fitted, "get_params") else params),
        "fixed_params": jsonable(plan.fixed),
        "encoder": {**EncoderIdentity.of(enc).model_dump(), "spec": spec,
                    "dimension": int(embedded.X["train"].shape[1])},
        "task": {"name": loaded.name, "version": getattr(loaded, "version", None),
                 "fingerprint": loaded.fingerprint()},
        "models": [m.to_dict() for m in loaded.models],
        "cost_scale_usd": float(scale),
        "training": {"seed": seed, "random_state": streams.router, "tuned": bool(table),
                     "tuning": jsonable(table), "tune_on": "validation", "fit_on": "train",
                     "n_train": int(inputs.X_train.shape[0]),
                     "validation_auc": float(scored["auc"])},
        "validation": validation,
    }
    train_ids = [str(i) for i in loaded.splits["train"].ids]
    body = check(FittedRouter, manifest, f"the manifest of {plan.label} on {loaded.name}")
    return SavedRouter(body, fitted, list(loaded.models), train_ids)


def _check_saveable(plan: Any) -> None:
    from routeharness.routers.base import tags_of

    if not tags_of(plan.router_cls).saveable:
        raise RouteHarnessError(f"router {plan.label!r} cannot be saved: its tags do not "
                                "declare saveable=True (see docs/writing-a-router.md)")


def save(saved: SavedRouter, folder: str | Path) -> Path:
    """Writes the folder: built in a temporary folder beside it, then renamed into place,
    so a failure leaves nothing half-written. An existing non-empty folder is refused."""
    from routeharness import __version__
    from routeharness.common.files import check_output_path, new_folder
    from routeharness.common.provenance import git_commit, platform_info
    from routeharness.routers.state import write_state

    folder = Path(folder)
    check_output_path(folder / MANIFEST, "saved router")
    state = saved.router.get_state()
    with new_folder(folder, "saved router") as tmp:
        hashes = write_state(state, tmp)
        if saved.train_ids is not None:
            blob = json.dumps(saved.train_ids).encode("utf-8")
            (tmp / IDS_FILE).write_bytes(blob)
            hashes[IDS_FILE] = hashlib.sha256(blob).hexdigest()
        fitted = saved.manifest.model_dump(by_alias=True, exclude={"state", "provenance"})
        manifest = check(RouterManifest, {
            **fitted, "state": hashes,
            "provenance": {"routeharness_version": __version__, "git_commit": git_commit(),
                           "platform": platform_info()}}, str(folder / MANIFEST))
        (tmp / MANIFEST).write_text(dump_json(manifest), encoding="utf-8")
    saved.manifest = manifest
    return folder


def load(folder: str | Path) -> SavedRouter:
    """A saved router, checked against what is installed (see the module doc): the
    manifest through ``RouterManifest`` (unknown keys, wrong types and values out of
    range are one line naming it and the key), then the router's class, distribution and
    version, then the state files against their hashes."""
    from routeharness.data.dataset import ModelInfo
    from routeharness.plugins.registry import get_registry
    from routeharness.routers.base import tags_of
    from routeharness.routers.state import read_state

    folder = Path(folder)
    if not folder.is_dir():
        raise RouteHarnessError(f"{folder}: not a saved router (a folder made by "
                                "routeharness fit)")
    manifest = read_json(folder / MANIFEST, RouterManifest, "saved router", schema=SCHEMA)
    about = manifest.router
    entry = get_registry("router").get(about.name)
    cls = entry.load()
    where = f"{folder}: router {about.label!r}"
    installed = {"distribution": entry.distribution, "version": entry.version,
                 "class": f"{cls.__module__}.{cls.__qualname__}"}
    saved_as = {"distribution": about.distribution, "version": about.version,
                "class": about.class_path}
    for key, value in installed.items():
        if str(value) != saved_as[key]:
            raise RouteHarnessError(f"{where} was saved with {key} {saved_as[key]!r}, the "
                                    f"installed one is {value!r}; refit it "
                                    "(routeharness fit)")
    if not tags_of(cls).saveable:
        raise RouteHarnessError(f"{where}: the installed router no longer declares "
                                "saveable=True")
    state = read_state(folder, manifest.state)
    try:
        router = cls(**manifest.params).set_state(state)
    except RouteHarnessError:
        raise
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise RouteHarnessError(f"{folder / MANIFEST}: a malformed saved router "
                                f"({type(exc).__name__}: {exc})") from None
    models = [ModelInfo.from_dict(dict(m)) for m in manifest.models]
    return SavedRouter(manifest, router, models)
