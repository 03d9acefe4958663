"""Typed result records that own their JSON: ``RunRecord`` (one router x task x seed),
``TaskReference`` (a task's facts and reference rows) and ``ResultSet`` (a run's records
with provenance); leaderboard submissions build on them (``routeharness.boards.definition``). The
value codec, the readers that name a bad value's JSON path, and atomic writes are
``routeharness.common.jsonfiles``. Unknown keys are kept and written back unchanged."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from routeharness.common.jsonfiles import (
    RecordFormatError,
    _extra,
    anything,
    encode,
    flag,
    get,
    in_range,
    integer,
    items,
    lambdas,
    mapping,
    number,
    numbers,
    optional_text,
    read_as,
    seed,
    shape_error,
    text,
    write_json,
)
from routeharness.common.provenance import git_commit, platform_info

RESULT_SCHEMA = "routeharness.results/1"
#: routers added as reference rows to every task (the oracle is computed, not a router)
REFERENCE_ROUTERS = ("best-single", "random")
#: the key of the oracle's metrics in a task's reference: the best model of each test
#: prompt by its true outcome, at every lam, with the protocol's tie rule (an upper bound)
ORACLE = "oracle"


# --- curves and metrics ---------------------------------------------------------------------------
@dataclass(frozen=True)
class Curve:
    """Operating points: ``cost[i]`` (normalised: the most expensive model's mean = 1) and
    ``quality[i]`` (mean score in [0, 1]), for ``lambdas[i]`` when recorded."""

    cost: tuple[float | None, ...]
    quality: tuple[float | None, ...]
    lambdas: tuple[float | None, ...] | None = None

    @classmethod
    def from_dict(cls, data: Any, path: str) -> Curve:
        data = mapping(data, path)
        cost, quality = get(data, "cost", path, numbers), get(data, "quality", path, numbers)
        lambdas = get(data, "lambda", path, numbers, None)
        if len(cost) != len(quality) or not cost or (lambdas is not None and
                                                     len(lambdas) != len(cost)):
            raise RecordFormatError(f"{path}: cost, quality (and lambda) must be non-empty "
                                    f"lists of one length, got {len(cost)}, {len(quality)}"
                                    + (f", {len(lambdas)}" if lambdas is not None else ""))
        return cls(cost, quality, lambdas)

    def to_dict(self) -> dict[str, Any]:
        out = {} if self.lambdas is None else {"lambda": list(self.lambdas)}
        return {**out, "cost": list(self.cost), "quality": list(self.quality)}


def read_metrics(data: Any, path: str) -> dict[str, Any]:
    """A metrics mapping: every value a number (or null), ``auc_ci95`` two numbers (or
    null); ``auc`` and ``quality_at_0`` are required, in [0, 100]; costs finite, >= 0."""
    data = mapping(data, path)
    out: dict[str, Any] = {}
    for key, value in data.items():
        if key == "auc_ci95":
            ci = None if value is None else numbers(value, f"{path}.{key}")
            if ci is not None and len(ci) != 2:
                raise shape_error(f"{path}.{key}", "two numbers", value)
            out[key] = ci
        elif key in ("auc", "quality_at_0") or key.startswith("cost"):
            out[key] = in_range(value, f"{path}.{key}", 0, None if key[0] == "c" else 100)
        else:
            out[key] = number(value, f"{path}.{key}")
    for key in ("auc", "quality_at_0"):
        get(data, key, path, anything)
    return out


def _metrics_dict(metrics: dict[str, Any]) -> dict[str, Any]:
    return {k: (list(v) if isinstance(v, tuple) else v) for k, v in metrics.items()}


# --- records ------------------------------------------------------------------------------------
_RECORD_KEYS = ("router", "router_class", "router_kind", "plugin", "distribution", "version",
                "upper_bound", "chosen_model", "task", "seed", "params", "tuning", "n_test",
                "n_test_excluded", "timings", "metrics", "per_group", "curve", "frontier")


@dataclass(frozen=True)
class RunRecord:
    """One router x task x seed: what ran (router, its plugin and version, the chosen
    ``params`` and the ``tuning`` table), on what (``n_test`` scored test rows,
    ``n_test_excluded`` left out for a missing score), and its numbers (``metrics``, AUC
    and quality x100, costs in USD or normalised units as named; ``per_group``; the
    ``curve`` of operating points and its ``frontier``). ``timings`` in seconds."""

    router: str
    task: str
    seed: int
    metrics: dict[str, Any]
    curve: Curve
    frontier: Curve
    router_class: str = ""
    router_kind: str = "utility"
    plugin: str | None = None
    distribution: str | None = None
    version: str | None = None
    upper_bound: bool = False
    chosen_model: str | None = None
    params: dict[str, Any] = field(default_factory=dict)
    tuning: list[dict[str, Any]] = field(default_factory=list)
    n_test: int | None = None
    n_test_excluded: int = 0
    timings: dict[str, float | None] = field(default_factory=dict)
    per_group: dict[str, dict[str, float | None]] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def key(self) -> tuple[str, str, int]:
        return (self.router, self.task, self.seed)

    @classmethod
    def from_dict(cls, data: Any, path: str = "record") -> RunRecord:
        """What ``evaluate.run_one`` returns, or a record read from a file."""
        data = mapping(data, path)
        router = get(data, "router", path, text)
        if not router.strip():
            raise shape_error(f"{path}.router", "a non-empty name", router)
        tuning = get(data, "tuning", path, items, [])
        for i, row in enumerate(tuning):
            row = mapping(row, f"{path}.tuning[{i}]")
            get(row, "params", f"{path}.tuning[{i}]", mapping, {})
            get(row, "validation_auc", f"{path}.tuning[{i}]", number, None)
        timings = {k: number(v, f"{path}.timings.{k}")
                   for k, v in get(data, "timings", path, mapping, {}).items()}
        per_group = {}
        for group, values in get(data, "per_group", path, mapping, {}).items():
            values = mapping(values, f"{path}.per_group.{group}")
            per_group[group] = {k: number(v, f"{path}.per_group.{group}.{k}")
                                for k, v in values.items()}
        return cls(
            router=router, task=get(data, "task", path, text),
            seed=get(data, "seed", path, seed),
            metrics=get(data, "metrics", path, read_metrics),
            curve=Curve.from_dict(get(data, "curve", path, anything), f"{path}.curve"),
            frontier=Curve.from_dict(get(data, "frontier", path, anything), f"{path}.frontier"),
            router_class=get(data, "router_class", path, text, ""),
            router_kind=get(data, "router_kind", path, text, "utility"),
            plugin=get(data, "plugin", path, optional_text, None),
            distribution=get(data, "distribution", path, optional_text, None),
            version=get(data, "version", path, optional_text, None),
            upper_bound=get(data, "upper_bound", path, flag, False),
            chosen_model=get(data, "chosen_model", path, optional_text, None),
            params=get(data, "params", path, mapping, {}), tuning=tuning,
            n_test=get(data, "n_test", path, integer, None),
            n_test_excluded=get(data, "n_test_excluded", path, integer, 0),
            timings=timings, per_group=per_group, extra=_extra(data, _RECORD_KEYS))

    def to_dict(self) -> dict[str, Any]:
        """The record as (decoded) data, in the key order evaluate writes."""
        out = {"router": self.router, "router_class": self.router_class,
               "router_kind": self.router_kind, "plugin": self.plugin,
               "distribution": self.distribution, "version": self.version,
               "upper_bound": self.upper_bound, "chosen_model": self.chosen_model,
               "task": self.task, "seed": self.seed, "params": self.params,
               "tuning": self.tuning, "n_test": self.n_test,
               "n_test_excluded": self.n_test_excluded, "timings": self.timings,
               "metrics": _metrics_dict(self.metrics), "per_group": self.per_group,
               "curve": self.curve.to_dict(), "frontier": self.frontier.to_dict()}
        return {**out, **self.extra}

    def same_numbers(self, other: RunRecord) -> bool:
        """Whether two records carry the same numbers (timings aside): one reference row
        found in two files of one matrix."""
        a, b = self.to_dict(), other.to_dict()
        a.pop("timings"), b.pop("timings")
        return json.dumps(encode(a), sort_keys=True) == json.dumps(encode(b), sort_keys=True)


@dataclass(frozen=True)
class OracleRow:
    """The harness-computed upper bound of a task: each test prompt's best model by its
    true outcome; the same metric keys as a record, with its curve and frontier."""

    metrics: dict[str, Any]
    curve: Curve
    frontier: Curve

    @classmethod
    def from_dict(cls, data: Any, path: str) -> OracleRow:
        data = mapping(data, path)
        metrics = read_metrics({k: v for k, v in data.items() if k not in ("curve", "frontier")},
                               path)
        return cls(metrics, Curve.from_dict(get(data, "curve", path, anything), f"{path}.curve"),
                   Curve.from_dict(get(data, "frontier", path, anything), f"{path}.frontier"))

    def to_dict(self) -> dict[str, Any]:
        return {**_metrics_dict(self.metrics), "curve": self.curve.to_dict(),
                "frontier": self.frontier.to_dict()}


_REFERENCE_KEYS = ("version", "revision", "source", "fingerprint", "sizes", "models", "groups",
                   "cost_scale_usd", "single_models", "single_model_frontier_auc", ORACLE)


@dataclass(frozen=True)
class SingleModel:
    """One candidate model alone on the test split: quality x100, normalised cost, USD."""

    model: str
    quality: float | None
    cost: float | None
    cost_usd: float | None = None


@dataclass(frozen=True)
class TaskReference:
    """The per-task facts every table shows (see ``evaluate.task_reference``): version,
    revision, data fingerprint, split sizes, models, the single models and their
    frontier's AUC, and (when the harness computed it) the oracle's reference row."""

    version: int
    fingerprint: str
    sizes: dict[str, int]
    models: tuple[str, ...]
    single_models: tuple[SingleModel, ...]
    single_model_frontier_auc: float | None
    revision: str | None = None
    source: Any = None
    groups: Any = None
    cost_scale_usd: float | None = None
    oracle: OracleRow | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, data: Any, path: str = "reference") -> TaskReference:
        data = mapping(data, path)
        sizes = {k: integer(v, f"{path}.sizes.{k}")
                 for k, v in get(data, "sizes", path, mapping).items()}
        models = tuple(text(m, f"{path}.models[{i}]")
                       for i, m in enumerate(get(data, "models", path, items)))
        singles = []
        for i, row in enumerate(get(data, "single_models", path, items)):
            where = f"{path}.single_models[{i}]"
            row = mapping(row, where)
            singles.append(SingleModel(get(row, "model", where, text),
                                       get(row, "quality", where, number),
                                       get(row, "cost", where, number),
                                       get(row, "cost_usd", where, number, None)))
        oracle = get(data, ORACLE, path, anything, None)
        return cls(
            version=get(data, "version", path, integer),
            fingerprint=get(data, "fingerprint", path, text), sizes=sizes, models=models,
            single_models=tuple(singles),
            single_model_frontier_auc=get(data, "single_model_frontier_auc", path, number),
            revision=get(data, "revision", path, optional_text, None),
            source=get(data, "source", path, anything, None),
            groups=get(data, "groups", path, anything, None),
            cost_scale_usd=get(data, "cost_scale_usd", path, number, None),
            oracle=None if oracle is None else OracleRow.from_dict(oracle, f"{path}.oracle"),
            extra=_extra(data, _REFERENCE_KEYS))

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "version": self.version, "revision": self.revision, "source": self.source,
            "fingerprint": self.fingerprint, "sizes": self.sizes, "models": list(self.models),
            "groups": self.groups, "cost_scale_usd": self.cost_scale_usd,
            "single_models": [{"model": s.model, "quality": s.quality, "cost": s.cost,
                               **({} if s.cost_usd is None else {"cost_usd": s.cost_usd})}
                              for s in self.single_models],
            "single_model_frontier_auc": self.single_model_frontier_auc}
        if self.oracle is not None:
            out[ORACLE] = self.oracle.to_dict()
        return {**out, **self.extra}


# --- result sets ------------------------------------------------------------------------------------
_RESULT_KEYS = ("schema", "routeharness_version", "git_commit", "created", "command",
                "platform", "encoder", "protocol", "tasks", "records", "merged_from")


@dataclass(frozen=True)
class ResultSet:
    """A run's records with everything that fixes their numbers: the ``protocol`` and
    ``encoder`` (as recorded, JSON data), per task its ``TaskReference``, and provenance
    (versions, commit, time, command, platform; ``merged_from`` for merged files)."""

    encoder: dict[str, Any]
    protocol: dict[str, Any]
    tasks: dict[str, TaskReference]
    records: tuple[RunRecord, ...]
    routeharness_version: str | None = None
    git_commit: str | None = None
    created: str | None = None
    command: Any = None
    platform: dict[str, Any] = field(default_factory=dict)
    merged_from: tuple[dict[str, Any], ...] | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    schema: str = RESULT_SCHEMA

    @classmethod
    def new(cls, protocol: Any, encoder: Any) -> ResultSet:
        """An empty result set for a run of ``protocol`` with ``encoder``, with provenance."""
        import datetime as _dt
        import sys

        from routeharness import __version__

        return cls(encoder={"name": encoder.name, "identity": encoder.identity,
                            "revision": encoder.revision,
                            "modalities": sorted(encoder.modalities)},
                   protocol=protocol.to_dict(), tasks={}, records=(),
                   routeharness_version=__version__, git_commit=git_commit(),
                   created=_dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
                   command=list(sys.argv), platform=platform_info())

    @classmethod
    def from_dict(cls, data: Any, path: str = "") -> ResultSet:
        """What ``evaluate.evaluate`` returns, or a result file's content. A result set
        with no tasks or no records is an error: there is nothing to show."""
        data = mapping(data, path or "result set")
        prefix = f"{path}." if path else ""
        tasks = {name: TaskReference.from_dict(ref, f"{prefix}tasks.{name}")
                 for name, ref in get(data, "tasks", path, mapping).items()}
        records = tuple(RunRecord.from_dict(r, f"{prefix}records[{i}]")
                        for i, r in enumerate(get(data, "records", path, items)))
        if not tasks or not records:
            raise RecordFormatError(f"{prefix}{'tasks' if not tasks else 'records'}: empty; "
                                    "a result set holds at least one task and one record")
        first: dict[tuple[str, str, int], int] = {}
        for i, record in enumerate(records):
            if record.task not in tasks:
                raise RecordFormatError(f"{prefix}records[{i}].task: {record.task!r} is not "
                                        f"one of the file's tasks {sorted(tasks)}")
            if first.setdefault(record.key, i) != i:
                raise RecordFormatError(f"{prefix}records[{first[record.key]}], [{i}]:"
                                        " the same router x task x seed "
                                        f"{list(record.key)!r} twice")
        encoder = get(data, "encoder", path, mapping)
        get(encoder, "name", f"{prefix}encoder", text)
        protocol = get(data, "protocol", path, mapping)
        for i, value in enumerate(get(protocol, "seeds", f"{prefix}protocol", items)):
            seed(value, f"{prefix}protocol.seeds[{i}]")
        get(protocol, "lambdas", f"{prefix}protocol", lambdas, None)
        merged = get(data, "merged_from", path, items, None)
        return cls(encoder=encoder, protocol=protocol, tasks=tasks, records=records,
                   routeharness_version=get(data, "routeharness_version", path, optional_text,
                                            None),
                   git_commit=get(data, "git_commit", path, optional_text, None),
                   created=get(data, "created", path, optional_text, None),
                   command=data.get("command"),
                   platform=get(data, "platform", path, mapping, {}),
                   merged_from=None if merged is None else tuple(merged),
                   extra=_extra(data, _RESULT_KEYS),
                   schema=get(data, "schema", path, text, RESULT_SCHEMA))

    @classmethod
    def from_json(cls, path: str | Path) -> ResultSet:
        return read_as(path, cls.from_dict, "result file", RESULT_SCHEMA)

    def to_dict(self) -> dict[str, Any]:
        out = {"schema": self.schema, "routeharness_version": self.routeharness_version,
               "git_commit": self.git_commit, "created": self.created,
               "command": self.command, "platform": self.platform, "encoder": self.encoder,
               "protocol": self.protocol,
               "tasks": {name: ref.to_dict() for name, ref in self.tasks.items()},
               "records": [r.to_dict() for r in self.records]}
        if self.merged_from is not None:
            out["merged_from"] = list(self.merged_from)
        return {**out, **self.extra}

    def to_json(self) -> str:
        return json.dumps(encode(self.to_dict()), indent=1, allow_nan=False)

    def save(self, path: str | Path) -> Path:
        return write_json(self.to_dict(), path, "result file")

    @property
    def seeds(self) -> list[int]:
        return list(self.protocol.get("seeds", []))

    def records_of(self, task: str, router: str | None = None) -> list[RunRecord]:
        return [r for r in self.records
                if r.task == task and (router is None or r.router == router)]

    def routers(self, task: str | None = None) -> list[str]:
        """Router names in record order (each once), of one task or of all."""
        return list(dict.fromkeys(r.router for r in self.records
                                  if task is None or r.task == task))

    def incompatibilities(self, other: ResultSet) -> list[str]:
        """What keeps two result sets from being pooled (``incompatibilities``)."""
        return incompatibilities(self.protocol, self.encoder, other.protocol, other.encoder)


def incompatibilities(protocol_a: dict[str, Any], encoder_a: dict[str, Any],
                      protocol_b: dict[str, Any], encoder_b: dict[str, Any]) -> list[str]:
    """The protocol fields that differ (seeds aside), and "encoder" when the encoder's
    identity or revision differs."""
    protocols = [{k: v for k, v in p.items() if k != "seeds"} for p in (protocol_a, protocol_b)]
    differ = sorted(k for k in set(protocols[0]) | set(protocols[1])
                    if protocols[0].get(k) != protocols[1].get(k))
    encoders = [(e.get("identity"), e.get("revision")) for e in (encoder_a, encoder_b)]
    return differ + (["encoder"] if encoders[0] != encoders[1] else [])
