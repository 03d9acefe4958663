"""The canonical column schema of a routing dataset split, shared by the data classes
(``routeharness.data``), the reader (``routeharness.dataio``) and the validation
(``routeharness.validation``): split and column names, and the helpers that read columns
out of a ``pyarrow.Table``."""

from __future__ import annotations

import hashlib
import unicodedata
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np

SPLITS = ("train", "validation", "test")
SCORE_PREFIX = "score:"
COST_PREFIX = "cost:"
REQUIRED_COLUMNS = ("id", "prompt", "group")
OPTIONAL_COLUMNS = ("image", "embed_text", "split")


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


#: Unicode categories that show nothing: control (ESC, newline), format (the zero-width
#: space U+200B, bidi marks), surrogates, and the line and paragraph separators
_HIDDEN = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})
#: letters and symbols that render as blank (Hangul fillers, the braille blank)
_BLANK_LOOKING = frozenset("\u115f\u1160\u3164\uffa0\u2800")


def is_blank(text: str) -> bool:
    """True when ``text`` shows nothing: empty, whitespace, or only invisible characters
    (the zero-width space U+200B and other format or control characters, separators)."""
    return all(ch.isspace() or ch in _BLANK_LOOKING
               or unicodedata.category(ch) in _HIDDEN | {"Zs"} for ch in text)


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
