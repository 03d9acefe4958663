"""``routeharness update``: new evaluations added to a saved router without retraining.

The paper's maintenance argument: if performance is local in embedding space, a kNN
router is kept current by adding rows to its lookup table. A router that can
(``Tags.updatable``: ``outcome_table()`` and ``update_outcomes(X_new, scores, costs)``)
takes two kinds of new outcomes, in one file of the canonical columns (``id``, ``prompt``,
``group``, ``score:<model>``, ``cost:<model>``, optional ``embedding``; validated as any
dataset is, ``split`` absent or ``train``):

- new prompts (ids the router was not fitted on) for any models of the pool: appended;
- a new model (a ``score:``/``cost:`` pair the pool lacks), evaluated on some prompts:
  a column added, its outcomes on known ids filled in, every other cell missing (never 0).

A cell the router already holds is never overwritten (one-line error). Costs are
normalised by the cost scale saved at fit time. Parametric routers are refused with the
advice to refit. The folder is rewritten atomically: the new one is built beside it and
swapped in, so an interrupted update leaves the old router intact.
"""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from routeharness.common.errors import DataError, RouteHarnessError
from routeharness.deploy import saved
from routeharness.deploy.saved import IDS_FILE


@dataclass(frozen=True)
class UpdateReport:
    """What an update added: prompts appended, models added, cells filled on known ids."""

    new_prompts: int
    new_models: list[str]
    filled_cells: int
    n_train: int

    def to_dict(self) -> dict[str, Any]:
        return {"new_prompts": self.new_prompts, "new_models": list(self.new_models),
                "filled_cells": self.filled_cells, "n_train": self.n_train}


def read_outcomes(path: str | Path) -> Any:
    """A file of new outcomes as ``RoutingData`` (validated like any dataset split)."""
    from routeharness.data.dataset import RoutingData
    from routeharness.data.readers import read_file
    from routeharness.data.validation import Enough, Problems

    path = Path(path)
    if not path.is_file():
        raise RouteHarnessError(f"{path}: no such file of new outcomes (.csv, .jsonl or "
                                ".parquet)")
    problems = Problems(1)
    try:
        table = read_file(path, problems)
    except Enough:
        table = None
    if table is None:
        raise problems.items[0]
    if "split" in table.column_names:
        splits = set(table.column("split").to_pylist())
        if splits - {"train"}:
            raise DataError(f"update adds training outcomes: the split column holds "
                            f"{sorted(map(str, splits - {'train'}))}", source=str(path),
                            column="split")
        table = table.drop(["split"])
    return RoutingData.from_table(table, source=str(path))


def merge(old_scores: np.ndarray, old_costs: np.ndarray, old_ids: list[str],
          old_models: list[str], new: Any, cost_scale: float, source: str
          ) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[str], int]:
    """The merged outcome table: (scores, costs) (n_old + n_added, m'), the rows of
    ``new`` that are new prompts, the model list (new models appended), cells filled."""
    models = list(old_models) + [m for m in new.model_names if m not in old_models]
    col = {m: j for j, m in enumerate(models)}
    index = {pid: i for i, pid in enumerate(old_ids)}
    known = np.array([str(pid) in index for pid in new.ids], dtype=bool)
    added = np.flatnonzero(~known)
    n_old, m_new = len(old_ids), len(models)
    scores = np.full((n_old + len(added), m_new), np.nan)
    costs = np.full_like(scores, np.nan)
    scores[:n_old, :len(old_models)] = old_scores
    costs[:n_old, :len(old_models)] = old_costs
    rows = np.where(known, [index.get(str(pid), -1) for pid in new.ids], 0)
    rows[added] = n_old + np.arange(len(added))
    filled = 0
    for j_new, name in enumerate(new.model_names):
        j = col[name]
        given = ~np.isnan(new.scores[:, j_new])
        clash = given & known & ~np.isnan(scores[rows, j])
        if clash.any():
            at = int(np.flatnonzero(clash)[0])
            raise DataError(f"prompt {new.ids[at]!r} already has an outcome for model "
                            f"{name!r} in this router: an update never overwrites one",
                            source=source, row=at, column=f"score:{name}")
        scores[rows[given], j] = new.scores[given, j_new]
        costs[rows[given], j] = new.costs[given, j_new] / cost_scale
        filled += int((given & known).sum())
    return scores, costs, added, models, filled


def update(folder: str | Path, outcomes: str | Path) -> UpdateReport:
    """Adds ``outcomes`` to the saved router in ``folder`` (see the module doc)."""
    from routeharness.data.cards import CardModel
    from routeharness.data.dataset import ModelInfo
    from routeharness.deploy.saved import UpdateEntry
    from routeharness.routers.base import tags_of

    folder = Path(folder)
    current = saved.load(folder)
    label = current.manifest.router.label
    if not tags_of(current.router).updatable:
        raise RouteHarnessError(f"router {label!r} learns parameters from its training data: "
                                "new outcomes need a refit (routeharness fit on the data "
                                "with them added); only lookup routers (knn) are updated")
    new = read_outcomes(outcomes)
    ids = read_ids(folder)
    old_scores, old_costs = current.router.outcome_table()
    if len(ids) != old_scores.shape[0]:
        raise RouteHarnessError(f"{folder / IDS_FILE}: {len(ids)} ids for a table of "
                                f"{old_scores.shape[0]} training prompts")
    scores, costs, added, models, filled = merge(
        old_scores, old_costs, ids, [m.name for m in current.models], new,
        current.cost_scale, str(outcomes))
    if not len(added) and not filled:
        raise RouteHarnessError(f"{outcomes}: nothing new (no unknown prompt and no missing "
                                "cell filled)")
    X_new = _vectors(current, new, added)
    current.router.update_outcomes(X_new, scores, costs)
    new_models = models[len(current.models):]
    current.models = list(current.models) + [ModelInfo(name) for name in new_models]
    report = UpdateReport(len(added), new_models, filled, len(ids) + len(added))
    manifest = current.manifest
    entry = UpdateEntry(**report.to_dict(), source=str(outcomes),
                        at=datetime.now(timezone.utc).isoformat(timespec="seconds"))
    # checked as a whole by save (RouterManifest) before anything is written
    current.manifest = manifest.model_copy(update={
        "models": [CardModel.model_validate(m.to_dict()) for m in current.models],
        "updates": [*manifest.updates, entry],
        "training": manifest.training.model_copy(update={
            "n_train": report.n_train, "validation_points_before_updates": True})})
    all_ids = ids + [str(new.ids[i]) for i in added]
    tmp = Path(tempfile.mkdtemp(dir=folder.parent, prefix=f".{folder.name}.update."))
    try:
        target = tmp / "router"
        current.train_ids = all_ids
        saved.save(current, target)
        old = tmp / "old"
        folder.rename(old)
        target.rename(folder)
    except BaseException:
        if not folder.exists() and (tmp / "old").exists():
            (tmp / "old").rename(folder)
        raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return report


def _vectors(current: Any, new: Any, added: np.ndarray) -> np.ndarray:
    """The new prompts' vectors: their ``embedding`` column, or the saved encoder's."""
    if not len(added):
        return np.zeros((0, current.manifest.encoder.dimension), np.float32)
    if current.manifest.encoder.name == "precomputed" or new.embeddings is not None:
        if new.embeddings is None:
            raise RouteHarnessError("this router routes the dataset's own vectors: the new "
                                    "outcomes need an \"embedding\" column")
        return np.asarray(new.embeddings[added], dtype=np.float32)
    texts = new.subset(added).texts_to_embed()
    return np.asarray(current.encoder().encode(texts), dtype=np.float32)


def read_ids(folder: Path) -> list[str]:
    """The saved router's training prompt ids, in its table's row order."""
    import json

    path = folder / IDS_FILE
    try:
        ids = json.loads(path.read_text("utf-8"))
    except FileNotFoundError:
        raise RouteHarnessError(f"{path}: missing (saved by routeharness fit; an update "
                                "matches new outcomes to training prompts by id)") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise RouteHarnessError(f"{path}: not a JSON list of ids ({exc})") from None
    if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
        raise RouteHarnessError(f"{path}: not a JSON list of ids")
    return ids
