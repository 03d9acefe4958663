"""The provenance every file the harness writes records: the routeharness checkout's
commit and the platform with the versions of the libraries that move the numbers."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any


def git_commit() -> str | None:
    """The routeharness checkout's commit (``+dirty`` with local changes), when it runs
    from one."""
    import subprocess

    root = Path(__file__).resolve().parent.parent.parent
    if not (root / ".git").exists():
        return None
    try:
        out = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True,
                             text=True, timeout=5, check=True)
        dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain",
                                "--untracked-files=no"],
                               capture_output=True, text=True, timeout=5).stdout.strip()
        return out.stdout.strip() + ("+dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return None


def platform_info() -> dict[str, Any]:
    """Python, OS, CPU count and the versions of the libraries that move the numbers."""
    import platform
    import sys
    from importlib import metadata

    info: dict[str, Any] = {"python": sys.version.split()[0], "platform": platform.platform(),
                            "machine": platform.machine(), "cpus": os.cpu_count()}
    for package in ("numpy", "torch", "faiss-cpu", "datasets", "sentence-transformers",
                    "transformers"):
        try:
            info[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            pass
    return info
