"""Rebuild the copies embedded in the package from the upstream mirror.

    python -m routeharness_texttasks.embed ../shared/data [alpacaeval llmrouter]

Each copy is the canonical table (id, prompt, group, split, score:*, cost:*) as a zstd
parquet file in ``data/`` (the one file the loader reads; ``data build`` writes the
canonical folder with ``write_task``), validated by ``task_from_table`` before it is
written; tests check that it equals a fresh load from the mirror. Only
tasks whose data may be redistributed are embedded: alpacaeval (CC BY-NC 4.0, with
``data/alpacaeval.LICENSE.md`` beside it) and llmrouter (MIT). RouterDC's data has no
licence upstream and is never embedded.
"""

from __future__ import annotations

import sys
from pathlib import Path

from routeharness_texttasks import common

TASK_NAMES = ("alpacaeval", "llmrouter")


def columns_for(name: str, data_dir: Path) -> dict[str, list]:
    """Canonical columns (with ``split``) of a built-in text task, from the mirror."""
    import importlib

    module = importlib.import_module(f"routeharness_texttasks.{name}")
    card = common.load_card_of(name)
    if name == "alpacaeval":
        for candidate in (data_dir / name, data_dir):
            if all((candidate / f).is_file() for f in module.MIRROR_FILES):
                return module.columns_from_mirror(candidate, card)
        raise SystemExit(f"{data_dir}: no AlpacaEval mirror files")
    source = common.find_source(data_dir, name, module.REQUIRED, name)
    return module.build_columns(source, card)


def main(argv: list[str] | None = None) -> None:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args:
        raise SystemExit(__doc__)
    data_dir, names = Path(args[0]), args[1:] or list(TASK_NAMES)
    refused = sorted(set(names) - set(TASK_NAMES))
    if refused:
        raise SystemExit(f"not embeddable: {', '.join(refused)} (only {', '.join(TASK_NAMES)}"
                         " may be redistributed in the package)")
    for name in names:
        columns = columns_for(name, data_dir)
        # the one validation first: a bad mirror row stops here, before anything is written
        common.columns_to_task(columns, common.load_card_of(name), str(data_dir))
        path = common.write_embedded(columns, name)
        print(f"{name}: {path} ({path.stat().st_size / 1e6:.2f} MB)")


if __name__ == "__main__":
    main()
