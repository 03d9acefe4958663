"""Files the harness reads and writes, each rule in one place.

Writing: ``atomic_write`` is the one atomic writer (a temporary file beside the target,
written, flushed and fsynced, given the permissions ``open`` would have given it, renamed
over the target, the folder fsynced): a reader sees the old file or the new one, never
part of one, and a crash leaves no half-written file. ``write_bytes`` / ``write_text``
wrap it for outputs a user named (the path checked first, an error one line naming it).
``new_folder`` is the same rule for a folder of files (a saved router, an exported
dataset): built beside the target and renamed into place whole (a symlink to an empty
folder is followed and stays a link). Replacing a folder that exists, under a lock, is
``routeharness.common.folders``.

Reading: ``read_regular_file`` opens without blocking and reads only a regular file: a
FIFO, a device (``/dev/zero``) or a directory is refused by name, never read (it would
hang or never end); with a ``limit``, a larger file is refused from its size, unread.
``common.textinput`` builds the text rules (encodings, JSON, limits of streams) on it.
"""

from __future__ import annotations

import os
import shutil
import stat
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

from routeharness.common.errors import RouteHarnessError

#: what a non-regular file is, by its mode, for messages
_KINDS = ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO"),
          (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
          (stat.S_ISSOCK, "a socket"))


class FileReadError(RouteHarnessError):
    """A file that cannot be read (``unreadable``: the OS said why), is not a regular
    file, or is larger than the reader's limit (``size``: its size then): ``path`` and
    ``reason`` apart, so that a reader can name them in its own error (``DataError``)."""

    def __init__(self, path: str | Path, reason: str, what: str = "file", *,
                 unreadable: bool = False, size: int | None = None):
        self.path, self.reason, self.unreadable, self.size = str(path), reason, unreadable, \
            size
        super().__init__(f"cannot read {what} {path}: {reason}")


def file_kind(mode: int) -> str:
    """What a file of this mode is, for messages: "a directory", "a FIFO", ..."""
    if stat.S_ISREG(mode):
        return "a regular file"
    return next((name for test, name in _KINDS if test(mode)), "not a file")


def read_regular_file(path: str | Path, what: str = "file", limit: int | None = None
                      ) -> bytes:
    """The bytes of ``path`` if it is a regular file (of at most ``limit`` bytes); else a
    ``FileReadError`` naming it and what it is (checked on the open handle, opened
    without blocking; a file over the limit is refused from its size, unread)."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except OSError as exc:
        raise FileReadError(exc.filename or path, exc.strerror or str(exc), what,
                            unreadable=True) from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise FileReadError(path, f"it is {file_kind(info.st_mode)}, not a regular file",
                                what)
        if limit is not None and info.st_size > limit:
            raise FileReadError(path, f"{info.st_size:,} bytes, more than the limit of "
                                f"{limit:,}", what, size=info.st_size)
        with os.fdopen(fd, "rb") as handle:
            fd = -1
            data = handle.read() if limit is None else handle.read(limit + 1)
        if limit is not None and len(data) > limit:  # it grew after the size was read
            raise FileReadError(path, f"more than the limit of {limit:,} bytes", what,
                                size=len(data))
        return data
    except OSError as exc:
        raise FileReadError(exc.filename or path, exc.strerror or str(exc), what,
                            unreadable=True) from None
    finally:
        if fd >= 0:
            os.close(fd)


def check_regular_file(path: str | Path, what: str = "file") -> None:
    """``read_regular_file``'s check without reading (for files a library opens itself)."""
    try:
        mode = os.stat(path).st_mode
    except OSError as exc:
        raise FileReadError(exc.filename or path, exc.strerror or str(exc), what,
                            unreadable=True) from None
    if not stat.S_ISREG(mode):
        raise FileReadError(path, f"it is {file_kind(mode)}, not a regular file", what)


# --- writing ---------------------------------------------------------------------------------
def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def fsync_folder(folder: str | Path) -> None:
    """Make a rename or a new entry in ``folder`` durable (where the OS allows)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_write(path: str | Path, content: bytes | Callable[[BinaryIO], object]) -> None:
    """The one atomic writer: ``content`` (bytes, or a function writing to a binary
    handle) to a temporary file beside ``path``, fsynced, renamed over ``path``. Raises
    ``OSError`` as it comes (callers decide how to report it); nothing is left behind."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            if callable(content):
                content(handle)
            else:
                handle.write(content)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp's 0600 -> what open() would have made
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    fsync_folder(path.parent)


def check_output_path(path: str | Path, what: str = "output") -> Path:
    """``path`` if a file can be written there: not a directory, its parent a directory
    (created when missing); else one line naming the path."""
    path = Path(path)
    if path.is_dir():
        raise RouteHarnessError(f"{path}: the {what} path is a directory")
    parent = path.parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        raise RouteHarnessError(f"{path}: cannot write the {what} here: {parent} is not a "
                                "directory") from None
    except OSError as exc:
        raise RouteHarnessError(f"{path}: cannot create {parent}: {exc.strerror}") from None
    if not parent.is_dir():
        raise RouteHarnessError(f"{path}: cannot write the {what} here: {parent} is not a "
                                "directory")
    return path


def write_bytes(content: bytes | Callable[[BinaryIO], object], path: str | Path,
                what: str = "output") -> Path:
    """``atomic_write`` to a path a user named: checked first (``check_output_path``), an
    ``OSError`` one line naming the path."""
    path = check_output_path(path, what)
    try:
        atomic_write(path, content)
    except OSError as exc:
        raise RouteHarnessError(f"{path}: cannot write the {what}: "
                                f"{exc.strerror or exc}") from None
    return path


def write_text(content: str, path: str | Path, what: str = "output") -> Path:
    """``write_bytes`` of ``content`` as UTF-8."""
    return write_bytes(content.encode("utf-8"), path, what)


def check_new_folder(target: str | Path, what: str = "output") -> Path:
    """``target`` if ``new_folder`` may write it (it does not exist, or is an empty
    folder; a symlink is followed: to an empty folder, or to none yet); else one line
    naming it. Checked before long work, and again at the end."""
    target = Path(target).expanduser()
    real = Path(os.path.realpath(target))
    if real.exists() and (not real.is_dir() or any(real.iterdir())):
        raise RouteHarnessError(f"{target}: exists and is not an empty directory (the "
                                f"{what} is written to a new one)")
    return target


@contextmanager
def new_folder(target: str | Path, what: str = "output") -> Iterator[Path]:
    """A temporary folder beside ``target`` to fill; when the block ends without an error
    its files are fsynced and it is renamed to ``target`` (which must not exist, or be an
    empty folder; a symlink stays a link, and the folder it points to is written). After
    an error it is removed. Either the whole folder appears, or nothing does."""
    target = check_new_folder(target, what)
    real = Path(os.path.realpath(target))
    try:
        real.parent.mkdir(parents=True, exist_ok=True)
        work = Path(tempfile.mkdtemp(prefix=f".{real.name}.", dir=real.parent))
    except OSError as exc:
        raise RouteHarnessError(f"{target}: cannot write the {what}: "
                                f"{exc.strerror or exc}") from None
    try:
        yield work
        for folder, _, names in os.walk(work):
            for name in names:
                with open(Path(folder) / name, "rb") as handle:
                    os.fsync(handle.fileno())
        os.chmod(work, 0o777 & ~_umask())  # mkdtemp's 0700 -> what mkdir would have made
        os.replace(work, real)  # onto an empty folder too (POSIX rename)
        fsync_folder(real.parent)
    except OSError as exc:
        raise RouteHarnessError(f"{target}: cannot write the {what}: "
                                f"{exc.strerror or exc}") from None
    finally:  # gone after the rename; removed after any failure
        if work.exists():
            shutil.rmtree(work, ignore_errors=True)
