"""Importers of other tools' routing data (``routeharness data import FORMAT SOURCE OUT``):
one module per format, each reading its source into ``common.Imported``; ``import_source``
settles costs and splits and writes the canonical dataset through ``readers.write_task``
(docs/formats/README.md; each format's page is docs/formats/<format>.md).

``FORMATS`` names each format's module; a module has ``read(source) -> Imported`` and
``looks_like(source) -> bool`` (used to say which format a wrong source looks like).
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

from routeharness.common.errors import DataError, RouteHarnessError, UnknownNameError

#: format name -> the module that reads it (imported when used)
FORMATS = {
    "routerarena": "routeharness.data.importers.routerarena",
    "routerbench-full": "routeharness.data.importers.routerbench_full",
    "llmrouterbench": "routeharness.data.importers.llmrouterbench",
    "embedllm": "routeharness.data.importers.embedllm",
    "sprout": "routeharness.data.importers.sprout",
    "routereval": "routeharness.data.importers.routereval",
    "vl-routerbench": "routeharness.data.importers.vl_routerbench",
}


def format_names() -> list[str]:
    return list(FORMATS)


def format_module(name: str) -> Any:
    """The module of a format; an unknown name is one line with did-you-mean (exit 2)."""
    if name not in FORMATS:
        raise UnknownNameError("import format", name, format_names())
    return importlib.import_module(FORMATS[name])


def looks_like(source: Path, exclude: str = "") -> list[str]:
    """The formats whose layout ``source`` looks like (cheap checks of names and first
    bytes; nothing is parsed whole)."""
    found = []
    for name in FORMATS:
        if name == exclude:
            continue
        try:
            if format_module(name).looks_like(source):
                found.append(name)
        except (OSError, RouteHarnessError, ValueError):
            continue
    return found


def import_source(fmt: str, source: str | Path, out: str | Path, *, seed: int | None = None,
                  prices: str | Path | None = None, name: str | None = None) -> Any:
    """Read ``source`` in format ``fmt`` and write the canonical dataset to the new (or
    empty) folder ``out``; returns ``common.Written``. Every problem is one line naming
    the file (and row or field where known); nothing is written then."""
    from routeharness.common.files import check_new_folder
    from routeharness.data.importers.common import WrongFormat, finish, read_price_table

    module = format_module(fmt)
    source_path = Path(source).expanduser()
    if not source_path.exists() and not source_path.is_symlink():
        raise DataError("no such file or directory", source=str(source_path))
    target = check_new_folder(out, "dataset")
    if source_path.is_dir() and _inside(target, source_path):
        raise RouteHarnessError(f"{target}: the output folder is inside the source "
                                f"{source_path}; write it elsewhere")
    table = read_price_table(Path(prices).expanduser()) if prices is not None else None
    try:
        imported = module.read(source_path)
    except WrongFormat as exc:
        others = looks_like(source_path, exclude=fmt)
        hint = (f" (it looks like {' or '.join(others)} data: routeharness data import "
                f"{others[0]} ...)" if others else "")
        raise DataError(exc.detail + hint, source=exc.source, row=exc.row,
                        column=exc.column) from None
    return finish(imported, target, name=name or fmt, seed=seed, prices=table)


def _inside(path: Path, folder: Path) -> bool:
    try:
        path.resolve().relative_to(folder.resolve())
    except ValueError:
        return False
    return True
