"""``routeharness update``: new evaluations added to a saved router without retraining.

The paper's maintenance argument: if performance is local in embedding space, a kNN
router is kept current by adding rows to its lookup table. A router that can
(``Tags.updatable``: ``outcome_table()`` and ``update_outcomes(X_new, scores, costs)``)
takes two kinds of new outcomes, in one file of the canonical columns (``id``, ``prompt``,
``group``, ``score:<model>``, ``cost:<model>``, and ``embedding`` for a router fitted on
the dataset's own vectors; validated as any dataset is, ``split`` absent or ``train``):

- new prompts (ids the router was not fitted on) for any models of the pool: appended;
- a new model (a ``score:``/``cost:`` pair the pool lacks), evaluated on some prompts:
  a column added, its outcomes on known ids filled in, every other cell missing (never 0).

Refused, in one line naming the file, row and column: a cell the router already holds
(never overwritten); a known id whose text, group or vector is not the saved one
(``train_ids.json`` keeps their hashes), unless ``replace``: then that row's text,
group, vector and every outcome are replaced (``update_outcomes(..., rows=, X_rows=)``);
a known id naming the same prompt only fills missing cells, with or without it; an
``embedding`` column on a router with an encoder, or of another dimension; a row without
any outcome. Costs are normalised by the cost scale saved at fit time. Parametric routers
are refused with the advice to refit.

The report gives each model's coverage (outcomes / training prompts); a model under
``RELIABLE_COVERAGE`` is warned about in one line (``SparseModelWarning``).

Safe under kills and concurrency (``routeharness.common.folders``): the router's lock is
held from reading the folder to the swap (another update waits up to ``wait_s`` seconds,
then is refused in one line); the new folder is built beside the old one and exchanged
with it in one step, so the path holds the old or the new router at every instant; a
swap a kill interrupted is finished or rolled back by the next command that opens the
router; through a symlink the folder it points to is replaced and the link stays.
``migrate`` rewrites a folder saved before manifests had a checksum, adding it.
"""

from __future__ import annotations

import dataclasses
import warnings
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from routeharness.common.errors import DataError, RouteHarnessError
from routeharness.deploy import saved
from routeharness.deploy.saved import IDS_FILE

#: how long an update waits for another one on the same router, in seconds
LOCK_WAIT_S = 120.0
#: a model with outcomes on fewer than this share of the training prompts is too sparse to
#: route on reliably: ``update`` warns (``SparseModelWarning``). At 5% coverage kNN with
#: k = 100 finds about 5 of its outcomes among a prompt's neighbours, and its estimate
#: rests mostly on the model's mean (benchmarks/maintenance.md)
RELIABLE_COVERAGE = 0.10


class SparseModelWarning(UserWarning):
    """An update left a model with outcomes on fewer than ``RELIABLE_COVERAGE`` of the
    training prompts."""


@dataclass(frozen=True)
class UpdateReport:
    """What an update added: prompts appended, models added, cells filled on known ids,
    known prompts replaced (``replace``); ``migrated``: a checksum was added."""

    new_prompts: int
    new_models: list[str]
    filled_cells: int
    n_train: int
    replaced_prompts: int = 0
    migrated: bool = False
    #: each model's outcomes in the updated table (model -> count of its n_train prompts)
    outcomes: dict[str, int] = dataclasses.field(default_factory=dict)

    def coverage(self) -> dict[str, float]:
        """Each model's share of the training prompts with an outcome."""
        return {m: c / self.n_train if self.n_train else 0.0 for m, c in self.outcomes.items()}

    def sparse(self) -> list[str]:
        """The models below ``RELIABLE_COVERAGE``."""
        return [m for m, share in self.coverage().items() if share < RELIABLE_COVERAGE]

    def to_dict(self) -> dict[str, Any]:
        return {"new_prompts": self.new_prompts, "new_models": list(self.new_models),
                "filled_cells": self.filled_cells, "n_train": self.n_train,
                "replaced_prompts": self.replaced_prompts}


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


def update(folder: str | Path, outcomes: str | Path | None = None, *, replace: bool = False,
           migrate: bool = False, wait_s: float = LOCK_WAIT_S) -> UpdateReport:
    """Adds ``outcomes`` to the saved router in ``folder`` (see the module doc); with
    ``migrate`` (and no outcomes), adds the checksum an older folder lacks."""
    from routeharness.common.folders import folder_lock, real_folder, recover, swapped_folder

    folder = Path(folder)
    if outcomes is None and not migrate:
        raise RouteHarnessError("update: give a file of new outcomes (or --migrate)")
    new = read_outcomes(outcomes) if outcomes is not None else None
    real = real_folder(folder)
    if not real.parent.is_dir():
        raise RouteHarnessError(f"{folder}: not a saved router (a folder made by "
                                "routeharness fit)")
    with folder_lock(real, wait_s, "saved router"):
        recover(real)  # a killed update's swap: finished or rolled back, then removed
        with warnings.catch_warnings():  # a folder without a checksum gets one here
            warnings.simplefilter("ignore", saved.LegacyRouterWarning)
            current = saved.load(folder, recover=False)
        migrated = current.manifest.checksum is None
        if new is None:
            report = UpdateReport(0, [], 0, current.manifest.training.n_train,
                                  migrated=migrated)
            if not migrated:
                return report
        else:
            report = dataclasses.replace(_add(current, new, str(outcomes), replace, folder),
                                         migrated=migrated)
        with swapped_folder(real, "saved router") as work:
            saved.write_folder(current, work, where=str(folder / saved.MANIFEST))
    sparse = report.sparse()
    if sparse:
        shares = ", ".join(f"{m!r} {report.outcomes[m]} ({report.coverage()[m]:.1%})"
                           for m in sparse)
        warnings.warn(f"{folder}: too sparse to route on reliably (outcomes on under "
                      f"{RELIABLE_COVERAGE:.0%} of the {report.n_train} training prompts): "
                      f"{shares}; a router's estimate for such a model rests mostly on "
                      "its mean, not on the neighbours: add its outcomes on more prompts",
                      SparseModelWarning,
                      stacklevel=2)
    return report


def _add(current: Any, new: Any, source: str, replace: bool, folder: Path) -> UpdateReport:
    """``new`` merged into ``current`` (its router, models, rows and manifest updated in
    memory); what was added."""
    from routeharness.data.cards import CardModel
    from routeharness.data.dataset import ModelInfo
    from routeharness.deploy.saved import UpdateEntry, rows_of
    from routeharness.routers.base import tags_of

    label = current.manifest.router.label
    if not tags_of(current.router).updatable:
        raise RouteHarnessError(f"router {label!r} learns parameters from its training data: "
                                "new outcomes need a refit (routeharness fit on the data "
                                "with them added); only lookup routers (knn) are updated")
    rows = current.rows
    if rows is None:
        raise RouteHarnessError(f"{folder / IDS_FILE}: missing (saved by routeharness fit; an "
                                "update matches new outcomes to training prompts by id)")
    old_scores, old_costs = current.router.outcome_table()
    if len(rows) != old_scores.shape[0]:
        raise RouteHarnessError(f"{folder / IDS_FILE}: {len(rows)} ids for a table of "
                                f"{old_scores.shape[0]} training prompts")
    precomputed = current.manifest.encoder.name == "precomputed"
    _check_vectors(current, new, source, precomputed)
    empty = np.isnan(new.scores).all(axis=1)
    if empty.any():
        at = int(np.flatnonzero(empty)[0])
        raise DataError(f"prompt {new.ids[at]!r} has no outcome (every score cell is empty): "
                        "an update adds outcomes", source=source, row=at,
                        column=f"score:{new.model_names[0]}")
    new_rows = rows_of(new, new.embeddings if precomputed else None)
    index = {pid: i for i, pid in enumerate(rows.ids)}
    known = np.array([pid in index for pid in new_rows.ids], dtype=bool)
    at_known = np.flatnonzero(known)
    replaced = _differing(rows, new_rows, at_known, [index[new_rows.ids[i]] for i in at_known],
                          source, replace, folder)
    if len(replaced):  # their old outcomes were another prompt's: all go
        targets = [index[new_rows.ids[i]] for i in replaced]
        old_scores, old_costs = old_scores.copy(), old_costs.copy()
        old_scores[targets], old_costs[targets] = np.nan, np.nan
    scores, costs, added, models, filled = merge(
        old_scores, old_costs, rows.ids, [m.name for m in current.models], new,
        current.cost_scale, source)
    filled -= int((~np.isnan(new.scores[replaced])).sum())
    if not len(added) and not filled and not len(replaced):
        raise RouteHarnessError(f"{source}: nothing new (no unknown prompt and no missing "
                                "cell filled)")
    vectors = _vectors(current, new, np.concatenate([added, replaced]).astype(np.int64))
    X_new, X_rows = vectors[:len(added)], vectors[len(added):]
    if len(replaced):
        _replace_rows(current.router, label, X_new, scores, costs,
                      np.asarray([index[new_rows.ids[i]] for i in replaced], np.int64), X_rows)
    else:
        current.router.update_outcomes(X_new, scores, costs)
    new_models = models[len(current.models):]
    current.models = list(current.models) + [ModelInfo(name) for name in new_models]
    counts = (~np.isnan(scores)).sum(axis=0)
    report = UpdateReport(len(added), new_models, filled, len(rows) + len(added),
                          replaced_prompts=len(replaced),
                          outcomes={m: int(c) for m, c in zip(models, counts)})
    manifest = current.manifest
    entry = UpdateEntry(**report.to_dict(), source=source,
                        at=datetime.now(timezone.utc).isoformat(timespec="seconds"))
    # checked as a whole (RouterManifest) before anything is written
    current.manifest = manifest.model_copy(update={
        "models": [CardModel.model_validate(m.to_dict()) for m in current.models],
        "updates": [*manifest.updates, entry],
        "training": manifest.training.model_copy(update={
            "n_train": report.n_train, "validation_points_before_updates": True})})
    kept = rows.replaced([index[new_rows.ids[i]] for i in replaced], new_rows.take(replaced))
    current.rows = kept.extended(new_rows.take(added))
    return report


def _check_vectors(current: Any, new: Any, source: str, precomputed: bool) -> None:
    """An ``embedding`` column only for a router fitted on the dataset's own vectors, of
    its dimension."""
    encoder = current.manifest.encoder
    if new.embeddings is None:
        return
    if not precomputed:
        raise DataError(f"this router embeds each prompt with its encoder ({encoder.spec!r}): "
                        "remove the embedding column (it would not be what the router "
                        "routes on)", source=source, column="embedding")
    width = new.embeddings.shape[1] if new.embeddings.ndim == 2 else 0
    if width != encoder.dimension:
        raise DataError(f"vectors of {width} dimensions; this router's are "
                        f"{encoder.dimension}-d", source=source, column="embedding")


def _differing(rows: Any, new_rows: Any, at_known: np.ndarray, targets: list[int],
               source: str, replace: bool, folder: Path) -> np.ndarray:
    """The rows of the file (positions) whose known id names another prompt than the
    router holds (text, group or vector, where recorded): refused in one line, or with
    ``replace`` returned (they replace the router's rows). Rows saved without their
    hashes are matched by id alone (warned)."""
    differ, unchecked = [], 0
    for i, row in zip(at_known.tolist(), targets):
        unchecked += rows.prompt_sha256[row] is None
        for key, column in (("prompt_sha256", "prompt"), ("groups", "group"),
                            ("embedding_sha256", "embedding")):
            held, given = getattr(rows, key)[row], getattr(new_rows, key)[i]
            if held is None or given is None or held == given:
                continue
            if not replace:
                raise DataError(f"prompt {new_rows.ids[i]!r} is known to this router with "
                                f"another {column} (row {row} of its table): give this "
                                "prompt a new id, or --replace to replace that row's "
                                f"{column} and outcomes", source=source, row=i, column=column)
            differ.append(i)
            break
    if unchecked:
        warnings.warn(f"{folder / IDS_FILE}: saved without its prompts' text hashes: "
                      f"{unchecked} known id(s) matched by id alone", UserWarning,
                      stacklevel=3)
    return np.asarray(differ, dtype=np.int64)


def _replace_rows(router: Any, label: str, X_new: np.ndarray, scores: np.ndarray,
                  costs: np.ndarray, rows: np.ndarray, X_rows: np.ndarray) -> None:
    import inspect

    parameters = inspect.signature(router.update_outcomes).parameters
    if not {"rows", "X_rows"} <= set(parameters):
        raise RouteHarnessError(f"router {label!r} cannot replace a prompt's row "
                                "(update_outcomes takes no rows=, X_rows=): refit it")
    router.update_outcomes(X_new, scores, costs, rows=rows, X_rows=X_rows)


def _vectors(current: Any, new: Any, which: np.ndarray) -> np.ndarray:
    """The vectors of rows ``which`` of ``new``: their ``embedding`` column (a router
    fitted on the dataset's own vectors), or the saved encoder's of their text."""
    if not len(which):
        return np.zeros((0, current.manifest.encoder.dimension), np.float32)
    if current.manifest.encoder.name == "precomputed":
        if new.embeddings is None:
            raise RouteHarnessError("this router routes the dataset's own vectors: the new "
                                    "outcomes need an \"embedding\" column")
        return np.asarray(new.embeddings[which], dtype=np.float32)
    texts = new.subset(which).texts_to_embed()
    return np.asarray(current.encoder().encode(texts), dtype=np.float32)
