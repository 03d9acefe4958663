"""A fitted router saved as a folder, and loaded to route new prompts (``routeharness fit``,
``routeharness route``).

The folder holds ``manifest.json`` (schema ``routeharness.router/1``: the router, its
plugin distribution and version, hyper-parameters, the encoder's identity and revision,
the task's fingerprint, the model pool with prices, the cost scale, the training protocol
and the validation operating points) and the router's state (``routeharness.routers.state``:
``state.safetensors`` and ``state.json``, their sha256 in the manifest). No pickle, ever.

``fit`` trains exactly as one ``eval`` run does (``tuning.tune`` on validation with the
seed's streams, then ``make_router`` + ``fit_router`` on train), so routing the task's
test prompts with a saved router gives ``eval``'s test routes for that router and seed.
Loading checks the manifest against what is installed and refuses, in one line, what it
cannot honour: another router class, distribution or version, another encoder identity
or revision, files changed after saving.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from routeharness.common.errors import RouteHarnessError

SCHEMA = "routeharness.router/1"
MANIFEST = "manifest.json"
#: the training prompts' ids, in the table's row order (for ``update``)
IDS_FILE = "train_ids.json"


@dataclass(frozen=True)
class OperatingPoint:
    """The saved router on the validation split at one trade-off: mean cost per prompt
    in USD and quality (score x100). ``--budget`` chooses among these."""

    lam: float
    cost_usd: float
    quality: float

    def to_dict(self) -> dict[str, Any]:
        return {"lam": self.lam, "cost_usd": self.cost_usd, "quality": self.quality}


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
    """A fitted router and its manifest (see the module doc). ``router`` is the live
    router object (rebuilt from the state on load)."""

    manifest: dict[str, Any]
    router: Any
    models: list[Any] = field(default_factory=list)
    #: the training prompts' ids in the router's row order (what ``update`` matches on)
    train_ids: list[str] | None = None

    @property
    def cost_scale(self) -> float:
        """USD per normalised cost unit (train's most expensive model's mean cost)."""
        return float(self.manifest["cost_scale_usd"])

    @property
    def validation(self) -> list[OperatingPoint]:
        return [OperatingPoint(float(p["lam"]), float(p["cost_usd"]), float(p["quality"]))
                for p in self.manifest["validation"]]

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
        dim = self.manifest["encoder"].get("dimension")
        if X.ndim != 2 or (dim is not None and X.shape[1] != dim):
            raise RouteHarnessError(f"embeddings of shape {X.shape}: this router was fitted "
                                    f"on {dim}-d embeddings")
        tags = self.tags
        if tags.needs_groups and groups is None:
            raise RouteHarnessError(f"router {self.manifest['router']['label']!r} needs each "
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

        saved = self.manifest["encoder"]
        if saved["name"] == "precomputed":
            raise RouteHarnessError("this router was fitted on the dataset's own vectors "
                                    "(precomputed): give an \"embedding\" with each prompt")
        enc = get_encoder(saved["spec"])
        for key in ("identity", "revision"):
            if str(getattr(enc, key, None)) != str(saved[key]):
                raise RouteHarnessError(
                    f"encoder {saved['spec']!r}: the installed {key} is "
                    f"{getattr(enc, key, None)!r}, the router was fitted with "
                    f"{saved[key]!r}; refit it (routeharness fit)")
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
    validation = [OperatingPoint(float(lam), float(c) * val_scale, float(q) * 100.0).to_dict()
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
        "encoder": {"spec": spec, "name": enc.name, "identity": str(enc.identity),
                    "revision": str(enc.revision),
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
    return SavedRouter(manifest, fitted, list(loaded.models), train_ids)


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
    from routeharness.common.jsonfiles import write_json
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
        manifest = {**saved.manifest, "state": hashes,
                    "provenance": {"routeharness_version": __version__,
                                   "git_commit": git_commit(), "platform": platform_info()}}
        write_json(manifest, tmp / MANIFEST, "saved router")
    saved.manifest = manifest
    return folder


def load(folder: str | Path) -> SavedRouter:
    """A saved router, checked against what is installed (see the module doc)."""
    from routeharness.common.jsonfiles import read_json
    from routeharness.data.dataset import ModelInfo
    from routeharness.plugins.registry import get_registry
    from routeharness.routers.state import read_state

    folder = Path(folder)
    if not folder.is_dir():
        raise RouteHarnessError(f"{folder}: not a saved router (a folder made by "
                                "routeharness fit)")
    manifest = read_json(folder / MANIFEST, "saved router", SCHEMA)
    try:
        about = manifest["router"]
        entry = get_registry("router").get(about["name"])
        cls = entry.load()
        where = f"{folder}: router {about['label']!r}"
        installed = {"distribution": entry.distribution, "version": entry.version,
                     "class": f"{cls.__module__}.{cls.__qualname__}"}
        for key, value in installed.items():
            if str(value) != str(about[key]):
                raise RouteHarnessError(f"{where} was saved with {key} {about[key]!r}, the "
                                        f"installed one is {value!r}; refit it "
                                        "(routeharness fit)")
        from routeharness.routers.base import tags_of

        if not tags_of(cls).saveable:
            raise RouteHarnessError(f"{where}: the installed router no longer declares "
                                    "saveable=True")
        state = read_state(folder, manifest["state"])
        params = {k: v for k, v in manifest["params"].items()}
        router = cls(**params).set_state(state)
        models = [ModelInfo.from_dict(m) for m in manifest["models"]]
        saved = SavedRouter(manifest, router, models)
        if not saved.validation or not np.isfinite(saved.cost_scale) or saved.cost_scale <= 0:
            raise ValueError("no validation points, or a cost scale that is not positive")
        for key in ("spec", "name", "identity", "revision"):
            str(manifest["encoder"][key])
    except RouteHarnessError:
        raise
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise RouteHarnessError(f"{folder / MANIFEST}: a malformed saved router "
                                f"({type(exc).__name__}: {exc})") from None
    return saved
