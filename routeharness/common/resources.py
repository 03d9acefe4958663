"""Where the built-in task cards and leaderboards live.

In a wheel they ship inside the package (``routeharness/_builtin/``, see pyproject's
force-include); in an editable install or a checkout they are read from the repository.
"""

from __future__ import annotations

from pathlib import Path

_PACKAGE_DIR = Path(__file__).resolve().parent.parent


def builtin_dir(kind: str) -> Path:
    """The directory of built-in ``tasks`` or ``leaderboards``."""
    for candidate in (_PACKAGE_DIR / "_builtin" / kind, _PACKAGE_DIR.parent / kind):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(f"routeharness installation has no built-in {kind!r} directory "
                            f"(looked in {_PACKAGE_DIR / '_builtin'} and {_PACKAGE_DIR.parent})")


def task_card_path(name: str) -> Path:
    """The path of a built-in task card, ``tasks/<name>.yaml``."""
    return builtin_dir("tasks") / f"{name}.yaml"
