"""A folder replaced as one unit (a saved router, rewritten by ``update``): one writer at
a time, a swap that leaves the old or the new folder at its path whatever instant the
writer is killed, a recovery that the next reader or writer runs, and reads that see one
folder whole.

- ``real_folder``: the folder a path names, symlinks followed. A link stays a link: the
  folder it points to is what is locked, swapped and recovered.
- ``folder_lock``: an exclusive ``fcntl.flock`` on ``.<name>.lock`` beside the folder
  (not in it: the folder is replaced, its lock must not be). The holder writes its pid
  in the file and removes it before it lets go (a lock on a file that is no longer at
  the path is taken again), so nothing stays behind; the kernel drops the lock of a
  killed holder, and the file it leaves is removed by the next one.
- ``swapped_folder``: the new folder is built in ``.<name>.swap-XXXX/new`` beside the
  old one, flushed, and exchanged with it in one ``renameat2(RENAME_EXCHANGE)`` (Linux);
  where the system has no exchange, in two renames (the old one to ``.../old``, the new
  one into place), with the folder missing in between. The swap folder, holding the old
  router after the exchange, is then removed.
- ``recover``: under the lock, puts back a folder a killed two-rename swap left missing
  (its ``old``) and removes every ``.<name>.swap-*`` folder and a dead holder's lock
  file. ``needs_recovery`` says when there is anything to do; ``recover_if_idle`` does it
  when no writer is at work (a live writer's swap folder is its work in progress).
- ``read_folder``: every file of the folder, read through one open handle of it, so the
  files all come from one folder even if a swap happens meanwhile; a folder that was
  swapped out while it was read (its files may be going) is a ``FileNotFoundError`` for
  the caller to read again.
"""

from __future__ import annotations

import errno
import fcntl
import os
import re
import shutil
import stat
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from routeharness.common.errors import RouteHarnessError
from routeharness.common.files import fsync_folder

#: how often a waiting writer tries the lock again, in seconds
POLL_S = 0.05


class FolderBusy(RouteHarnessError):
    """Another process holds the folder's lock longer than the caller waits."""


def real_folder(path: str | Path) -> Path:
    """``path`` with every symlink followed (a dangling link: the path it points to)."""
    return Path(os.path.realpath(Path(path).expanduser()))


def lock_path(folder: Path) -> Path:
    return folder.parent / f".{folder.name}.lock"


def swap_prefix(folder: Path) -> str:
    return f".{folder.name}.swap-"


def leftovers(folder: Path) -> list[Path]:
    """The swap folders beside ``folder`` (a writer's work, or a killed one's remains)."""
    try:
        names = os.listdir(folder.parent)
    except OSError:
        return []
    # exactly what mkdtemp makes of the prefix (eight of [a-z0-9_]): another folder's
    # swap folders (``.<name>.swap-x.swap-...``) never match
    pattern = re.compile(re.escape(swap_prefix(folder)) + r"[a-z0-9_]{8}")
    return sorted(folder.parent / name for name in names if pattern.fullmatch(name))


def needs_recovery(folder: Path) -> bool:
    """Whether a swap folder or a lock file lies beside ``folder``."""
    return bool(leftovers(folder)) or os.path.lexists(lock_path(folder))


def _try_lock(path: Path) -> int | None:
    """An fd holding the exclusive lock on the file at ``path`` now, or None when another
    process holds it."""
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            os.close(fd)
            if exc.errno in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                return None
            raise
        try:  # the file may have been removed by its last holder meanwhile: take it again
            here = os.stat(path)
        except FileNotFoundError:
            os.close(fd)
            continue
        mine = os.fstat(fd)
        if (here.st_dev, here.st_ino) != (mine.st_dev, mine.st_ino):
            os.close(fd)
            continue
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        return fd


def _release(fd: int, path: Path) -> None:
    try:
        os.unlink(path)  # while still holding it: see _try_lock
    except OSError:
        pass
    finally:
        os.close(fd)


def _holder(path: Path) -> str:
    try:
        pid = path.read_text("ascii").strip()
    except (OSError, UnicodeDecodeError):
        return ""
    return f" (process {pid})" if pid.isdigit() else ""


@contextmanager
def folder_lock(folder: Path, wait_s: float, what: str = "folder") -> Iterator[None]:
    """The writer's lock of ``folder`` (a real path, ``real_folder``), waiting up to
    ``wait_s`` seconds for another holder; then a one-line ``FolderBusy``."""
    path = lock_path(folder)
    deadline = time.monotonic() + max(0.0, wait_s)
    try:
        while True:
            fd = _try_lock(path)
            if fd is not None:
                break
            if time.monotonic() >= deadline:
                raise FolderBusy(f"{folder}: another process{_holder(path)} is updating "
                                 f"this {what}; waited {wait_s:g} s (try again, or give "
                                 "--wait SECONDS)")
            time.sleep(POLL_S)
    except OSError as exc:
        raise RouteHarnessError(f"{path}: cannot lock the {what}: "
                                f"{exc.strerror or exc}") from None
    try:
        yield
    finally:
        _release(fd, path)


def recover(folder: Path) -> None:
    """Under the lock: a folder a killed two-rename swap left missing is put back (its
    ``old``), then every swap folder beside it is removed."""
    swaps = leftovers(folder)
    if not os.path.lexists(folder):
        olds = [swap / "old" for swap in swaps if (swap / "old").is_dir()]
        if olds:
            os.rename(max(olds, key=lambda p: p.stat().st_mtime), folder)
    for swap in swaps:
        shutil.rmtree(swap, ignore_errors=True)
    fsync_folder(folder.parent)


def recover_if_idle(folder: Path, wait_s: float = 0.0) -> bool:
    """``recover`` when no writer holds the lock (waiting up to ``wait_s`` seconds for
    one: a reader that finds the folder missing waits out a swap in progress); False
    when a writer is at work or the lock cannot be taken here (a read-only place)."""
    try:
        with folder_lock(folder, wait_s):
            recover(folder)
        return True
    except RouteHarnessError:
        return False


@contextmanager
def swapped_folder(folder: Path, what: str = "folder") -> Iterator[Path]:
    """An empty folder to fill, beside ``folder`` (a real path whose lock the caller
    holds); when the block ends without an error it replaces ``folder`` (see the module
    doc); after an error it is removed and ``folder`` is untouched."""
    try:
        swap = Path(tempfile.mkdtemp(prefix=swap_prefix(folder), dir=folder.parent))
        work = swap / "new"
        work.mkdir()
    except OSError as exc:
        raise RouteHarnessError(f"{folder}: cannot write the {what}: "
                                f"{exc.strerror or exc}") from None
    try:
        yield work
        for name in os.listdir(work):
            with open(work / name, "rb") as handle:
                os.fsync(handle.fileno())
        os.chmod(work, stat.S_IMODE(os.stat(folder).st_mode))
        fsync_folder(work)
        fsync_folder(swap)
        if not exchange(work, folder):
            os.rename(folder, swap / "old")
            os.rename(work, folder)
        fsync_folder(folder.parent)
    except OSError as exc:
        raise RouteHarnessError(f"{folder}: cannot write the {what}: "
                                f"{exc.strerror or exc}") from None
    finally:
        if not os.path.lexists(folder) and (swap / "old").is_dir():
            os.rename(swap / "old", folder)  # the second rename failed: the old one back
        shutil.rmtree(swap, ignore_errors=True)


#: renameat2's flag, and the errors that mean "this system or file system cannot"
_RENAME_EXCHANGE = 2
_NO_EXCHANGE = {errno.EINVAL, errno.ENOSYS, getattr(errno, "ENOTSUP", errno.EINVAL),
                getattr(errno, "EOPNOTSUPP", errno.EINVAL)}
#: whether to try the exchange (tests set it to False to take the two-rename path)
USE_EXCHANGE = sys.platform.startswith("linux")


def exchange(a: Path, b: Path) -> bool:
    """``a`` and ``b`` exchanged in one atomic step (Linux ``renameat2``); False where the
    system or file system cannot (the caller renames twice)."""
    if not USE_EXCHANGE:
        return False
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    renameat2 = getattr(libc, "renameat2", None)
    if renameat2 is None:
        return False
    at_fdcwd = -100
    done = renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), _RENAME_EXCHANGE)
    if done == 0:
        return True
    code = ctypes.get_errno()
    if code in _NO_EXCHANGE:
        return False
    raise OSError(code, os.strerror(code), str(b))


def read_folder(folder: Path, limit: int | None = None) -> dict[str, bytes]:
    """Every entry of ``folder`` read through one handle of it: name -> bytes. An entry
    that is not a regular file (a folder, a link, a FIFO) is a one-line error naming it;
    ``FileNotFoundError`` when the folder or a file went away meanwhile (a swap)."""
    dir_fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        out: dict[str, bytes] = {}
        for name in sorted(os.listdir(dir_fd)):
            try:
                fd = os.open(name, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0)
                             | getattr(os, "O_NONBLOCK", 0), dir_fd=dir_fd)
            except OSError as exc:
                if exc.errno == errno.ELOOP:
                    raise RouteHarnessError(f"{folder / name}: a symbolic link, not a "
                                            "regular file") from None
                if exc.errno == errno.ENOENT:
                    raise FileNotFoundError(exc.errno, exc.strerror, str(folder / name)) from None
                raise
            with os.fdopen(fd, "rb") as handle:
                if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):
                    raise RouteHarnessError(f"{folder / name}: not a regular file")
                out[name] = handle.read()
        # the folder read must still be the one at the path: one swapped out meanwhile
        # may have lost files to the removal that follows a swap (read it again)
        here, read = os.stat(folder), os.fstat(dir_fd)
        if (here.st_dev, here.st_ino) != (read.st_dev, read.st_ino):
            raise FileNotFoundError(errno.ENOENT, "replaced while it was read", str(folder))
        return out
    finally:
        os.close(dir_fd)
