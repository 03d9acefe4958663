"""``routeharness study``: the paper's questions (arXiv 2505.12601) as commands, on any
task, router and encoder the registry knows, through the same protocol as ``eval``.

One module per study (``neighbours``: locality; ``efficiency``: sample efficiency;
``encoders``; ``images``; ``shift``; ``sweep``; ``transfer``; ``online``: routing as a
stream), each with ``run(...) -> StudyResult``
and ``tables(result)`` (and ``plot(result, path)`` where a curve says more); ``paper``
runs them all and writes the claim-by-claim report. Shared: ``runs`` (derived tasks,
router x seed runs, paired comparisons), ``common``, ``record`` (the JSON file),
``figures``; pure statistics in ``stats`` and ``locality``."""

from __future__ import annotations

from importlib import import_module
from types import ModuleType

#: study name (the CLI's) -> module under routeharness.study
STUDIES = {"locality": "neighbours", "sample-efficiency": "efficiency",
           "encoders": "encoders", "images": "images", "shift": "shift", "sweep": "sweep",
           "transfer": "transfer", "online": "online"}


def study_module(name: str) -> ModuleType:
    """The module of a study by its name; one line for an unknown one."""
    from routeharness.common.errors import UnknownNameError

    if name not in STUDIES:
        raise UnknownNameError("study", name, sorted(STUDIES))
    return import_module(f"routeharness.study.{STUDIES[name]}")
