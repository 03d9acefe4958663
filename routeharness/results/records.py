"""The result file format (``routeharness.results/1``) as typed models: ``RunRecord`` (one
router x task x seed), ``TaskReference`` (a task's facts and reference rows), the
``ProtocolRecord`` and ``ResultSet`` (a run's records with provenance). Leaderboard
submissions build on them (``routeharness.boards.definition``).

Every model is a ``routeharness.common.contract`` model: read with ``check``/``read_json``
(the first problem one line naming the file and the key's JSON path), written with
``dump_json`` (NaN and infinity as ``"nan"``, ``"inf"``; ``null`` = not available). A
record is typed from the moment a run makes it (``evaluation.run.finish``) to the file and
back. Result files keep the keys this version does not know and write them back, and a
key is written back only when it was read (or set): a file read and saved is unchanged.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    ConfigDict,
    PlainSerializer,
    SerializerFunctionWrapHandler,
    WithJsonSchema,
    field_serializer,
    model_serializer,
    model_validator,
)

from routeharness.common.contract import (
    Field,
    Number,
    OpenContract,
    check,
    dump_json,
    read_json,
)
from routeharness.common.errors import RouteHarnessError
from routeharness.common.files import write_text
from routeharness.common.provenance import git_commit, platform_info
from routeharness.embedding.encoders import EncoderIdentity

RESULT_SCHEMA = "routeharness.results/1"
#: routers added as reference rows to every task (the oracle is computed, not a router)
REFERENCE_ROUTERS = ("best-single", "random")
#: the key of the oracle's metrics in a task's reference: the best model of each test
#: prompt by its true outcome, at every lam, with the protocol's tie rule (an upper bound)
ORACLE = "oracle"
#: a recorded seed is in [0, SEED_LIMIT): ``evaluation.protocol.SEED_LIMIT``, which that
#: module keeps free of pydantic (tests/test_records.py checks that they agree)
SEED_LIMIT = 2 ** 32
#: how close two recorded sweeps' lams must be to be one sweep (relative): files made
#: with numpy's logspace differ between numpy versions in the last bits (~1e-16) and from
#: today's sweep (12 significant digits) by < 1e-12; a real change of the sweep is larger
LAMBDA_RTOL = 1e-9


class RecordFormatError(RouteHarnessError):
    """A result or submission file whose JSON does not have the expected shape."""


# --- values -----------------------------------------------------------------------------------
def _got(value: Any) -> str:
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return json.dumps(value)[:60]


def _in_range(low: float, high: float | None = None) -> Any:
    upper = "inf)" if high is None else f"{high:g}]"

    def check_range(value: float | None) -> float | None:
        if value is not None and not (math.isfinite(value) and low <= value and
                                      (high is None or value <= high)):
            raise ValueError(f"expected a finite number in [{low:g}, {upper} or null, "
                             f"got {_got(value)}")
        return value

    return check_range


def _bounded_schema(low: float, high: float | None = None) -> dict[str, Any]:
    number: dict[str, Any] = {"type": "number", "minimum": low}
    if high is not None:
        number["maximum"] = high
    return {"anyOf": [number, {"type": "null"}]}


def _seed(value: int) -> int:
    if not 0 <= value < SEED_LIMIT:
        raise ValueError(f"expected an integer seed in [0, 2**32), got {_got(value)}")
    return value


def _lambda(value: float | None) -> float:
    if value is None or math.isnan(value) or value < 0:
        raise ValueError(f'expected a number >= 0 or "inf", got {_got(value)}')
    return value


def _two(value: list[float | None]) -> list[float | None]:
    if len(value) != 2:
        raise ValueError(f"expected two numbers or null, got a list of {len(value)}")
    return value


def _two_ints(value: list[int]) -> list[int]:
    if len(value) != 2:
        raise ValueError(f"expected two counts [L, n], got a list of {len(value)}")
    return value


def _named(value: str) -> str:
    if not value.strip():
        raise ValueError(f"expected a non-empty name, got {_got(value)}")
    return value


#: a score x100: a finite number in [0, 100], or null
Score = Annotated[Number, AfterValidator(_in_range(0, 100)),
                  WithJsonSchema(_bounded_schema(0, 100))]
#: a cost (USD or normalised units): a finite number >= 0, or null
Cost = Annotated[Number, AfterValidator(_in_range(0)), WithJsonSchema(_bounded_schema(0))]
#: a count: an integer >= 0
Count = Annotated[int, Field(ge=0)]
#: a seed: an integer in [0, 2**32)
Seed = Annotated[int, AfterValidator(_seed),
                 WithJsonSchema({"type": "integer", "minimum": 0, "maximum": SEED_LIMIT - 1})]
#: a trade-off weight: a number >= 0, or "inf" (cost only)
Lambda = Annotated[Number, AfterValidator(_lambda),
                   WithJsonSchema({"anyOf": [{"type": "number", "minimum": 0},
                                             {"const": "inf"}]})]
#: a 95% interval: two numbers (either null when not available)
Interval = Annotated[list[Number], AfterValidator(_two),
                     WithJsonSchema({"type": "array", "minItems": 2, "maxItems": 2,
                                     "items": {"anyOf": [{"type": "number"},
                                                         {"type": "null"}]}})]
#: a router's name: a non-empty string
Name = Annotated[str, AfterValidator(_named), WithJsonSchema({"type": "string",
                                                              "minLength": 1})]


def _encode_data(value: Any) -> Any:
    """Free-form data as JSON: non-finite floats as ``"nan"``/``"inf"``/``"-inf"`` (the
    ``Number`` codec), numpy scalars as Python numbers, tuples as lists, keys as text."""
    if type(value).__module__ == "numpy" and getattr(value, "ndim", None) == 0:
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
    if isinstance(value, dict):
        return {str(k): _encode_data(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_encode_data(v) for v in value]
    return value


#: free-form JSON data a record carries as is (parameters, platform, a study's numbers),
#: written with the ``Number`` codec (a NaN in it is ``"nan"`` on disk, never a bare token)
JsonData = Annotated[Any, PlainSerializer(_encode_data, return_type=Any, when_used="json")]


def _as_read(model: Any, data: Any) -> Any:
    """``data`` (the dump of ``model``) with only the keys that were read or set: the
    fields in ``model_fields_set`` (by name or alias) and the unknown keys kept."""
    if not isinstance(data, dict):
        return data
    fields = type(model).model_fields
    keep = set(model.model_fields_set) | set(model.model_extra or {})
    keep |= {fields[name].alias for name in model.model_fields_set
             if name in fields and fields[name].alias}
    return {k: v for k, v in data.items() if k in keep}


def encoder_as_read(value: EncoderIdentity, handler: SerializerFunctionWrapHandler) -> Any:
    """An ``EncoderIdentity`` written with the keys it was read with (a verification
    record's encoder has no ``modalities``)."""
    return _as_read(value, handler(value))


class Record(OpenContract):
    """A part of a result file: unknown keys kept, and written back with the keys that
    were read (defaults are not added to a file that lacked them)."""

    model_config = ConfigDict(populate_by_name=True)

    @model_serializer(mode="wrap")
    def _written_as_read(self, handler: SerializerFunctionWrapHandler) -> Any:
        return _as_read(self, handler(self))

    def to_dict(self) -> dict[str, Any]:
        """The model as the JSON data its file holds (``"nan"``, ``"inf"`` as strings)."""
        return self.model_dump(mode="json", by_alias=True)


def replaced(model: Any, **changes: Any) -> Any:
    """A copy of ``model`` with ``changes``, validated again (its cross-field rules hold;
    a problem is a one-line ``RecordFormatError``); the keys it was read with are kept."""
    values = {name: getattr(model, name) for name in model.model_fields_set}
    return check(type(model), {**values, **(model.model_extra or {}), **changes},
                 error=RecordFormatError)


# --- curves and metrics ---------------------------------------------------------------------------
class Curve(Record):
    """Operating points: ``cost[i]`` (normalised: the most expensive model's mean = 1) and
    ``quality[i]`` (mean score in [0, 1]), for ``lambda[i]`` when recorded."""

    lambdas: list[Lambda] | None = Field(None, alias="lambda",
                                         description="the trade-off of each point")
    cost: list[Number] = Field(description="normalised cost of each point")
    quality: list[Number] = Field(description="mean score in [0, 1] of each point")

    @model_validator(mode="after")
    def _one_length(self) -> Curve:
        lengths = [len(self.cost), len(self.quality)] + \
            ([] if self.lambdas is None else [len(self.lambdas)])
        if not self.cost or len(set(lengths)) != 1:
            raise ValueError("cost, quality (and lambda) must be non-empty lists of one "
                             f"length, got {', '.join(map(str, lengths))}")
        return self


class Metrics(Record):
    """A run's numbers on the test split: AUC and quality x100, costs at lam = 0 (``cost_at_0``
    normalised, ``cost_at_0_usd`` in USD per prompt), the bootstrap interval of the AUC,
    RouterArena's score (at lam = 0 and at the sweep's best point) and APGR/CPT for two-model pools. Other keys are kept; each must be a number."""

    __pydantic_extra__: dict[str, Number]

    auc: Score = Field(description="area under the non-decreasing convex hull of the "
                                   "operating points, score x100, cost normalised to 1")
    quality_at_0: Score = Field(description="mean score x100 when routing for quality alone")
    cost_at_0: Cost = Field(None, description="normalised cost at lam = 0")
    cost_at_0_usd: Cost = Field(None, description="USD per prompt at lam = 0")
    cost_scale_usd: Cost = Field(None, description="the USD of one normalised cost unit")
    auc_ci95: Interval | None = Field(None, description="bootstrap 95% interval of the AUC")
    arena_score: Number = Field(None, description="RouterArena's score x100 at lam = 0: "
                                                  "accuracy and USD per 1,000 queries "
                                                  "combined (docs/metrics.md)")
    arena_score_max: Number = Field(None, description="RouterArena's score x100 at the "
                                                      "sweep's best point (the lam picked "
                                                      "on test: an upper bound)")
    apgr: Number = Field(None, description="average performance gap recovered (two models)")
    cpt50: Number = Field(None, description="call-performance threshold at 50% (two models)")
    cpt80: Number = Field(None, description="call-performance threshold at 80% (two models)")

    @model_validator(mode="after")
    def _costs_not_negative(self) -> Metrics:
        for key, value in (self.model_extra or {}).items():
            if key.startswith("cost"):
                _in_range(0)(value)
        return self

    def get(self, name: str, default: Any = None) -> Any:
        """The metric ``name`` (a field or a kept key), ``default`` when absent or null."""
        value = getattr(self, name, None) if name in type(self).model_fields else \
            (self.model_extra or {}).get(name)
        return default if value is None else value


#: how a run's choices are stored: the array's element type, by the task's number of models
CHOICE_DTYPES = {"uint8": 2 ** 8, "uint16": 2 ** 16}


class RoutedChoices(Record):
    """A run's routing of the scored test prompts, per prompt: an (L, n) array whose row
    ``i`` holds, for the curve's ``i``-th trade-off, the index (into the task's models) of
    the model chosen for each of the n scored test prompts, in the test split's order.
    What a paired bootstrap over prompts needs, and what the curve follows from on the
    task's data. Written compactly: the array as ``dtype`` (uint8 up to 256 models, else
    uint16), row-major, zlib-compressed, base64 (``of``, ``array``)."""

    shape: Annotated[list[Count], AfterValidator(_two_ints)] = Field(
        description="[L, n]: trade-offs x scored test prompts")
    dtype: Literal["uint8", "uint16"] = Field(description="the stored element type")
    data: str = Field(description="the array, row-major, zlib-compressed, base64")

    @model_validator(mode="after")
    def _decodes(self) -> RoutedChoices:
        self.array()  # a malformed array is a problem of the file, named by its key
        return self

    @classmethod
    def of(cls, choices: Any) -> RoutedChoices:
        """(L, n) model indices (>= 0) as stored."""
        import base64
        import zlib

        import numpy as np

        array = np.asarray(choices)
        if array.ndim != 2 or (array.size and (array.min() < 0 or not
                                               np.issubdtype(array.dtype, np.integer))):
            raise ValueError("choices must be an (L, n) array of model indices >= 0")
        top = int(array.max()) + 1 if array.size else 0
        dtype = next(name for name, limit in CHOICE_DTYPES.items() if top <= limit)
        packed = array.astype(np.dtype(dtype).newbyteorder("<"))
        return cls(shape=list(array.shape), dtype=dtype,
                   data=base64.b64encode(zlib.compress(packed.tobytes(), 9)).decode("ascii"))

    def array(self) -> Any:
        """The (L, n) int64 array of model indices."""
        import base64
        import binascii
        import zlib

        import numpy as np

        try:
            raw = zlib.decompress(base64.b64decode(self.data.encode("ascii"), validate=True))
        except (binascii.Error, zlib.error, UnicodeEncodeError, ValueError):
            raise ValueError("data: not zlib-compressed base64") from None
        dtype = np.dtype(self.dtype).newbyteorder("<")
        rows, cols = self.shape
        if len(raw) != rows * cols * dtype.itemsize:
            raise ValueError(f"data: holds {len(raw) // dtype.itemsize} values, the shape "
                             f"{self.shape} needs {rows * cols}")
        return np.frombuffer(raw, dtype=dtype).reshape(rows, cols).astype(np.int64)


# --- records ------------------------------------------------------------------------------------
class TuningRow(Record):
    """One configuration tuning tried and its tuning AUC (on the validation split, or
    the mean over held-out groups: the protocol's ``tune_on``); the kept configuration's
    row says ``chosen``, and ``tie`` when a tie on that AUC was broken (how)."""

    params: dict[str, JsonData] = Field(default_factory=dict)
    validation_auc: Number = None
    chosen: bool | None = Field(None, description="true on the configuration tuning kept")
    tie: str | None = Field(None, description="how a tie on the tuning AUC was broken "
                                              "(only on the kept configuration's row)")


class StreamSeeds(Record):
    """The 32-bit seeds one seed was split into (``protocol.seed_streams``)."""

    grid: int
    router: int
    bootstrap: int


class RunRecord(Record):
    """One router x task x seed: what ran (router, its plugin and version, the chosen
    ``params`` and the ``tuning`` table), on what (``n_test`` scored test rows,
    ``n_test_excluded`` left out for a missing score), and its numbers (``metrics``, AUC
    and quality x100, costs in USD or normalised units as named; ``per_group``; the
    ``curve`` of operating points and its ``frontier``). ``timings`` in seconds."""

    router: Name = Field(description="the router's label (its name, or NAME:PARAM=VALUE)")
    router_class: str = ""
    router_kind: str = Field("utility", description="utility or selection")
    plugin: str | None = None
    distribution: str | None = None
    version: str | None = None
    upper_bound: bool = Field(False, description="true only for an old file's oracle record")
    chosen_model: str | None = Field(None, description="the model a single-model router chose")
    task: str
    seed: Seed
    params: dict[str, JsonData] = Field(default_factory=dict,
                                        description="the fitted router's parameters")
    tuning: list[TuningRow] = Field(default_factory=list)
    n_test: Count | None = None
    n_test_excluded: Count = 0
    timings: dict[str, Number] = Field(default_factory=dict, description="seconds")
    metrics: Metrics
    per_group: dict[str, dict[str, Number]] = Field(default_factory=dict)
    curve: Curve
    frontier: Curve
    deterministic: bool | None = None
    fixed_params: dict[str, JsonData] | None = None
    seed_streams: StreamSeeds | None = None
    search: dict[str, JsonData] | None = Field(None, description="the search the router "
                                                                 "resolved (kNN's index)")
    choices: RoutedChoices | None = Field(
        None, description="the model chosen for each scored test prompt at each trade-off "
                          "(kept by `leaderboard run`, for the board's paired intervals)")

    @model_validator(mode="after")
    def _choices_fit_the_curve(self) -> RunRecord:
        if self.choices is not None:
            points, prompts = self.choices.shape
            if points != len(self.curve.cost):
                raise ValueError(f"choices: {points} trade-offs, its curve has "
                                 f"{len(self.curve.cost)} points")
            if self.n_test is not None and prompts != self.n_test:
                raise ValueError(f"choices: {prompts} prompts, n_test is {self.n_test}")
        return self

    @property
    def key(self) -> tuple[str, str, int]:
        return (self.router, self.task, self.seed)

    @classmethod
    def from_dict(cls, data: Any, where: str = "record") -> RunRecord:
        return check(cls, data, where, RecordFormatError)

    def same_numbers(self, other: RunRecord) -> bool:
        """Whether two records carry the same numbers (timings aside): one reference row
        found in two files of one matrix."""
        a, b = self.to_dict(), other.to_dict()
        a.pop("timings", None), b.pop("timings", None)
        # a metric one file has and the other lacks was added by a newer version (the
        # RouterArena score, issue 20): not a disagreement
        a_metrics, b_metrics = a.get("metrics", {}), b.get("metrics", {})
        for key in set(a_metrics) ^ set(b_metrics):
            a_metrics.pop(key, None), b_metrics.pop(key, None)
        return json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)


class OracleRow(Metrics):
    """The harness-computed upper bound of a task: each test prompt's best model by its
    true outcome; the metric keys of a record, with its curve and frontier."""

    curve: Curve
    frontier: Curve

    def numbers(self) -> dict[str, Any]:
        """What must agree between two files' oracle rows: everything but the bootstrap
        interval (it follows the file's first seed)."""
        data = self.to_dict()
        data.pop("auc_ci95", None)
        return data


class SingleModel(Record):
    """One candidate model alone on the test split: quality x100, normalised cost, USD."""

    model: str
    quality: Number
    cost: Number
    cost_usd: Number = None
    arena_score: Number = Field(None, description="RouterArena's score x100 of the model "
                                                  "alone (docs/metrics.md)")


class EmbeddingsUsed(Record):
    """How a task's embeddings were obtained: prompts encoded, loaded from the cache."""

    encoded: Count
    cached: Count
    notes: list[str] = Field(default_factory=list)


class TaskReference(Record):
    """The per-task facts every table shows (``scoring.task_reference``): version,
    revision, data fingerprint, split sizes, models, the single models and their
    frontier's AUC, and (when the harness computed it) the oracle's reference row."""

    version: Count
    revision: str | None = None
    source: JsonData = None
    fingerprint: str = Field(description="sha256 of the task's data")
    sizes: dict[str, Count] = Field(description="rows per split")
    models: list[str]
    groups: JsonData = None
    cost_scale_usd: Number = None
    single_models: list[SingleModel]
    single_model_frontier_auc: Number
    oracle: OracleRow | None = None
    embeddings: EmbeddingsUsed | None = None


# --- the protocol -------------------------------------------------------------------------------
def same_lambdas(a: Sequence[float] | None, b: Sequence[float] | None) -> bool:
    """Whether two recorded sweeps are one sweep: the same length, each lam equal within
    ``LAMBDA_RTOL`` (relative), infinity only with infinity. The one comparison of
    recorded lams: board validation, merging result sets and ``--resume`` use it."""
    if a is None or b is None:
        return a is b
    return len(a) == len(b) and all(
        x == y or (math.isfinite(x) and math.isfinite(y)
                   and math.isclose(x, y, rel_tol=LAMBDA_RTOL, abs_tol=0.0))
        for x, y in zip(a, b))


class ProtocolRecord(Record):
    """The protocol as a result file records it (``evaluation.protocol.Protocol``):
    everything that fixes the numbers. Older files may lack keys; unknown keys are kept."""

    lambdas: list[Lambda] | None = Field(None, description="the trade-off sweep")
    seeds: list[Seed]
    tune: bool | None = None
    max_configs: int | None = None
    n_bootstrap: int | None = None
    tie_break: str | None = None
    fit_on: str | None = None
    tune_on: str | None = None
    evaluate_on: str | None = None
    cost_normalisation: str | None = None
    missing_scores: str | None = None
    seed_streams: str | None = None
    oracle: str | None = None
    version: int | None = None

    def value(self, key: str) -> Any:
        """The recorded value of ``key`` (a field or a kept key); None when absent."""
        if key in type(self).model_fields:
            return getattr(self, key)
        return (self.model_extra or {}).get(key)

    def keys(self) -> list[str]:
        """The keys recorded (fields read or set, then the kept ones)."""
        return [k for k in type(self).model_fields if k in self.model_fields_set] + \
            list(self.model_extra or {})

    def differences(self, other: ProtocolRecord) -> list[str]:
        """The keys whose values differ between two recorded protocols, seeds aside (an
        absent key is null); lams compared by ``same_lambdas``."""
        keys = dict.fromkeys(self.keys() + other.keys())
        keys.pop("seeds", None)
        return sorted(k for k in keys if not (
            same_lambdas(self.lambdas, other.lambdas) if k == "lambdas"
            else self.value(k) == other.value(k)))


# --- result sets ------------------------------------------------------------------------------------
class MergedFrom(Record):
    """One file a merged result set was made from, and its provenance."""

    path: str
    created: str | None = None
    git_commit: str | None = None
    command: JsonData = None


class ResultSet(Record):
    """A result file (``routeharness.results/1``): a run's records with everything that
    fixes their numbers: the ``protocol`` and ``encoder``, per task its ``TaskReference``,
    and provenance (versions, commit, time, command, platform; ``merged_from`` for merged
    files). At least one task and one record; each record's task is one of ``tasks``, and
    a router x task x seed is recorded once."""

    schema_: str = Field(RESULT_SCHEMA, alias="schema", description="the file format")
    routeharness_version: str | None = None
    git_commit: str | None = None
    created: str | None = Field(None, description="when the run started (ISO 8601, UTC)")
    command: JsonData = Field(None, description="the command line that made the file")
    platform: dict[str, JsonData] = Field(default_factory=dict)
    encoder: EncoderIdentity = Field(description="the encoder every record used")
    protocol: ProtocolRecord = Field(description="everything that fixes the numbers")
    tasks: dict[str, TaskReference] = Field(min_length=1, description="per task its facts "
                                                                      "and reference rows")
    records: list[RunRecord] = Field(min_length=1, description="one per router x task x "
                                                               "seed")
    merged_from: list[MergedFrom] | None = Field(None, description="the files a merged "
                                                                   "result set came from")

    _encoder = field_serializer("encoder", mode="wrap")(encoder_as_read)

    @model_validator(mode="after")
    def _records_of_known_tasks_once(self) -> ResultSet:
        first: dict[tuple[str, str, int], int] = {}
        for i, record in enumerate(self.records):
            if record.task not in self.tasks:
                raise ValueError(f"records[{i}].task: {record.task!r} is not one of the "
                                 f"file's tasks {sorted(self.tasks)}")
            if first.setdefault(record.key, i) != i:
                raise ValueError(f"records[{first[record.key]}], [{i}]: the same router x "
                                 f"task x seed {list(record.key)!r} twice")
        return self

    @classmethod
    def new(cls, protocol: ProtocolRecord, encoder: EncoderIdentity) -> ResultSet:
        """The provenance of a run of ``protocol`` with ``encoder`` starting now, with no
        task or record yet (``with_runs`` adds them; only then is it a result set)."""
        import datetime as _dt
        import sys

        from routeharness import __version__

        return cls.model_construct(
            schema_=RESULT_SCHEMA, routeharness_version=__version__, git_commit=git_commit(),
            created=_dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            command=list(sys.argv), platform=platform_info(), encoder=encoder,
            protocol=protocol, tasks={}, records=[])

    def with_runs(self, tasks: dict[str, TaskReference],
                  records: Sequence[RunRecord]) -> ResultSet:
        """This run's provenance with ``tasks`` and ``records``, validated."""
        return replaced(self, tasks=dict(tasks), records=list(records))

    @classmethod
    def from_dict(cls, data: Any, where: str = "") -> ResultSet:
        """A result file's content; the first problem one line naming ``where`` and the key."""
        return check(cls, data, where, RecordFormatError)

    @classmethod
    def from_json(cls, path: str | Path) -> ResultSet:
        return read_json(path, cls, "result file", schema=RESULT_SCHEMA,
                         error=RecordFormatError)

    def to_json(self) -> str:
        return dump_json(self)

    def save(self, path: str | Path) -> Path:
        """Written atomically; a path that cannot be written is one line."""
        return write_text(self.to_json(), path, "result file")

    @property
    def seeds(self) -> list[int]:
        return list(self.protocol.seeds)

    def records_of(self, task: str, router: str | None = None) -> list[RunRecord]:
        return [r for r in self.records
                if r.task == task and (router is None or r.router == router)]

    def routers(self, task: str | None = None) -> list[str]:
        """Router names in record order (each once), of one task or of all."""
        return list(dict.fromkeys(r.router for r in self.records
                                  if task is None or r.task == task))

    def incompatibilities(self, other: ResultSet) -> list[str]:
        """What keeps two result sets from being pooled: the protocol keys that differ
        (seeds aside; ``ProtocolRecord.differences``), and "encoder" when the encoder's
        identity or revision differs."""
        return self.protocol.differences(other.protocol) + \
            ([] if self.encoder.same_vectors(other.encoder) else ["encoder"])

