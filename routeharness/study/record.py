"""A study's result file: ``StudyResult`` owns its JSON (schema tag, NaN and infinity as
strings, atomic writes) and its provenance, like ``routeharness.results.records.ResultSet``.

``results`` holds the study's numbers (its own structure, documented by each study
module); ``runs`` the run records (``evaluate.run_one``'s) each with the ``condition`` it
ran under (a fraction, an encoder, a held-out group, a parameter value)."""

from __future__ import annotations

import datetime as _dt
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from routeharness.common.jsonfiles import (
    anything,
    get,
    items,
    mapping,
    number,
    optional_text,
    read_as,
    text,
    write_json,
)
from routeharness.common.provenance import git_commit, platform_info

STUDY_SCHEMA = "routeharness.study/1"


@dataclass
class StudyResult:
    """One study's output: what ran (``params``, ``protocol``, ``encoders``, ``tasks``
    with their fingerprints), its numbers and records, and where it ran."""

    study: str
    params: dict[str, Any]
    protocol: dict[str, Any] | None = None
    encoders: list[dict[str, Any]] = field(default_factory=list)
    tasks: dict[str, dict[str, Any]] = field(default_factory=dict)
    results: dict[str, Any] = field(default_factory=dict)
    runs: list[dict[str, Any]] = field(default_factory=list)
    routeharness_version: str | None = None
    git_commit: str | None = None
    created: str | None = None
    command: Any = None
    platform: dict[str, Any] = field(default_factory=dict)
    #: wall time of the study, seconds (set by the caller that timed it)
    wall_seconds: float | None = None
    schema: str = STUDY_SCHEMA

    @classmethod
    def new(cls, study: str, params: dict[str, Any], protocol: Any = None) -> StudyResult:
        """An empty result of ``study`` run with ``params``, with provenance."""
        from routeharness import __version__

        return cls(study=study, params=params,
                   protocol=protocol.to_dict() if protocol is not None else None,
                   routeharness_version=__version__, git_commit=git_commit(),
                   created=_dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
                   command=list(sys.argv), platform=platform_info())

    def add_encoder(self, encoder: Any) -> None:
        """Record an encoder's identity (once)."""
        entry = {"name": encoder.name, "identity": encoder.identity,
                 "revision": encoder.revision, "modalities": sorted(encoder.modalities)}
        if entry not in self.encoders:
            self.encoders.append(entry)

    def add_task(self, task: Any) -> None:
        """Record a task's identity: fingerprint, sizes, source, version, models."""
        self.tasks[task.name] = {
            "fingerprint": task.fingerprint(), "version": task.version,
            "revision": task.revision, "source": task.source,
            "sizes": {split: data.n for split, data in task.splits.items()},
            "models": [m.name for m in task.models], "groups": task.groups}

    def to_dict(self) -> dict[str, Any]:
        return {"schema": self.schema, "study": self.study, "params": self.params,
                "protocol": self.protocol, "encoders": self.encoders, "tasks": self.tasks,
                "results": self.results, "runs": self.runs,
                "routeharness_version": self.routeharness_version,
                "git_commit": self.git_commit, "created": self.created,
                "command": self.command, "platform": self.platform,
                "wall_seconds": self.wall_seconds}

    def save(self, path: str | Path) -> Path:
        """Written atomically (a failure leaves no half-written file)."""
        return write_json(self.to_dict(), path, "study result")

    @classmethod
    def from_dict(cls, data: Any, path: str = "") -> StudyResult:
        data = mapping(data, path or "study result")
        return cls(study=get(data, "study", path, text),
                   params=get(data, "params", path, mapping),
                   protocol=get(data, "protocol", path, anything, None),
                   encoders=get(data, "encoders", path, items, []),
                   tasks=get(data, "tasks", path, mapping, {}),
                   results=get(data, "results", path, mapping),
                   runs=get(data, "runs", path, items, []),
                   routeharness_version=get(data, "routeharness_version", path,
                                            optional_text, None),
                   git_commit=get(data, "git_commit", path, optional_text, None),
                   created=get(data, "created", path, optional_text, None),
                   command=get(data, "command", path, anything, None),
                   platform=get(data, "platform", path, mapping, {}),
                   wall_seconds=get(data, "wall_seconds", path, number, None),
                   schema=get(data, "schema", path, text, STUDY_SCHEMA))

    @classmethod
    def load(cls, path: str | Path) -> StudyResult:
        """A study file, checked (schema tag and shape); one line otherwise."""
        return read_as(path, cls.from_dict, "study result", STUDY_SCHEMA)
