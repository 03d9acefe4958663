"""VL-RouterBench (Huang et al., arXiv 2512.23562; github yichengtan0729-boop/VL-RouterBench),
docs/formats/vl-routerbench.md: the benchmark folder its pipeline builds from VLMEvalKit
outputs (steps 1 and 2 of ``scripts/run_all.sh``):

- ``BENCHMARKS/<task>/<dataset>_samples.jsonl``: ``sample_id``, ``dataset``, ``prompt``,
  ``assets`` (``{"type": "image", "uri": PATH}`` or ``{"type": "image_tsv", "tsv_file":
  PATH, "index": ROW}``, a base64 image in VLMEvalKit's TSV);
- ``ORACLE/score/<dataset>.parquet``: ``sample_id``, ``model_id``, ``quality`` (0/1);
- ``SPLITS/{train,dev,test}.jsonl``: ``{"sample_id": ...}`` (the source's own split);
- ``reports/token_statistics/token_based_costs.csv`` (optional): ``sample_id``, ``model``,
  ``total_cost`` (USD: tokens x ``config/pricing.yaml``, computed upstream).

Written from ``tools/build_benchmark_from_vlmevalkit.py``, ``routers/utils/benchmarks_data.py``
and ``tools/validate_data_integrity.py`` at commit c606d14; the cost file's ``sample_id``
column is assumed (the code read names only ``model`` and ``total_cost``); not checked
against a real file.
"""

from __future__ import annotations

import base64
import binascii
import csv
import math
from pathlib import Path
from typing import Any

from routeharness.common.errors import DataError, one_line
from routeharness.data.importers.common import (
    Imported,
    WrongFormat,
    read_csv_rows,
    read_jsonl,
    read_parquet,
    require_object,
    shown,
    text_field,
)
from routeharness.data.raw import read_bytes, regular_file

NAME = "vl-routerbench"
DOC = "docs/formats/vl-routerbench.md"
EXPECTED = "VL-RouterBench's benchmark folder (BENCHMARKS/, ORACLE/score/, SPLITS/)"
SPLIT_FILES = {"train": "train.jsonl", "validation": "dev.jsonl", "test": "test.jsonl"}
COSTS = Path("reports") / "token_statistics" / "token_based_costs.csv"
#: VLMEvalKit stores an image once; a cell of at most this many characters names the
#: ``index`` of the row that holds it
_REFERENCE_LENGTH = 64


def looks_like(source: Path) -> bool:
    return source.is_dir() and (source / "ORACLE" / "score").is_dir()


def _resolve(source: Path, written: str, folders: tuple[str, ...]) -> Path | None:
    """A file named by the source: as written (relative to SOURCE), else its base name
    in one of SOURCE's ``folders`` (upstream paths are absolute on the builder's
    machine)."""
    path = Path(written)
    candidates = [path if path.is_absolute() else source / path]
    candidates += [source / folder / path.name for folder in folders]
    return next((c for c in candidates if c.is_file()), None)


class _Tsv:
    """VLMEvalKit's TSV files of base64 images, read once each: row -> image bytes."""

    def __init__(self, source: Path):
        self.source = source
        self.files: dict[Path, tuple[list[str], dict[str, int]]] = {}

    def _load(self, path: Path) -> tuple[list[str], dict[str, int]]:
        if path not in self.files:
            regular_file(path)
            csv.field_size_limit(2**31 - 1)
            images: list[str] = []
            index_of: dict[str, int] = {}
            try:
                with open(path, newline="", encoding="utf-8-sig") as handle:
                    reader = csv.DictReader(handle, delimiter="\t")
                    if "image" not in (reader.fieldnames or []):
                        raise DataError("no column 'image': not VLMEvalKit's TSV of images",
                                        source=str(path))
                    for row, record in enumerate(reader):
                        images.append(record.get("image") or "")
                        if record.get("index"):
                            index_of.setdefault(record["index"], row)
            except (csv.Error, UnicodeDecodeError) as exc:
                raise DataError(f"cannot read the TSV: {one_line(exc)}",
                                source=str(path)) from None
            self.files[path] = (images, index_of)
        return self.files[path]

    def image(self, written: str, row: Any, where: str, at: int) -> bytes:
        path = _resolve(self.source, written, ("TSV_images", "vlm_router_data/TSV_images"))
        if path is None:
            raise DataError(f"image TSV {written!r} not found (looked as written and in "
                            "TSV_images/)", source=where, row=at)
        images, index_of = self._load(path)
        if isinstance(row, bool) or not isinstance(row, int) or not 0 <= row < len(images):
            raise DataError(f"image_tsv index {shown(row)} is not a row of {path} "
                            f"({len(images)} rows)", source=where, row=at)
        cell = images[row]
        if len(cell) <= _REFERENCE_LENGTH and cell in index_of:
            cell = images[index_of[cell]]
        try:
            return base64.b64decode(cell, validate=True)
        except (binascii.Error, ValueError):
            raise DataError(f"row {row} of {path} holds no base64 image", source=where,
                            row=at) from None


def _image(assets: Any, source: Path, tsv: _Tsv, where: str, row: int) -> tuple[Any, int]:
    """The first image asset as ``{"bytes", "path"}`` (None without one), and the number
    of image assets."""
    if assets is None:
        return None, 0
    if not isinstance(assets, list):
        raise DataError(f"assets must be a list, got {shown(assets)}", source=where, row=row)
    images = [a for a in assets if isinstance(a, dict)
              and a.get("type") in ("image", "image_tsv")]
    if not images:
        return None, 0
    first = images[0]
    if first["type"] == "image":
        uri = first.get("uri") or first.get("path")
        if not isinstance(uri, str) or not uri:
            raise DataError("an image asset without a uri", source=where, row=row)
        path = _resolve(source, uri, ("images", "vlm_router_data/images"))
        if path is None:
            raise DataError(f"image {uri!r} not found (looked as written and in images/)",
                            source=where, row=row)
        return {"bytes": read_bytes(path), "path": None}, len(images)
    tsv_file = first.get("tsv_file")
    if not isinstance(tsv_file, str):
        raise DataError("an image_tsv asset without tsv_file", source=where, row=row)
    return {"bytes": tsv.image(tsv_file, first.get("index"), where, row),
            "path": None}, len(images)


def read(source: Path) -> Imported:
    if not source.is_dir():
        raise WrongFormat(f"expected {EXPECTED}", source=str(source))
    score_dir, bench_dir = source / "ORACLE" / "score", source / "BENCHMARKS"
    for folder in (score_dir, bench_dir):
        if not folder.is_dir():
            raise WrongFormat(f"no {folder.relative_to(source)}/ folder: expected {EXPECTED}",
                              source=str(source))
    imported = Imported(format=NAME, source=str(source),
                        cost_field="reports/token_statistics/token_based_costs.csv total_cost",
                        cost_described=("the USD per call the source computed (tokens x its "
                                        "config/pricing.yaml, estimated prices by model size): "
                                        "total_cost of reports/token_statistics/"
                                        "token_based_costs.csv"))
    imported.description = ("VL-RouterBench (Huang et al. 2025): image + question samples "
                            "from 14 VLMEvalKit benchmarks, each VLM's 0/1 correctness, "
                            "imported")
    imported.license = "MIT (VL-RouterBench repository)"
    imported.built_from = ("https://github.com/yichengtan0729-boop/VL-RouterBench (BENCHMARKS/, "
                           "ORACLE/score/, SPLITS/ built from vlm_router_data.tar.gz)")
    samples: dict[str, tuple[dict[str, Any], str, int]] = {}
    for path in sorted(bench_dir.rglob("*_samples.jsonl")):
        for row, record in read_jsonl(path, "VL-RouterBench samples (sample_id, prompt, "
                                      "assets)", DOC):
            record = require_object(record, str(path), row, "a sample")
            sample_id = text_field(record, "sample_id", str(path), row, "sample")
            if sample_id in samples:
                raise DataError(f"sample {sample_id!r} given twice (first at "
                                f"{samples[sample_id][1]}, row {samples[sample_id][2]})",
                                source=str(path), row=row)
            samples[sample_id] = (record, str(path), row)
    splits: dict[str, str] = {}
    split_dir = source / "SPLITS"
    if split_dir.is_dir():
        for split, name in SPLIT_FILES.items():
            path = split_dir / name
            if not path.is_file():
                continue
            for row, record in read_jsonl(path, "a VL-RouterBench split ({\"sample_id\"})",
                                          DOC):
                record = require_object(record, str(path), row, "a split entry")
                sample_id = text_field(record, "sample_id", str(path), row, "split entry")
                if splits.setdefault(sample_id, split) != split:
                    raise DataError(f"sample {sample_id!r} is in {splits[sample_id]} and "
                                    f"{split}", source=str(path), row=row)
        imported.own_splits = "SPLITS/train.jsonl, dev.jsonl (validation), test.jsonl"
    costs: dict[tuple[str, str], tuple[float, tuple[str, int]]] = {}
    if (source / COSTS).is_file():
        path = source / COSTS
        for row, record in read_csv_rows(path, "VL-RouterBench's token_based_costs.csv "
                                         "(sample_id, model, total_cost)", DOC,
                                         required=("sample_id", "model", "total_cost")):
            try:
                value = float(record["total_cost"])
            except ValueError:
                value = math.nan
            if not math.isfinite(value) or value < 0:
                raise DataError(f"total_cost must be a number >= 0, got "
                                f"{record['total_cost'][:40]!r}", source=str(path), row=row)
            costs[(record["sample_id"], record["model"])] = (value, (str(path), row))
    tsv = _Tsv(source)
    rows_of: dict[str, int] = {}
    unsplit = extra_images = 0
    for path in sorted(score_dir.glob("*.parquet")):
        table = read_parquet(path, "VL-RouterBench scores (sample_id, model_id, quality)", DOC)
        where = str(path)
        for column in ("sample_id", "model_id"):
            if column not in table.column_names:
                raise WrongFormat(f"no column {column!r}: not VL-RouterBench scores",
                                  source=where)
        quality = "quality" if "quality" in table.column_names else "quality_raw"
        if quality not in table.column_names:
            raise WrongFormat("no column 'quality': not VL-RouterBench scores", source=where)
        ids = table.column("sample_id").to_pylist()
        models = table.column("model_id").to_pylist()
        values = table.column(quality).to_pylist()
        for row, (sample_id, model, value) in enumerate(zip(ids, models, values)):
            if not isinstance(sample_id, str) or not isinstance(model, str):
                raise DataError("sample_id and model_id must be text", source=where, row=row)
            if split_dir.is_dir() and sample_id not in splits:
                unsplit += 1
                continue
            if sample_id not in rows_of:
                if sample_id not in samples:
                    raise DataError(f"sample {sample_id!r} has scores but is in no "
                                    "BENCHMARKS/*_samples.jsonl", source=where, row=row)
                record, sample_file, sample_row = samples[sample_id]
                prompt = record.get("prompt") or ""
                if not isinstance(prompt, str):
                    raise DataError(f"prompt must be text, got {shown(prompt)}",
                                    source=sample_file, row=sample_row)
                image, count = _image(record.get("assets"), source, tsv, sample_file,
                                      sample_row)
                extra_images += count > 1
                group = record.get("dataset") or sample_id.split("/", 1)[0]
                rows_of[sample_id] = imported.add_row(
                    sample_id, prompt, str(group), (sample_file, sample_row),
                    split=splits.get(sample_id), image=image)
            i = rows_of[sample_id]
            if value is None or (isinstance(value, float) and math.isnan(value)):
                imported.set_cell(i, model, None, (where, row))
                continue
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise DataError(f"{quality} must be a number, got {shown(value)}",
                                source=where, row=row)
            cost = costs.get((sample_id, model))
            imported.set_cell(i, model, float(value), cost[1] if cost else (where, row),
                              cost=cost[0] if cost else None)
    if unsplit:
        imported.notes.append(f"{unsplit} score rows of samples in no SPLITS file skipped")
    if extra_images:
        imported.notes.append(f"{extra_images} samples have several images: the first is "
                              "kept (the dataset format holds one image per prompt)")
    if not costs:
        imported.notes.append(f"no {COSTS} in the source")
    return imported
