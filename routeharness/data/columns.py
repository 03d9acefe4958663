"""The canonical column schema of a routing dataset split, shared by the data classes
(``routeharness.data.dataset``), the reader (``routeharness.data.readers``) and the validation
(``routeharness.data.validation``): split and column names, and the helpers that read columns
out of a ``pyarrow.Table``."""

from __future__ import annotations

import functools
import hashlib
import itertools
import json
import unicodedata
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

# the blank-text rule (``is_blank``) is the one text reader's
from routeharness.common.textinput import HIDDEN_CATEGORIES, is_blank

if TYPE_CHECKING:
    import numpy as np

SPLITS = ("train", "validation", "test")
SCORE_PREFIX = "score:"
COST_PREFIX = "cost:"
REQUIRED_COLUMNS = ("id", "prompt", "group")
OPTIONAL_COLUMNS = ("image", "embed_text", "embedding", "split")
#: the column of a dataset's own vectors (bring-your-own embeddings; see below)
EMBEDDING = "embedding"


def arrow_table(table: Any) -> Any:
    """The ``pyarrow.Table`` of a ``datasets.Dataset`` (honouring a selection) or a table."""
    if hasattr(table, "flatten_indices") and getattr(table, "_indices", None) is not None:
        table = table.flatten_indices()
    if hasattr(table, "data") and hasattr(table.data, "table"):
        return table.data.table
    return table


def model_names_of(columns: Sequence[str]) -> list[str]:
    """Model names in column order, from the ``score:<model>`` columns."""
    return [c[len(SCORE_PREFIX):] for c in columns if c.startswith(SCORE_PREFIX)]


def float_column(arrow: Any, name: str) -> np.ndarray:
    """A score or cost column as float64, NaN for nulls; TypeError/ValueError if a cell is
    not a number."""
    import numpy as np

    column = arrow.column(name)
    values = column.to_numpy(zero_copy_only=False)
    return np.asarray(values, dtype=np.float64)


#: Unicode categories that show nothing (control, format, surrogates, separators)
_HIDDEN = HIDDEN_CATEGORIES


def name_problem(name: str) -> str | None:
    """Why ``name`` cannot be a model or group name (None when it can): names are printed
    in tables and terminals and compared exactly, so no control or invisible format
    characters (ESC, newline, U+200B) and no leading or trailing whitespace."""
    for ch in name:
        if unicodedata.category(ch) in _HIDDEN:
            return f"holds the control or invisible character U+{ord(ch):04X}"
    if name != name.strip():
        return "has leading or trailing whitespace"
    return None


@functools.lru_cache(maxsize=1 << 14)
def group_problem(name: str | None) -> str | None:
    """Why a row's group (as text, None when missing) cannot be used; None when it can.
    Cached: a million rows hold a few group names."""
    if name is None or is_blank(name):
        return "missing group"
    why = name_problem(name)
    return f"group name {name!r} {why}" if why else None


def prompt_key(prompt: str, image: Any = None) -> str:
    """What makes two prompts "the same" for leak checks: the text, and the image where
    there is one (its path or a hash of its bytes), so that image tasks that reuse a few
    question templates are not flagged."""
    if image is None:
        return prompt
    if isinstance(image, dict):
        data = image.get("bytes")
        image = hashlib.sha256(data).hexdigest() if data else image.get("path")
    elif isinstance(image, (bytes, bytearray)):
        image = hashlib.sha256(image).hexdigest()
    elif hasattr(image, "tobytes"):
        image = hashlib.sha256(image.tobytes()).hexdigest()
    return f"{prompt}\x00{image}"


# --- the embedding column --------------------------------------------------------------
# A dataset's own vectors, read by the ``precomputed`` encoder (docs/dataset-format.md).
# A cell is a list of numbers: in CSV a JSON array written as text ("[0.12, -0.5, 3e-4]"),
# in JSON lines, parquet and ``datasets`` a list. Every row of every split has one, all of
# one dimension d >= 1, every number finite as float32. Reading and checking are one pass,
# so the validation and ``RoutingData.from_table`` agree; problems are ``(row, message)``
# pairs (0-based table rows) that ``routeharness.data.validation`` places in its errors.

Problem = tuple[int, str]


def _numeric_lists(kind: Any) -> bool:
    """An Arrow list type whose items are numbers (not booleans, not lists)."""
    import pyarrow as pa

    lists = (pa.types.is_list(kind) or pa.types.is_large_list(kind)
             or pa.types.is_fixed_size_list(kind))
    return lists and (pa.types.is_integer(kind.value_type)
                      or pa.types.is_floating(kind.value_type))


def read_embeddings(arrow: Any) -> tuple[np.ndarray | None, list[Problem]]:
    """The ``embedding`` column of a table -> (float32 (n, d), []) or (None, problems).

    Arrow lists of numbers (parquet, ``datasets``, JSON lines) are read without a Python
    loop (2 x 10^5 rows of 384 in 0.1 s on 2 cores); text cells (CSV) are parsed as JSON
    arrays row by row (about 3,000 rows of 384 a second). ``embedding_problems`` checks
    without building the matrix."""
    column = arrow.column(EMBEDDING)
    if _numeric_lists(column.type):
        return _from_arrow_lists(column.chunks)
    return _from_cells(column.to_pylist())


def _from_arrow_lists(chunks: Sequence[Any]) -> tuple[np.ndarray | None, list[Problem]]:
    """Each chunk's list lengths and flat values, joined: one copy for several chunks, a
    view of Arrow's read-only buffer for one (which ``_finish`` copies)."""
    import numpy as np
    import pyarrow.compute as pc

    def joined(parts: list[np.ndarray], dtype: Any) -> np.ndarray:
        if len(parts) == 1:
            return parts[0]
        return np.concatenate(parts) if parts else np.empty(0, dtype=dtype)

    missing = joined([c.is_null().to_numpy(zero_copy_only=False) for c in chunks], bool)
    lengths = joined([np.asarray(pc.list_value_length(c).fill_null(0).to_numpy(
        zero_copy_only=False), dtype=np.int64) for c in chunks], np.int64)
    flats = [pc.list_flatten(c) for c in chunks]
    values = joined([f.to_numpy(zero_copy_only=False) for f in flats], np.float32)
    null_values = (joined([f.is_null().to_numpy(zero_copy_only=False) for f in flats], bool)
                   if any(f.null_count for f in flats) else None)
    return _finish(values, lengths, missing, null_values)


def _from_cells(cells: list[Any]) -> tuple[np.ndarray | None, list[Problem]]:
    """Cells as Python values (text to parse, lists, anything else to refuse)."""
    import numpy as np

    problems: list[Problem] = []
    rows: list[list[float]] = []
    missing = np.zeros(len(cells), dtype=bool)
    for row, cell in enumerate(cells):
        vector, problem = _cell(cell)
        if problem is None and vector is None:
            missing[row] = True
        elif problem is not None:
            problems.append((row, problem))
        rows.append(vector or [])
    lengths = np.array([len(v) for v in rows], dtype=np.int64)
    flat = list(itertools.chain.from_iterable(rows))
    values = np.array(flat, dtype=np.float64)  # a null becomes NaN; told apart here
    null_values = None
    nans = np.flatnonzero(np.isnan(values))
    if nans.size:
        null_values = np.zeros(len(values), dtype=bool)
        null_values[nans] = [flat[i] is None for i in nans]
    if problems:  # a row that is not a list of numbers: no matrix, but report the rest too
        missing[[row for row, _ in problems]] = True
    found = _finish(values, lengths, missing, null_values, skip={r for r, _ in problems})
    return (None if problems else found[0]), sorted(problems + found[1])


def _cell(cell: Any) -> tuple[list[Any] | None, str | None]:
    """(numbers, None), (None, None) for a missing cell, or (None, why it is refused)."""
    if cell is None or (isinstance(cell, str) and not cell.strip()):
        return None, None
    if isinstance(cell, str):
        try:
            cell = json.loads(cell)
        except ValueError:
            shown = cell if len(cell) <= 40 else cell[:37] + "..."
            return None, f"embedding must be a JSON array of numbers, got {shown!r}"
    if not isinstance(cell, (list, tuple)):
        return None, (f"embedding must be a list of numbers, got {type(cell).__name__} "
                      f"{str(cell)[:40]!r}")
    for k, x in enumerate(cell):
        if x is not None and (isinstance(x, bool) or not isinstance(x, (int, float))):
            return None, f"embedding value {k} is {json.dumps(x)[:40]}, not a number"
        if isinstance(x, int) and abs(x) > 2 ** 128:  # beyond float32, and float64 may fail
            return None, (f"embedding value {k} has {len(str(abs(x)))} digits: every "
                          "number must be finite (within float32's range)")
    return list(cell), None


def _row_problems(lengths: np.ndarray, missing: np.ndarray, skip: set[int]
                  ) -> tuple[list[Problem], int]:
    """Rows missing a vector, empty, or of another length than the first: (problems, d)."""
    import numpy as np

    problems: list[Problem] = [(int(r), "missing embedding: every row needs a list of "
                                "numbers when the dataset has an embedding column")
                               for r in np.flatnonzero(missing) if int(r) not in skip]
    present = ~missing
    for r in np.flatnonzero(present & (lengths == 0)):
        problems.append((int(r), "empty embedding: a vector needs at least one number"))
    sized = np.flatnonzero(present & (lengths > 0))
    dimension = int(lengths[sized[0]]) if sized.size else 0
    for r in sized[lengths[sized] != dimension]:
        count = int(lengths[r])
        problems.append((int(r), f"embedding has {count} number{'s' * (count != 1)}, but row "
                                 f"{int(sized[0])} has {dimension}: one dimension for "
                                 "every row"))
    return problems, dimension


def _all_finite(values: np.ndarray) -> bool:
    """Every number finite as float32, without a mask of the array's size: a float64 sum
    of float32 numbers cannot overflow, so it is finite exactly when every number is."""
    import numpy as np

    with np.errstate(over="ignore", invalid="ignore"):
        as32 = values.astype(np.float32, copy=False).reshape(-1)
        return bool(np.isfinite(np.add.reduce(as32, dtype=np.float64)))


def embedding_problems(arrow: Any) -> list[Problem]:
    """The problems ``read_embeddings`` finds, without building the matrix when every
    number is present and finite (the validation's case: no copy of 10^6 vectors)."""
    import numpy as np
    import pyarrow.compute as pc

    column = arrow.column(EMBEDDING)
    if _numeric_lists(column.type):
        flats = [pc.list_flatten(c) for c in column.chunks]
        if not any(f.null_count for f in flats) and all(
                _all_finite(f.to_numpy(zero_copy_only=False)) for f in flats):
            missing = np.concatenate([np.zeros(0, bool)] + [
                c.is_null().to_numpy(zero_copy_only=False) for c in column.chunks])
            lengths = np.concatenate([np.zeros(0, np.int64)] + [np.asarray(
                pc.list_value_length(c).fill_null(0).to_numpy(zero_copy_only=False),
                dtype=np.int64) for c in column.chunks])
            return sorted(_row_problems(lengths, missing, set())[0])
    return read_embeddings(arrow)[1]


def _finish(values: np.ndarray, lengths: np.ndarray, missing: np.ndarray,
            null_values: np.ndarray | None, skip: set[int] | None = None
            ) -> tuple[np.ndarray | None, list[Problem]]:
    """Check rows given as flat values and per-row lengths (0 for a missing row);
    ``null_values`` marks nulls inside the lists (None: there are none)."""
    import numpy as np

    skip = skip or set()
    problems, dimension = _row_problems(lengths, missing, skip)
    with np.errstate(over="ignore", invalid="ignore"):
        as32 = values.astype(np.float32, copy=False)
    clean = null_values is None and _all_finite(as32)
    bad = np.empty(0, dtype=np.int64) if clean else np.flatnonzero(
        ~np.isfinite(as32) if null_values is None else ~np.isfinite(as32) | null_values)
    if bad.size:
        starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
        owner = np.repeat(np.arange(len(lengths)), lengths)
        reported: set[int] = set()
        for index in bad:
            row = int(owner[index])
            if row in reported or row in skip or missing[row]:
                continue
            reported.add(row)
            k = int(index - starts[row])
            null = null_values is not None and null_values[index]
            value = "null" if null else repr(float(values[index]))
            problems.append((row, f"embedding value {k} is {value}: every number must be "
                                  "finite (within float32's range)"))
    if problems or missing.any():  # rows refused before (``skip``) are missing too
        return None, sorted(problems)
    if not as32.flags.writeable:  # a view of Arrow's buffer: routers may write to theirs
        as32 = as32.copy()
    return as32.reshape(len(lengths), dimension), []


def dimension_of(arrow: Any) -> int | None:
    """The dimension of a checked table's embeddings (its first row's), None without the
    column: enough to compare splits once each split was checked on its own."""
    if EMBEDDING not in arrow.column_names or len(arrow) == 0:
        return None
    first = arrow.column(EMBEDDING).slice(0, 1).to_pylist()[0]
    if isinstance(first, str):
        first = json.loads(first)
    return len(first) if isinstance(first, (list, tuple)) else None


def split_problems(tables: Mapping[str, Any]) -> list[tuple[str, str]]:
    """``(split, message)`` for each checked split whose embeddings disagree with the
    first split that has them: no column where another split has one, or another
    dimension."""
    dimensions = {split: dimension_of(table) for split, table in tables.items()}
    having = [split for split, d in dimensions.items() if d is not None]
    if not having:
        return []
    first = having[0]
    out = []
    for split, d in dimensions.items():
        if d is None:
            out.append((split, f"no {EMBEDDING!r} column, but split {first!r} has one: "
                               "every row of every split needs an embedding"))
        elif d != dimensions[first]:
            out.append((split, f"embeddings of dimension {d}, but split {first!r} has "
                               f"{dimensions[first]}: one dimension for the whole dataset"))
    return out


def embedding_array(X: np.ndarray) -> Any:
    """A float32 (n, d) matrix as an Arrow ``list<float>`` column, without a Python loop
    (what ``write_task`` stores)."""
    import numpy as np
    import pyarrow as pa

    X = np.ascontiguousarray(X, dtype=np.float32)
    n, d = X.shape
    large = n * d >= 2 ** 31  # 32-bit offsets hold up to 2^31 - 1 numbers
    offsets = pa.array(np.arange(0, n * d + 1, d, dtype=np.int64 if large else np.int32))
    kind = pa.LargeListArray if large else pa.ListArray
    return kind.from_arrays(offsets, pa.array(X.reshape(-1)))
