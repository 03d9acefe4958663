"""``study locality``: is model performance local in embedding space? On each task's
training prompts under one encoder: seeded random pairs (distance against outcome
agreement, by decile, against a shuffled-pairing null band), each prompt's nearest
neighbour against a random one, exact duplicates apart, and the intrinsic dimension
(``routeharness.study.locality`` computes; this module runs it on tasks).
``results[task]``: ``Locality.to_dict()``."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from routeharness.embedding.embed import EmbeddedTask
from routeharness.results.tables import ReportTable, fmt
from routeharness.study.common import StudySettings
from routeharness.study.record import StudyResult
from routeharness.study.runs import prepare

DEFAULT_PAIRS = 20000


def measure(embedded: EmbeddedTask, *, n_pairs: int = DEFAULT_PAIRS, seed: int = 0,
            n_bootstrap: int = 1000, images: bool = False) -> dict[str, Any]:
    """The locality statistics of one embedded task's training split. Two prompts are
    duplicates when their text is the same, or, when the encoder sees ``images``, their
    text and image bytes (BlindTest asks one question of many images)."""
    from routeharness.embedding.cache import input_keys
    from routeharness.study.locality import locality

    train = embedded.task.splits["train"]
    texts = train.texts_to_embed()
    if images and train.has_images:
        texts = [key.hex() for key in input_keys(texts, train.images)]
    return locality(embedded.X["train"], train.scores, texts,
                    n_pairs=n_pairs, seed=seed, n_bootstrap=n_bootstrap).to_dict()


def sees_images(encoder: Any) -> bool:
    return "image" in getattr(encoder, "modalities", ())


def run(tasks: Sequence[str], *, encoder: str | None = None, n_pairs: int = DEFAULT_PAIRS,
        settings: StudySettings | None = None) -> StudyResult:
    """Locality of every task's training prompts under ``encoder``."""
    settings = settings or StudySettings()
    seed = settings.protocol.seeds[0]
    enc, embedded_tasks = prepare(tasks, encoder, data_dir=settings.data_dir,
                                  cache_dir=settings.cache_dir, reporter=settings.reporter,
                                  task_options=settings.task_options)
    result = StudyResult.new("locality", {"tasks": list(tasks), "encoder": enc.name,
                                          "n_pairs": n_pairs, "seed": seed})
    result.add_encoder(enc)
    for embedded in embedded_tasks:
        result.add_task(embedded.task)
        settings.reporter.log(f"locality of {embedded.task.name} ({enc.name})")
        result.results[embedded.task.name] = measure(
            embedded, n_pairs=n_pairs, seed=seed, n_bootstrap=settings.paired_bootstrap,
            images=sees_images(enc))
    return result


def _interval(values: Any) -> str:
    if not values or None in values:
        return "not measured in this file"
    return f"[{fmt(values[0], digits=3)}, {fmt(values[1], digits=3)}]"


def summary_row(task: str, loc: dict[str, Any]) -> list[str]:
    """One task's headline numbers as table cells (``SUMMARY_HEADERS``). A file written
    before issue 19 has pairs drawn with replacement, "the same best model" by argmax
    (ties to the first column, marked ``*``) and no interval over prompts."""
    ci = loc.get("spearman_ci95") or [None, None]
    dims = {d["estimator"] + (f" k={d['k']}" if d["estimator"] != "twonn" else ""): d["value"]
            for d in loc.get("dimensions", [])}
    old = "best_rule" not in loc
    mark = "*" if old else ""
    pairs = str(loc.get("n_pairs")) + ("" if old else f" of {loc.get('n_pairs_possible')}")
    difference = (f"{fmt(loc.get('nn_minus_random'), digits=3)} "
                  f"{_interval(loc.get('nn_minus_random_ci95'))}; null "
                  f"{fmt(loc.get('nn_minus_random_null_low'), digits=3)} to "
                  f"{fmt(loc.get('nn_minus_random_null_high'), digits=3)}")
    best = (f"{fmt(loc.get('nn_best_same'), digits=3)}{mark} vs "
            f"{fmt(loc.get('random_best_same'), digits=3)}{mark}")
    if not old:
        best += (f"; chance {fmt(loc.get('nn_best_same_null'), digits=3)}, null band of the "
                 f"difference {fmt(loc.get('nn_best_minus_random_null_low'), digits=3)} to "
                 f"{fmt(loc.get('nn_best_minus_random_null_high'), digits=3)}")
    return [task, pairs, str(loc.get("n_duplicate_pairs")),
            f"{fmt(loc.get('spearman'), digits=3)} [{fmt(ci[0], digits=3)}, "
            f"{fmt(ci[1], digits=3)}]",
            fmt(loc.get("nn_agreement"), digits=3), fmt(loc.get("random_agreement"), digits=3),
            difference, best,
            ", ".join(f"{k} {fmt(v, digits=1)}" for k, v in dims.items()) or "-"]


SUMMARY_HEADERS = ["task", "distinct pairs", "duplicate pairs",
                   "Spearman(distance, agreement) [95% CI over pairs]",
                   "agreement: nearest", "agreement: random",
                   "nearest - random [95% CI over prompts]; null band",
                   "share a best model: nearest vs random", "intrinsic dimension"]


SUMMARY_NOTE = (
    "pairs: distinct, drawn without replacement; pairs with identical prompt text are "
    "counted apart and left out of every other number; nearest: each prompt's nearest "
    "other training prompt; its interval is a bootstrap over the query prompts, the null "
    "band the difference when score rows are shuffled across prompts (the verdict reads "
    "these; Spearman's interval over pairs is too narrow: context only); a best model is "
    "shared when the prompts' sets of best models intersect (ties kept), chance: the "
    "nearest pairs' share under the shuffles")
OLD_NOTE = ("; * a file written before issue 19: pairs drawn with replacement, the same "
            "best model by argmax (ties to the first column), no interval over prompts")


def tables(result: StudyResult) -> list[ReportTable]:
    """The headline table (one row per task) and each task's decile table."""
    head = ReportTable(f"locality of outcomes in embedding space ({result.params.get('encoder')})",
                       SUMMARY_HEADERS, right=set(range(1, 6)))
    out = [head]
    for task, loc in result.results.items():
        head.add(summary_row(task, loc))
        deciles = ReportTable(f"{task}: outcome agreement by distance decile",
                              ["decile", "distance", "agreement", "null band (95%)",
                               "against the band", "shares a best model", "pairs"],
                              right={1, 2, 3, 5, 6})
        for row in loc.get("deciles", []):
            side = ("above" if row["agreement"] > row["null_high"] else
                    "below" if row["agreement"] < row["null_low"] else "inside")
            deciles.add([str(row.get("decile", "-")),
                         f"{row['distance_low']:.3f}-{row['distance_high']:.3f}",
                         fmt(row["agreement"], digits=3),
                         f"{row['null_low']:.3f}-{row['null_high']:.3f}", side,
                         fmt(row["best_same"], digits=3), str(row["n"])],
                        None if side == "inside" else "bold")
        deciles.note = ("null band: the decile's mean agreement when score rows are shuffled "
                        "across prompts (local outcomes: above it for near pairs, below for far)")
        out.append(deciles)
    head.note = (SUMMARY_NOTE + (OLD_NOTE if any("best_rule" not in loc for loc in
                                                 result.results.values()) else ""))
    return out


def plot(result: StudyResult, path: str | Path) -> Path:
    """Agreement by distance decile against the null band, one panel per task."""
    from routeharness.study.figures import deciles

    return deciles({task: loc["deciles"] for task, loc in result.results.items()}, path)
