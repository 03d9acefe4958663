"""What a reader has read, before it becomes a task (``Raw``), and reading a dataset's
files: regular files only, each error one line naming the path."""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from routeharness.common.errors import DataError
from routeharness.data.dataset import ModelInfo
from routeharness.data.validation import Part


@dataclass
class Raw:
    """A dataset as read, before it becomes a ``RoutingTask``."""

    source: str
    parts: dict[str, Part] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)
    models: list[ModelInfo] | None = None
    revision: str | None = None
    default_name: str = ""


def os_error(path: Path, exc: OSError) -> DataError:
    return DataError(f"cannot read: {exc.strerror or exc}", source=str(path))


def regular_file(path: Path) -> None:
    """Raise a one-line ``DataError`` unless ``path`` is a readable regular file."""
    try:
        info = os.stat(path)
    except OSError as exc:
        raise os_error(path, exc) from None
    if stat.S_ISDIR(info.st_mode):
        raise DataError("is a directory, expected a data file", source=str(path))
    if not stat.S_ISREG(info.st_mode):
        raise DataError("not a regular file (a FIFO, socket or device): only regular "
                        "files are read", source=str(path))


def read_bytes(path: Path) -> bytes:
    regular_file(path)
    try:
        with open(path, "rb") as handle:
            return handle.read()
    except OSError as exc:
        raise os_error(path, exc) from None
