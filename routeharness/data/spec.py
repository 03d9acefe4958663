"""The task spec grammar, parsed in this one place.

A ``--task`` (or ``data info``) argument is one of:

- ``NAME`` or ``NAME:GROUP``: a registered task, or one group of it;
- ``PATH`` or ``PATH:GROUP``: a user's dataset (a file or a folder, see
  docs/dataset-format.md), or one group of it;
- ``hub:ORG/NAME[@REVISION][:GROUP]``: a Hugging Face Hub dataset in that layout.

A registered name wins over a file of the same name in the working directory unless the
spec holds a path separator. A spec that exists as a path is a path even when it holds a
':' (``runs:2024/data.csv``); otherwise the text after the last ':' is the group. A spec
holds at most one group: an empty one (``data:``), an empty revision (``hub:o/n@``) or a
second ``:GROUP`` after a dataset path (``data:a:b``) is refused in one line.
"""

from __future__ import annotations

import os
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from routeharness.common.errors import RouteHarnessError

HUB_PREFIX = "hub:"
#: file suffixes a one-file dataset may have (also what makes a spec look like a path)
DATA_SUFFIXES = (".parquet", ".csv", ".jsonl", ".json")


@dataclass(frozen=True)
class TaskSpec:
    """A parsed task spec. ``kind``: "name" (``name`` is the registered name), "path"
    (``path`` is set) or "hub" (``name`` is ORG/NAME, ``revision`` may be set)."""

    kind: Literal["name", "path", "hub"]
    name: str
    group: str | None = None
    revision: str | None = None
    path: Path | None = None


def parse_hub_spec(spec: str) -> tuple[str, str | None, str | None]:
    """``hub:org/name[@revision][:group]`` -> (repo, revision, group)."""
    body = spec[len(HUB_PREFIX):] if spec.startswith(HUB_PREFIX) else spec
    repo_revision, colon, group = body.partition(":")
    repo, at, revision = repo_revision.partition("@")
    if not repo or repo.count("/") > 1 or repo.startswith("/") or repo.endswith("/"):
        raise RouteHarnessError(f"{spec!r}: a Hub dataset is hub:ORG/NAME[@REVISION][:GROUP]")
    if at and not revision.strip():
        raise RouteHarnessError(f"{spec!r}: empty revision after '@' (give a branch, tag or "
                                "commit, or leave out the '@')")
    if colon:
        _check_group(spec, group)
    return repo, (revision or None), (group or None)


def _check_group(spec: str, group: str) -> None:
    if not group.strip():
        raise RouteHarnessError(f"task spec {spec!r} ends in an empty group: write "
                                "SPEC:GROUP, or leave out the ':'")


def _exists(text: str) -> bool:
    """A path that is there, including a dangling link or a symlink loop (their errors are
    reported by the reader, naming the path, rather than "unknown task")."""
    try:
        return os.path.lexists(Path(text).expanduser())
    except (OSError, ValueError):
        return False


def _looks_like_path(text: str) -> bool:
    return (os.sep in text or "/" in text or text.startswith(("~", "."))
            or text.lower().endswith(DATA_SUFFIXES))


def parse_task_spec(spec: str, known: Collection[str] = ()) -> TaskSpec:
    """``spec`` -> ``TaskSpec``; ``known``: the registered task names."""
    if not spec or not spec.strip():
        raise RouteHarnessError("empty task spec: give a task name, a path or hub:ORG/NAME")
    if spec.startswith(HUB_PREFIX):
        repo, revision, group = parse_hub_spec(spec)
        return TaskSpec("hub", repo, group, revision)
    if spec in known:
        return TaskSpec("name", spec)
    if _exists(spec):
        return TaskSpec("path", spec, path=Path(spec).expanduser())
    head, colon, group = spec.rpartition(":")
    if colon and not head:
        raise RouteHarnessError(f"task spec {spec!r} has no task before ':' (NAME:GROUP or "
                                "PATH:GROUP)")
    if colon:
        _check_group(spec, group)
        if head in known:
            return TaskSpec("name", head, group)
        if _exists(head) or _looks_like_path(head):
            return TaskSpec("path", head, group, path=Path(head).expanduser())
        first, _, rest = spec.partition(":")
        if first not in known and (_exists(first) or _looks_like_path(first)):
            raise RouteHarnessError(
                f"task spec {spec!r}: {first!r} is a dataset path, and a task spec has at "
                "most one ':GROUP' (PATH:GROUP)")
        return TaskSpec("name", first, rest)  # an unknown name: the registry says so
    if _looks_like_path(spec):
        return TaskSpec("path", spec, path=Path(spec).expanduser())
    return TaskSpec("name", spec)


def split_spec(spec: str) -> tuple[str, str | None]:
    """``"routerbench:mbpp"`` -> ("routerbench", "mbpp") (kept for older callers)."""
    name, _, group = spec.partition(":")
    return name, (group or None)
