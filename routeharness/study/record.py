"""A study's result file (``routeharness.study/1``): ``StudyResult``, a contract model like
``routeharness.results.records.ResultSet`` (read with ``load``, written atomically with
``save``, NaN and infinity as strings) with its provenance.

``results`` holds the study's numbers (its own structure, documented by each study
module); ``runs`` the runs (``StudyRun``: the compact part of a ``RunRecord``) each with
the ``condition`` it ran under (a fraction, an encoder, a held-out group, a parameter
value)."""

from __future__ import annotations

import datetime as _dt
import sys
from pathlib import Path
from typing import Any

from pydantic import ConfigDict, SerializerFunctionWrapHandler, model_serializer

from routeharness.common.contract import Field, Number, OpenContract, check, dump_json, read_json
from routeharness.common.files import write_text
from routeharness.common.provenance import git_commit, platform_info
from routeharness.embedding.encoders import EncoderIdentity
from routeharness.results.records import (
    Count,
    JsonData,
    Metrics,
    Name,
    ProtocolRecord,
    Record,
    RecordFormatError,
    RunRecord,
    Seed,
)

STUDY_SCHEMA = "routeharness.study/1"


class StudyTask(Record):
    """A task as a study ran it: data fingerprint, card version, revision, source, split
    sizes, models and groups."""

    fingerprint: str
    version: int | None = None
    revision: str | None = None
    source: JsonData = None
    sizes: dict[str, Count] = Field(default_factory=dict)
    models: list[str] = Field(default_factory=list)
    groups: JsonData = None
    #: 1 - the cheapest model's mean cost over the dearest's on the test split (what the
    #: narrow-cost flag reads); absent from files written before issue 19
    cost_spread: Number = Field(None, description="1 - the cheapest model's mean cost / "
                                "the dearest model's, on the test split")


class StudyRun(Record):
    """One run of a study, as its file keeps it: the record's identity, parameters,
    metrics and timings (curves and tuning tables stay out), and the ``condition`` it ran
    under."""

    router: Name
    task: str
    seed: Seed
    params: dict[str, JsonData] = Field(default_factory=dict)
    fixed_params: dict[str, JsonData] | None = None
    metrics: Metrics
    timings: dict[str, Number] = Field(default_factory=dict)
    n_test: Count | None = None
    plugin: str | None = None
    distribution: str | None = None
    version: str | None = None
    condition: dict[str, JsonData] = Field(default_factory=dict)

    @classmethod
    def of(cls, record: RunRecord, **condition: Any) -> StudyRun:
        """The part of ``record`` a study file keeps, and the condition it ran under."""
        kept = {k: getattr(record, k) for k in cls.model_fields
                if k != "condition" and k in record.model_fields_set}
        return cls(**kept, condition=condition)


class StudyResult(OpenContract):
    """A study's file: what ran (``params``, ``protocol``, ``encoders``, ``tasks`` with
    their fingerprints), its numbers (``results``) and runs, and where it ran. Its lists
    and mappings grow while the study runs (``add_encoder``, ``add_task``, ``runs``,
    ``results``)."""

    model_config = ConfigDict(populate_by_name=True)

    schema_: str = Field(STUDY_SCHEMA, alias="schema")
    study: str
    params: dict[str, JsonData]
    protocol: ProtocolRecord | None = None
    encoders: list[EncoderIdentity] = Field(default_factory=list)
    tasks: dict[str, StudyTask] = Field(default_factory=dict)
    results: dict[str, JsonData] = Field(description="the study's numbers, per task")
    runs: list[StudyRun] = Field(default_factory=list)
    routeharness_version: str | None = None
    git_commit: str | None = None
    created: str | None = None
    command: JsonData = None
    platform: dict[str, JsonData] = Field(default_factory=dict)
    #: wall time of the study, seconds (set by the caller that timed it)
    wall_seconds: Number = None
    #: resamples of the paired comparisons (``StudySettings.paired_bootstrap``), when the
    #: caller recorded it (``study paper`` does: ``--resume`` compares it)
    paired_bootstrap: int | None = None

    @model_serializer(mode="wrap")
    def _without_unrecorded(self, handler: SerializerFunctionWrapHandler) -> Any:
        """A file without ``paired_bootstrap`` (every study file before it was recorded)
        is written back without it."""
        data = handler(self)
        if isinstance(data, dict) and data.get("paired_bootstrap") is None:
            data.pop("paired_bootstrap", None)
        return data

    @classmethod
    def new(cls, study: str, params: dict[str, Any], protocol: Any = None) -> StudyResult:
        """An empty result of ``study`` run with ``params`` under ``protocol`` (an
        ``evaluation.protocol.Protocol``), with provenance."""
        from routeharness import __version__

        return cls(study=study, params=params,
                   protocol=protocol.recorded() if protocol is not None else None,
                   results={}, routeharness_version=__version__, git_commit=git_commit(),
                   created=_dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
                   command=list(sys.argv), platform=platform_info())

    def add_encoder(self, encoder: Any) -> None:
        """Record an encoder's identity (once)."""
        entry = EncoderIdentity.of(encoder)
        if entry not in self.encoders:
            self.encoders.append(entry)

    def add_task(self, task: Any) -> None:
        """Record a task's identity: fingerprint, sizes, source, version, models."""
        from routeharness.evaluation.metrics import cost_spread

        test = task.splits["test"]
        spread = cost_spread(test.subset(test.complete_rows()).costs) if test.n else None
        self.tasks[task.name] = StudyTask(
            fingerprint=task.fingerprint(), version=task.version, revision=task.revision,
            source=task.source, sizes={split: data.n for split, data in task.splits.items()},
            models=[m.name for m in task.models], groups=task.groups, cost_spread=spread)

    def timed(self, seconds: float) -> StudyResult:
        """This result with its wall time."""
        return self.model_copy(update={"wall_seconds": seconds})

    def to_dict(self) -> dict[str, Any]:
        """The study file's JSON data."""
        return self.model_dump(mode="json", by_alias=True)

    def save(self, path: str | Path) -> Path:
        """Written atomically (a failure leaves no half-written file)."""
        return write_text(dump_json(self), path, "study result")

    @classmethod
    def from_dict(cls, data: Any, where: str = "") -> StudyResult:
        return check(cls, data, where, RecordFormatError)

    @classmethod
    def load(cls, path: str | Path) -> StudyResult:
        """A study file, checked (schema tag and shape); one line otherwise."""
        return read_json(path, cls, "study result", schema=STUDY_SCHEMA,
                         error=RecordFormatError)
