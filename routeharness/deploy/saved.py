"""A fitted router saved as a folder, and loaded to route new prompts (``routeharness fit``,
``routeharness route``).

The folder is one verified unit: ``manifest.json`` (``RouterManifest``, a contract, schema
``routeharness.router/1``: the router, its plugin distribution and version,
hyper-parameters, the encoder's identity and revision, the task's fingerprint, the model
pool with prices, the cost scale, the training protocol, the validation operating points,
the updates since, the sha256 of every other file, the provenance, and its own
``checksum``), the router's state (``routeharness.routers.state``: ``state.safetensors``
and ``state.json``, and ``index.safetensors``: a search index serialised to bytes, for a
router whose index is slow to build) and ``train_ids.json`` (``TrainingRows``: each training prompt's id,
group and the sha256 of its text and vector, in the table's row order, for ``update``).
No pickle, ever. A folder holds exactly the files its manifest hashes.

``fit`` trains exactly as one ``eval`` run does (``tuning.tune`` on validation with the
seed's streams, then ``make_router`` + ``fit_router`` on train), so routing the task's
test prompts with a saved router gives ``eval``'s test routes for that router and seed.

``load`` reads every file through one handle of the folder (``common.folders``: a swap
by ``update`` meanwhile is read again, never mixed; an interrupted swap is finished or
rolled back first), then refuses in one line naming the file and the key: a manifest
out of its contract, a checksum that does not match, a missing, extra or changed file,
another router class, distribution or version, parameters the installed router refuses
(``validate_params``), a state whose sizes disagree with the manifest's models,
dimension and training size (``check_sizes``), training rows that are not the training
size. A manifest saved before checksums (no ``checksum`` key) loads with a
``LegacyRouterWarning``; ``routeharness update FOLDER --migrate`` adds one.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

import numpy as np
from pydantic import (
    AfterValidator,
    ConfigDict,
    WithJsonSchema,
    field_validator,
    model_validator,
)

from routeharness.common.contract import (
    Contract,
    Field,
    FiniteFloat,
    NonNegative,
    Number,
    check,
    dump_json,
    parse_json,
)
from routeharness.common.errors import RouteHarnessError
from routeharness.data.cards import CardModel
from routeharness.embedding.encoders import EncoderIdentity
from routeharness.embedding.onnx import MODEL_FILE, STORED_FILES, TOKENIZER_FILE
from routeharness.routers.state import ARRAYS_FILE, INDEX_FILE, STATE_FILES, VALUES_FILE

SCHEMA = "routeharness.router/1"
MANIFEST = "manifest.json"
#: the training prompts' ids (groups, text and vector hashes), in the table's row order
IDS_FILE = "train_ids.json"
#: the files beside the manifest, each hashed in its ``state``; the first two required
SAVED_FILES = (ARRAYS_FILE, VALUES_FILE, IDS_FILE, INDEX_FILE, *STORED_FILES)
#: how long ``load`` waits for an update that is swapping the folder in two renames, and
#: how many times it reads a folder that updates replace while it reads
READ_WAIT_S, READ_TRIES = 30.0, 20


class LegacyRouterWarning(UserWarning):
    """A saved router whose manifest has no checksum (saved before there was one)."""


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


class EncoderCheck(Contract):
    """The stored encoder against the encoder the router was fitted with, on the task's
    test prompts, measured by ``fit``: the embeddings' largest difference and the routes
    at every trade-off of the sweep."""

    prompts: int = Field(ge=0, description="test prompts encoded both ways")
    max_abs_diff: NonNegative = Field(description="the largest |difference| of one "
                                      "embedding coordinate")
    min_cosine: FiniteFloat = Field(description="the smallest cosine between a prompt's "
                                    "two embeddings")
    routes: int = Field(ge=0, description="routes compared (prompts x trade-offs)")
    routes_differing: int = Field(ge=0, description="of these, routes to another model")


class StoredEncoder(Contract):
    """The encoder stored in the folder (``fit --store-encoder``): an ONNX graph
    (``encoder.onnx``) and its tokenizer (``encoder_tokenizer.json``), both hashed in
    ``state``; ``route`` and ``serve`` run it on onnxruntime instead of rebuilding
    ``encoder.spec``."""

    format: Literal["onnx"] = Field(description="the graph's format")
    lower_case: bool = Field(description="whether texts are lower-cased before "
                             "tokenizing")
    opset: int = Field(ge=1, description="the ONNX opset of the export")
    exported_with: dict[str, str] = Field(description="library -> version that exported "
                                          "and checked it")
    check: EncoderCheck = Field(description="its agreement with the fitted encoder")


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
    replaced_prompts: int = Field(0, ge=0, description="known prompts whose row was "
                                  "replaced (update --replace)")
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
    stored_encoder: StoredEncoder | None = Field(None, description="the encoder stored "
                                                 "in the folder (fit --store-encoder); "
                                                 "absent: route rebuilds encoder.spec")

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

    state: dict[str, Sha256] = Field(description="file name -> sha256 of every other file "
                                     "of the folder: state.safetensors, state.json, "
                                     "train_ids.json, (a router that keeps its search "
                                     "index) index.safetensors and (a stored encoder) "
                                     "encoder.onnx and encoder_tokenizer.json")
    provenance: ManifestProvenance = Field(description="what wrote the folder")
    checksum: str | None = Field(None, pattern=r"^sha256:[0-9a-f]{64}$", description=(
        "sha256 over this manifest's canonical JSON (keys sorted, no spaces), this key "
        "left out; absent in folders saved before it existed"))

    @field_validator("state")
    @classmethod
    def _files(cls, value: dict[str, str]) -> dict[str, str]:
        unknown = sorted(set(value) - set(SAVED_FILES))
        if unknown:
            raise ValueError(f"unknown file(s) {unknown}; a saved router holds "
                             f"{list(SAVED_FILES)}")
        missing = [name for name in SAVED_FILES[:2] if name not in value]
        if missing:
            raise ValueError(f"missing the hash of {missing}")
        return value

    @model_validator(mode="after")
    def _stored_files(self) -> RouterManifest:
        hashed = [name for name in STORED_FILES if name in self.state]
        if self.stored_encoder is not None and len(hashed) != len(STORED_FILES):
            raise ValueError(f"state: a stored encoder needs the hashes of "
                             f"{list(STORED_FILES)}")
        if self.stored_encoder is None and hashed:
            raise ValueError(f"state: {hashed} hashed without a stored_encoder")
        return self


def manifest_checksum(data: dict[str, Any]) -> str:
    """``"sha256:<hex>"`` over a manifest's JSON data (as parsed from the file), its
    ``checksum`` key left out: keys sorted, no spaces, non-ASCII escaped (the canonical
    form of submission checksums)."""
    body = {key: value for key, value in data.items() if key != "checksum"}
    # a NaN a hand put in the file gives a checksum no writer made (they refuse NaN)
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"))
    return "sha256:" + hashlib.sha256(canonical.encode("utf-8")).hexdigest()


#: a sha256 in hex, or null where it was not recorded (rows saved before it was)
MaybeSha256 = Annotated[str | None, Field(pattern=r"^[0-9a-f]{64}$")]


class TrainingRows(Contract):
    """``train_ids.json``: the router's training prompts in its table's row order, what
    ``update`` matches new outcomes on: the id, and to tell a known id's prompt from
    another one, its group and the sha256 of its text (UTF-8) and, for a router fitted
    on the dataset's own vectors, of its vector (float32, little-endian). null where not
    recorded (a folder saved before they were, whose ``train_ids.json`` is a list of
    ids)."""

    ids: list[str] = Field(description="the ids, unique")
    groups: list[str | None] = Field(description="each prompt's group")
    prompt_sha256: list[MaybeSha256] = Field(description="sha256 of each prompt's text")
    embedding_sha256: list[MaybeSha256] = Field(description="sha256 of each prompt's "
                                                "vector (precomputed routers), else null")

    @field_validator("ids")
    @classmethod
    def _unique(cls, value: list[str]) -> list[str]:
        if len(set(value)) != len(value):
            seen: set[str] = set()
            twice = next(i for i in value if i in seen or seen.add(i))
            raise ValueError(f"id {twice!r} is listed twice")
        return value

    @model_validator(mode="after")
    def _lengths(self) -> TrainingRows:
        n = len(self.ids)
        for key in ("groups", "prompt_sha256", "embedding_sha256"):
            if len(getattr(self, key)) != n:
                raise ValueError(f"{key} holds {len(getattr(self, key))} entries for {n} ids")
        return self

    def __len__(self) -> int:
        return len(self.ids)

    def take(self, at: Sequence[int]) -> TrainingRows:
        """Rows ``at`` (indices), in that order."""
        pick = [int(i) for i in at]
        return TrainingRows(**{key: [getattr(self, key)[i] for i in pick] for key in
                               ("ids", "groups", "prompt_sha256", "embedding_sha256")})

    def extended(self, other: TrainingRows) -> TrainingRows:
        return TrainingRows(ids=self.ids + other.ids, groups=self.groups + other.groups,
                            prompt_sha256=self.prompt_sha256 + other.prompt_sha256,
                            embedding_sha256=self.embedding_sha256 + other.embedding_sha256)

    def replaced(self, at: Sequence[int], other: TrainingRows) -> TrainingRows:
        """These rows with rows ``at`` (indices) replaced by ``other``'s, in order."""
        out = {key: list(getattr(self, key)) for key in
               ("ids", "groups", "prompt_sha256", "embedding_sha256")}
        for i, row in enumerate(at):
            for key, values in out.items():
                values[row] = getattr(other, key)[i]
        return TrainingRows(**out)


def text_sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def vector_sha256(vector: Any) -> str:
    return hashlib.sha256(np.ascontiguousarray(vector, dtype="<f4").tobytes()).hexdigest()


def rows_of(data: Any, vectors: np.ndarray | None) -> TrainingRows:
    """``TrainingRows`` of a ``RoutingData`` (its ids, groups and prompts) and, for a
    router fitted on the dataset's own vectors, ``vectors`` (n, d)."""
    return TrainingRows(
        ids=[str(i) for i in data.ids], groups=[str(g) for g in data.groups],
        prompt_sha256=[text_sha256(str(p)) for p in data.prompts],
        embedding_sha256=[None] * data.n if vectors is None else
        [vector_sha256(v) for v in vectors])


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
    #: the training prompts in the router's row order (what ``update`` matches on)
    rows: TrainingRows | None = None
    #: the stored encoder's files (``encoder.onnx``, ``encoder_tokenizer.json``), as
    #: checked on load; empty without one
    encoder_files: dict[str, bytes] = field(default_factory=dict)
    _encoder: Any = field(default=None, repr=False, compare=False)

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
                      texts: Sequence[str] | None = None,
                      served: np.ndarray | None = None) -> Routes:
        """Routes for embeddings ``X`` (n, d) at trade-off ``lam``; ``served`` (m,) bool:
        the models a utility router may choose (None: all; a selection router ignores
        it)."""
        from routeharness.routers.base import UTILITY

        if self.router.kind == UTILITY:
            scores, costs = self.predict_vectors(X, groups, texts)
            return self.routes_of(scores, costs, lam, served)
        X, group_array, kwargs = self._inputs(X, groups, texts)
        choices = self.router.route(X, lam, group_array, **kwargs)
        return Routes(lam, np.asarray(choices, np.int64), [m.name for m in self.models])

    def predict_vectors(self, X: np.ndarray, groups: Sequence[str] | None = None,
                        texts: Sequence[str] | None = None) -> tuple[np.ndarray, np.ndarray]:
        """A utility router's predicted scores and costs (normalised units), (n, m) each,
        for embeddings ``X`` (n, d): what ``routes_of`` selects from at any trade-off."""
        X, group_array, kwargs = self._inputs(X, groups, texts)
        scores, costs = self.router.predict(X, group_array, **kwargs)
        return np.asarray(scores, float), np.asarray(costs, float)

    def routes_of(self, scores: np.ndarray, costs: np.ndarray, lam: float,
                  served: np.ndarray | None = None) -> Routes:
        """The routes at ``lam`` from a utility router's predictions (``predict_vectors``):
        the one selection rule (``routers.base.select``), over the ``served`` models only
        when given."""
        from routeharness.routers.base import select

        allowed = scores if served is None else np.where(served, scores, np.nan)
        choices = select(allowed, costs, lam)
        return Routes(lam, np.asarray(choices, np.int64), [m.name for m in self.models],
                      scores, costs * self.cost_scale)

    def _inputs(self, X: np.ndarray, groups: Sequence[str] | None,
                texts: Sequence[str] | None) -> tuple[np.ndarray, Any, dict[str, Any]]:
        """``X`` checked against the fitted dimension, the groups (when the router needs
        them) and the texts argument (when it reads them)."""
        X = np.ascontiguousarray(X, dtype=np.float32)
        dim = self.manifest.encoder.dimension
        if X.ndim != 2 or X.shape[1] != dim:
            raise RouteHarnessError(f"embeddings of shape {X.shape}: this router was fitted "
                                    f"on {dim}-d embeddings")
        tags = self.tags
        if tags.needs_groups and groups is None:
            raise RouteHarnessError(f"router {self.manifest.router.label!r} needs each "
                                    "prompt's group: give a \"group\" per prompt")
        group_array = (np.asarray(list(groups), dtype=object)
                       if groups is not None and tags.needs_groups else None)
        kwargs = {"texts": list(texts or [])} if tags.needs_texts else {}
        return X, group_array, kwargs

    def encoder(self, threads: int | None = None, *, spin: bool = True) -> Any:
        """The encoder the router was fitted with: the stored one (run on onnxruntime,
        from the files checked on load; ``threads``: its intra-op threads, None: one per
        core; ``spin``: see ``OnnxEncoder``), else rebuilt from its spec and checked:
        identity and revision must be the saved ones. Built once."""
        if self._encoder is None:
            self._encoder = self._build_encoder(threads, spin)
        return self._encoder

    def stored_encoder_note(self) -> str | None:
        """One line when the stored encoder routed some test prompts otherwise than the
        fitted encoder (the manifest's ``stored_encoder.check``); None when it did not."""
        stored = self.manifest.stored_encoder
        if stored is None or not stored.check.routes_differing:
            return None
        check = stored.check
        return (f"note: the stored encoder routes {check.routes_differing} of "
                f"{check.routes} test routes ({check.prompts} prompts x trade-offs) to "
                f"another model than {self.manifest.encoder.spec!r} did (largest embedding "
                f"difference {check.max_abs_diff:.2g}; manifest.json stored_encoder.check)")

    def _build_encoder(self, threads: int | None, spin: bool = True) -> Any:
        from routeharness.embedding.encoders import get_encoder

        saved = self.manifest.encoder
        if saved.name == "precomputed":
            raise RouteHarnessError("this router was fitted on the dataset's own vectors "
                                    "(precomputed): give an \"embedding\" with each prompt")
        if self.manifest.stored_encoder is not None:
            return _stored_encoder(self.manifest, self.encoder_files, threads, spin=spin)
        enc = get_encoder(saved.spec)
        for key in ("identity", "revision"):
            if str(getattr(enc, key, None)) != getattr(saved, key):
                raise RouteHarnessError(
                    f"encoder {saved.spec!r}: the installed {key} is "
                    f"{getattr(enc, key, None)!r}, the router was fitted with "
                    f"{getattr(saved, key)!r}; refit it (routeharness fit)")
        return enc


def _stored_encoder(manifest: FittedRouter, files: dict[str, bytes],
                    threads: int | None, spin: bool = True) -> Any:
    """The stored encoder (``OnnxEncoder``) of a manifest that has one, from its files."""
    from routeharness.embedding.onnx import OnnxEncoder

    saved, stored = manifest.encoder, manifest.stored_encoder
    assert stored is not None
    return OnnxEncoder(files[MODEL_FILE], files[TOKENIZER_FILE], name=saved.name,
                       identity=saved.identity, revision=saved.revision,
                       lower_case=stored.lower_case, dimension=saved.dimension,
                       threads=threads, spin=spin)


def fit(router: str, task: str, *, encoder: str | None = None, seed: int = 0,
        tune: bool = True, data_dir: str | None = None, cache_dir: str | None = None,
        reporter: Any = None, task_options: dict[str, Any] | None = None,
        store_encoder: bool = False) -> SavedRouter:
    """``router`` (a name or ``NAME:PARAM=VALUE``) tuned on ``task``'s validation split
    (unless ``tune`` is False) and fitted on its train split, as ``eval`` does for
    ``seed``; returns the ``SavedRouter`` to ``save``. ``store_encoder``: the encoder
    exported to ONNX and kept with the router (``stored_encoder``), measured against the
    fitted encoder on the test prompts."""
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
        sparse_table,
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
    if store_encoder:
        _check_storable(enc, spec)
    embedded = embed_task(loaded, enc, EmbeddingCache(cache_dir), reporter)
    protocol = Protocol(seeds=(seed,), tune=tune)
    streams = seed_streams(seed)
    inputs = TuningInputs.of(embedded)
    with reporter.progress(f"fitting {plan.label} on {loaded.name}",
                           tuning_steps(plan, protocol,
                                        sparse_table(inputs.train.scores))) as advance:
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
    files: dict[str, bytes] = {}
    if store_encoder:
        manifest["stored_encoder"], files = stored_encoder(
            enc, spec, fitted, loaded.splits["test"], embedded.X["test"], protocol.lambdas,
            scale, reporter)
    body = check(FittedRouter, manifest, f"the manifest of {plan.label} on {loaded.name}")
    rows = rows_of(loaded.splits["train"],
                   inputs.X_train if body.encoder.name == "precomputed" else None)
    return SavedRouter(body, fitted, list(loaded.models), rows, files)


def _check_storable(enc: Any, spec: str) -> None:
    """``--store-encoder`` needs a text encoder that exports itself (``export_onnx``)."""
    from routeharness.embedding.onnx import require_runtime

    if spec == "precomputed" or not callable(getattr(enc, "export_onnx", None)) \
            or set(enc.modalities) != {"text"}:
        raise RouteHarnessError(f"--store-encoder: encoder {spec!r} cannot be stored (only a "
                                "text encoder with an ONNX export can: minilm, st:MODEL); "
                                "leave --store-encoder out")
    require_runtime("--store-encoder")


def stored_encoder(enc: Any, spec: str, router: Any, test: Any, X_test: np.ndarray,
                   lams: Sequence[float], scale: float, reporter: Any
                   ) -> tuple[dict[str, Any], dict[str, bytes]]:
    """``enc`` exported (``export_onnx``), run on onnxruntime over the test prompts and
    compared with ``X_test`` (its own vectors) and with the routes they give at every
    trade-off ``lams``: the manifest's ``stored_encoder`` and the files to store."""
    from routeharness.embedding.onnx import OnnxEncoder, runtime_version
    from routeharness.evaluation.scoring import route_split

    with reporter.progress(f"exporting {spec} to ONNX", 1) as advance:
        export = enc.export_onnx()
        advance(1)
    for key, kind in (("model", bytes), ("tokenizer", bytes), ("lower_case", bool)):
        if not isinstance(export.get(key), kind):
            raise RouteHarnessError(f"encoder {spec!r}: export_onnx() gave no {key!r} "
                                    f"({kind.__name__})")
    stored = OnnxEncoder(export["model"], export["tokenizer"], name=enc.name,
                         identity=enc.identity, revision=enc.revision,
                         lower_case=export["lower_case"], dimension=X_test.shape[1])
    texts = test.texts_to_embed()
    with reporter.progress("checking the stored encoder on the test prompts",
                           len(texts)) as advance:
        X_onnx = stored.encode(texts, progress=advance)
    reference = np.asarray(X_test, dtype=np.float32)
    if X_onnx.shape != reference.shape:
        raise RouteHarnessError(f"encoder {spec!r}: the ONNX export gives vectors of shape "
                                f"{X_onnx.shape}, the encoder {reference.shape}")
    ours = route_split(router, X_onnx, test, lams, scale)
    theirs = route_split(router, reference, test, lams, scale)
    versions = {"onnxruntime": runtime_version()}
    try:
        from importlib import metadata

        versions["torch"] = metadata.version("torch")
    except Exception:
        pass
    cosines = np.sum(X_onnx * reference, axis=1) if len(texts) else np.ones(1)
    about = {"format": "onnx", "lower_case": bool(export["lower_case"]),
             "opset": int(export.get("opset") or 17), "exported_with": versions,
             "check": {"prompts": len(texts),
                       "max_abs_diff": float(np.max(np.abs(X_onnx - reference)))
                       if len(texts) else 0.0,
                       "min_cosine": float(np.min(cosines)),
                       "routes": int(ours.size),
                       "routes_differing": int(np.sum(ours != theirs))}}
    return about, {MODEL_FILE: export["model"], TOKENIZER_FILE: export["tokenizer"]}


def _check_saveable(plan: Any) -> None:
    from routeharness.routers.base import tags_of

    if not tags_of(plan.router_cls).saveable:
        raise RouteHarnessError(f"router {plan.label!r} cannot be saved: its tags do not "
                                "declare saveable=True (see docs/writing-a-router.md)")


def save(saved: SavedRouter, folder: str | Path) -> Path:
    """Writes the folder: built in a temporary folder beside it, then renamed into place,
    so a failure leaves nothing half-written. An existing non-empty folder is refused; a
    symlink to an empty folder (or to none yet) is followed and stays a link."""
    from routeharness.common.files import new_folder

    folder = Path(folder)
    state = saved.router.get_state()
    with new_folder(folder, "saved router") as tmp:
        manifest = write_folder(saved, tmp, state, str(folder / MANIFEST))
    saved.manifest = manifest
    return folder


def write_folder(saved: SavedRouter, folder: Path, state: Any = None,
                 where: str = MANIFEST) -> RouterManifest:
    """The saved router's files in the empty ``folder`` (``save``'s, or ``update``'s
    swap); returns the manifest written, checked through ``RouterManifest`` first and
    then checksummed (``where`` names it in a message)."""
    from routeharness import __version__
    from routeharness.common.provenance import git_commit, platform_info
    from routeharness.routers.state import write_state

    hashes = write_state(saved.router.get_state() if state is None else state, folder)
    for name, blob in saved.encoder_files.items():
        (folder / name).write_bytes(blob)
        hashes[name] = hashlib.sha256(blob).hexdigest()
    if saved.rows is not None:
        rows = saved.rows.model_dump(mode="json")
        blob = json.dumps(rows, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
        (folder / IDS_FILE).write_bytes(blob)
        hashes[IDS_FILE] = hashlib.sha256(blob).hexdigest()
    fitted = saved.manifest.model_dump(by_alias=True,
                                       exclude={"state", "provenance", "checksum"})
    manifest = check(RouterManifest, {
        **fitted, "state": hashes,
        "provenance": {"routeharness_version": __version__, "git_commit": git_commit(),
                       "platform": platform_info()}}, where)
    data = manifest.model_dump(mode="json", by_alias=True, exclude={"checksum"})
    manifest = manifest.model_copy(update={"checksum": manifest_checksum(data)})
    (folder / MANIFEST).write_text(dump_json(manifest), encoding="utf-8")
    return manifest


def read_files(folder: str | Path, *, recover: bool = True) -> dict[str, bytes]:
    """The files of the real folder behind ``folder`` (symlinks followed), read whole
    through one handle of it: a swap by ``update`` meanwhile is read again, never mixed.
    ``recover``: an interrupted swap is finished or rolled back first, unless a writer is
    at work (``common.folders``; ``update`` holds the lock and recovers itself)."""
    from routeharness.common.folders import (
        needs_recovery,
        read_folder,
        real_folder,
        recover_if_idle,
    )

    shown, real = Path(folder), real_folder(folder)
    for _ in range(READ_TRIES):
        if recover and needs_recovery(real):
            recover_if_idle(real, 0.0 if os.path.isdir(real) else READ_WAIT_S)
        try:
            return read_folder(real)
        except FileNotFoundError:  # swapped while read, or a swap under way: again
            if not (os.path.isdir(real) or (recover and needs_recovery(real))):
                break  # nothing there, and no swap that would put it back
        except NotADirectoryError:
            break
        except OSError as exc:
            raise RouteHarnessError(f"{shown}: cannot read the saved router: "
                                    f"{exc.strerror or exc}") from None
    else:
        raise RouteHarnessError(f"{shown}: the saved router was replaced {READ_TRIES} "
                                "times while it was read; try again")
    raise RouteHarnessError(f"{shown}: not a saved router (a folder made by "
                            "routeharness fit)")


def load(folder: str | Path, *, recover: bool = True) -> SavedRouter:
    """A saved router, checked against itself and what is installed (see the module
    doc); every refusal one line naming the file and the key."""
    import warnings

    from routeharness.data.dataset import ModelInfo
    from routeharness.routers.base import tags_of

    folder = Path(folder)
    files = read_files(folder, recover=recover)
    where = folder / MANIFEST
    if MANIFEST not in files:
        raise RouteHarnessError(f"{folder}: not a saved router (no {MANIFEST}; a folder "
                                "made by routeharness fit)")
    data = parse_json(files[MANIFEST], str(where))
    found = data.get("schema") if isinstance(data, dict) else None
    if found != SCHEMA:
        raise RouteHarnessError(f"{where}: not a routeharness saved router (schema "
                                f"{found!r}, expected {SCHEMA!r})")
    manifest = check(RouterManifest, data, str(where))
    # another router version is refused whatever else (a refit is the answer either way)
    cls = _installed_class(folder, manifest)
    if manifest.checksum is None:
        warnings.warn(f"{where}: saved without a manifest checksum (by an older "
                      "routeharness): its other files are checked, the manifest by its "
                      f"contract only; add one with routeharness update {folder} --migrate",
                      LegacyRouterWarning, stacklevel=2)
    elif manifest.checksum != manifest_checksum(data):
        raise RouteHarnessError(f"{where}: checksum: does not match the manifest's content "
                                "(edited after it was saved?); restore it or refit "
                                "(routeharness fit)")
    _check_files(folder, files, manifest)
    if not tags_of(cls).saveable:
        raise RouteHarnessError(f"{folder}: router {manifest.router.label!r}: the installed "
                                "router no longer declares saveable=True")
    router = _restored(folder, cls, manifest, files)
    rows = _rows(folder, files.get(IDS_FILE), manifest.training.n_train)
    models = [ModelInfo.from_dict(dict(m)) for m in manifest.models]
    stored = {name: files[name] for name in STORED_FILES
              if manifest.stored_encoder is not None}
    return SavedRouter(manifest, router, models, rows, stored)


def _check_files(folder: Path, files: dict[str, bytes], manifest: RouterManifest) -> None:
    """Exactly the manifest's files, each with its recorded sha256."""
    extra = sorted(set(files) - {MANIFEST} - set(manifest.state))
    if extra:
        raise RouteHarnessError(f"{folder / extra[0]}: not a file of this saved router (its "
                                f"manifest hashes {sorted(manifest.state)}); remove it")
    for name, digest in manifest.state.items():
        if name not in files:
            raise RouteHarnessError(f"{folder / name}: missing (the manifest records its "
                                    "sha256)")
        if hashlib.sha256(files[name]).hexdigest() != digest:
            raise RouteHarnessError(f"{folder / name}: its sha256 is not the one the manifest "
                                    "records (the file was changed after it was saved)")


def _installed_class(folder: Path, manifest: RouterManifest) -> type:
    """The installed router class, refused when it is not the one saved."""
    from routeharness.plugins.registry import get_registry

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
    kind = getattr(cls, "kind", "utility")
    if kind != about.kind:
        raise RouteHarnessError(f"{folder / MANIFEST}: router.kind: {about.kind!r}, but "
                                f"{about.class_path} is a {kind} router")
    return cls


def _restored(folder: Path, cls: type, manifest: RouterManifest,
              files: dict[str, bytes]) -> Any:
    """``cls`` built with the manifest's parameters (every one, each accepted by the
    router's ``validate_params``), its state set and its sizes checked."""
    import inspect

    from routeharness.routers.state import StateError, state_from_bytes

    where = folder / MANIFEST
    signature = inspect.signature(cls.__init__)
    names = {p.name for p in signature.parameters.values()
             if p.name != "self" and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)}
    # a parameter added to the class after the folder was saved: the value it routed with
    added = getattr(cls, "params_added", {}) or {}
    params = {**{k: v for k, v in added.items() if k in names}, **manifest.params}
    missing, unknown = sorted(names - set(params)), sorted(set(params) - names)
    if missing or unknown:
        raise RouteHarnessError(f"{where}: params: " + "; ".join(
            part for part in (f"missing {missing}" if missing else "",
                              f"unknown {unknown}" if unknown else "") if part)
            + f" (the parameters of {manifest.router.class_path})")
    try:
        router = cls(**params)
        validate = getattr(router, "validate_params", None)
        if validate is not None:
            validate()
    except (TypeError, ValueError) as exc:
        raise RouteHarnessError(f"{where}: params: {' '.join(str(exc).split())}") from None
    for name, value in manifest.fixed_params.items():
        if name not in params or params[name] != value:
            raise RouteHarnessError(f"{where}: fixed_params.{name}: {value!r} is not the "
                                    f"value in params ({params.get(name)!r})")
    state = state_from_bytes(files, folder, manifest.state)
    sizes = {"models": len(manifest.models), "dimension": manifest.encoder.dimension,
             "n_train": manifest.training.n_train}
    try:
        router = router.set_state(state)
        check_sizes = getattr(router, "check_sizes", None)
        if check_sizes is not None:
            check_sizes(**sizes)
    except StateError as exc:
        raise RouteHarnessError(f"{folder / STATE_FILES.get(exc.part, ARRAYS_FILE)}: "
                                f"{exc}") from None
    except RouteHarnessError:
        raise
    except (KeyError, TypeError, ValueError, AttributeError, IndexError) as exc:
        raise RouteHarnessError(f"{where}: a malformed saved router "
                                f"({type(exc).__name__}: {exc})") from None
    return router


def _rows(folder: Path, blob: bytes | None, n_train: int) -> TrainingRows | None:
    """``train_ids.json`` as ``TrainingRows`` (a plain list of ids: rows known by id
    alone), one per training prompt; None when the folder has none."""

    if blob is None:
        return None
    path = folder / IDS_FILE
    data = parse_json(blob, str(path))
    if isinstance(data, list):  # saved before groups and hashes were kept
        none = [None] * len(data)
        data = {"ids": data, "groups": none, "prompt_sha256": none,
                "embedding_sha256": none}
    rows = check(TrainingRows, data, str(path))
    if len(rows) != n_train:
        raise RouteHarnessError(f"{path}: ids: {len(rows)} ids for the {n_train} training "
                                "prompts the manifest records (training.n_train)")
    return rows
