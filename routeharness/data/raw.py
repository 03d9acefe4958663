"""What a reader has read, before it becomes a task (``Raw``), and reading a dataset's
files: regular files only, each error one line naming the path."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from routeharness.common.errors import DataError
from routeharness.common.files import FileReadError, check_regular_file, read_regular_file
from routeharness.data.cards import DatasetSidecar
from routeharness.data.dataset import ModelInfo
from routeharness.data.validation import Part


@dataclass
class Raw:
    """A dataset as read, before it becomes a ``RoutingTask``."""

    source: str
    parts: dict[str, Part] = field(default_factory=dict)
    meta: DatasetSidecar = field(default_factory=DatasetSidecar)
    models: list[ModelInfo] | None = None
    revision: str | None = None
    default_name: str = ""


def os_error(path: Path, exc: OSError) -> DataError:
    return DataError(f"cannot read: {exc.strerror or exc}", source=str(path))


def _data_error(exc: FileReadError) -> DataError:
    return DataError(f"cannot read: {exc.reason}" if exc.unreadable else exc.reason,
                     source=exc.path)


def regular_file(path: Path) -> None:
    """Raise a one-line ``DataError`` unless ``path`` is a readable regular file
    (``files.check_regular_file``: a FIFO, a device or a directory is named)."""
    try:
        check_regular_file(path, "data file")
    except FileReadError as exc:
        raise _data_error(exc) from None


def read_bytes(path: Path) -> bytes:
    """The bytes of a regular file (``files.read_regular_file``), or a ``DataError``."""
    try:
        return read_regular_file(path, "data file")
    except FileReadError as exc:
        raise _data_error(exc) from None
