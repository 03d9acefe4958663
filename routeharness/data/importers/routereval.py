"""RouterEval (MilkThink-Lab/RouterEval; the Hub's linggm/RouterEval),
docs/formats/routereval.md. Upstream's ready-made router datasets are pickles
(``router_dataset/<dataset>_router_dataset.pkl``: ``prompt`` -> ``{train,val,test}_prompt``;
``easy``/``hard`` -> candidate-pool size -> ``all_strong``/``all_weak``/``strong_to_weak``
-> ``{"model": [...], "data": {"train_score", "val_score", "test_score"}}``), so the user
converts the one candidate pool to study into a ``.json`` or ``.npz`` file once (the page
gives the line) and imports that:

- ``.json``: ``{"model": [...], "prompt": {"train_prompt": [...], "val_prompt": [...],
  "test_prompt": [...]}, "data": {"train_score": [[...]], "val_score": ..., "test_score":
  ...}, "dataset": "<name>"}`` (``dataset`` optional);
- ``.npz`` (read with ``allow_pickle=False``): the same arrays flat, ``model``,
  ``train_prompt``, ..., ``train_score``, ..., and optionally ``dataset``; strings as
  numpy unicode arrays (an object array would need unpickling, and is refused).

Written from the repository's README and ``test_router.py`` as copied in public forks;
not checked against a real file.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from routeharness.common.errors import DataError
from routeharness.data.importers.common import (
    Imported,
    WrongFormat,
    is_pickle,
    read_json_file,
    refuse_pickle,
    shown,
)
from routeharness.data.raw import regular_file

NAME = "routereval"
DOC = "docs/formats/routereval.md"
EXPECTED = "a RouterEval candidate pool as .json or .npz (model, *_prompt, *_score)"
SPLITS = {"train": "train", "val": "validation", "test": "test"}


def _file(source: Path) -> Path:
    if not source.is_dir():
        return source
    candidates = sorted(p for p in source.iterdir()
                        if p.is_file() and p.suffix.lower() in (".json", ".npz"))
    if len(candidates) == 1:
        return candidates[0]
    if len(candidates) > 1:
        raise DataError(f"{len(candidates)} .json/.npz files here: pass the one to import",
                        source=str(source))
    pickles = sorted(p for p in source.iterdir() if p.is_file() and is_pickle(p))
    if pickles:
        refuse_pickle(pickles[0], EXPECTED, DOC)
    raise WrongFormat(f"no .json or .npz file: expected {EXPECTED}", source=str(source))


def looks_like(source: Path) -> bool:
    try:
        path = _file(source)
    except DataError:
        return False
    if path.name.endswith("_router_dataset.pkl"):
        return True
    if path.suffix.lower() == ".npz":
        import zipfile

        try:
            with zipfile.ZipFile(path) as archive:
                return "train_score.npy" in archive.namelist()
        except (OSError, zipfile.BadZipFile):
            return False
    if path.suffix.lower() == ".json":
        with open(path, "rb") as handle:
            head = handle.read(65536)
        return b'"train_score"' in head or b'"train_prompt"' in head
    return False


def _load_npz(path: Path) -> dict[str, Any]:
    import zipfile

    import numpy as np

    regular_file(path)
    try:
        with np.load(str(path), allow_pickle=False) as archive:
            return {key: archive[key] for key in archive.files}
    except ValueError as exc:
        if "allow_pickle" in str(exc) or "pickle" in str(exc).lower():
            raise DataError("an array here is a pickled object array: routeharness never "
                            "unpickles; save strings as a unicode array "
                            "(np.array(texts, dtype=str))", source=str(path)) from None
        raise DataError(f"cannot read the .npz file (cut short?): {exc}",
                        source=str(path)) from None
    except (OSError, EOFError, zipfile.BadZipFile) as exc:
        raise DataError(f"cannot read the .npz file (cut short?): {exc}",
                        source=str(path)) from None


def _as_lists(path: Path) -> dict[str, Any]:
    """The file as ``{"model", "dataset", "<split>_prompt", "<split>_score"}``."""
    if path.suffix.lower() == ".npz":
        arrays = _load_npz(path)
        # a 0/1 score matrix saved as booleans is read as 0.0 / 1.0
        return {key: (value.astype(float) if value.dtype == bool else value).tolist()
                for key, value in arrays.items()}
    data = read_json_file(path, EXPECTED, DOC)
    if not isinstance(data, dict):
        raise WrongFormat(f"expected a JSON object: {EXPECTED}", source=str(path))
    prompts, scores = data.get("prompt"), data.get("data")
    if not isinstance(prompts, dict) or not isinstance(scores, dict) or "model" not in data:
        raise WrongFormat(f"expected the keys model, prompt and data: {EXPECTED}",
                          source=str(path))
    return {"model": data["model"], "dataset": data.get("dataset"), **prompts, **scores}


def read(source: Path) -> Imported:
    path = _file(source)
    if path.suffix.lower() not in (".json", ".npz"):
        refuse_pickle(path, EXPECTED, DOC)
        raise WrongFormat(f"expected {EXPECTED}", source=str(path))
    where = str(path)
    data = _as_lists(path)
    models = data.get("model")
    if not isinstance(models, list) or not models or not all(isinstance(m, str) for m in models):
        raise WrongFormat(f"'model' must be a list of model names: {EXPECTED}", source=where)
    if len(set(models)) != len(models):
        twice = next(m for m in models if models.count(m) > 1)
        raise DataError(f"model {twice!r} listed twice in 'model'", source=where)
    dataset = data.get("dataset")
    group = dataset if isinstance(dataset, str) and dataset else \
        path.stem.removesuffix("_router_dataset")
    imported = Imported(format=NAME, source=where)
    imported.description = ("RouterEval (MilkThink-Lab, 2025) router dataset: one candidate "
                            "pool of Open LLM Leaderboard models, imported")
    imported.license = "MIT (linggm/RouterEval dataset card)"
    imported.built_from = ("https://github.com/MilkThink-Lab/RouterEval (router_dataset; "
                           "the Hub's linggm/RouterEval)")
    imported.own_splits = "train_*, val_* (validation), test_*"
    for key, split in SPLITS.items():
        prompts, scores = data.get(f"{key}_prompt"), data.get(f"{key}_score")
        if prompts is None and scores is None:
            continue
        if not isinstance(prompts, list) or not isinstance(scores, list):
            raise WrongFormat(f"{key}_prompt and {key}_score must both be given as lists: "
                              f"{EXPECTED}", source=where)
        if len(prompts) != len(scores):
            raise DataError(f"{key}_prompt has {len(prompts)} prompts and {key}_score "
                            f"{len(scores)} rows", source=where)
        for row, (prompt, values) in enumerate(zip(prompts, scores)):
            column = f"{key}_score"
            if not isinstance(prompt, str):
                raise DataError(f"{key}_prompt[{row}] must be text, got {shown(prompt)}",
                                source=where, row=row)
            if not isinstance(values, list) or len(values) != len(models):
                raise DataError(f"{column}[{row}] must list {len(models)} scores (one per "
                                f"model), got {shown(values)}", source=where, row=row)
            i = imported.add_row(f"{key}-{row}", prompt, group, (where, row), split=split)
            for model, value in zip(models, values):
                if isinstance(value, bool) or not isinstance(value, (int, float)):
                    raise DataError(f"{column}[{row}] must hold numbers, got {shown(value)}",
                                    source=where, row=row)
                score = None if math.isnan(value) else float(value)
                imported.set_cell(i, model, score, (where, row))
    if not imported.ids:
        raise WrongFormat(f"no train_prompt/train_score: not {EXPECTED}", source=where)
    return imported
