"""Report tables as plain data: every table the harness prints (results, leaderboards,
data info, listings, conformance) is built once as a ``ReportTable`` of strings and
rendered by ``routeharness.cli.render`` as rich, Markdown or JSON. Cells are plain text:
names that come from data are never read as markup by any renderer."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

STYLES = ("bold", "dim", None)
#: characters a terminal acts on instead of showing: C0 and C1 controls, DEL, and the
#: bidirectional overrides, embeddings, isolates and marks (and line/paragraph separators)
CONTROL_CHARACTERS = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f"
                                "\u2028-\u202e\u2066-\u2069]")


def plain(text: object) -> str:
    """``text`` with every control character shown as its escape (``\\x1b``, ``\\n``,
    ``\\u202e``): a name from data can never move the cursor, colour the terminal, open a
    hyperlink or reverse the text around it."""
    return CONTROL_CHARACTERS.sub(_escape, str(text))


def _escape(match: re.Match[str]) -> str:
    char = match.group()
    return {"\n": "\\n", "\r": "\\r", "\t": "\\t"}.get(
        char, f"\\x{ord(char):02x}" if ord(char) < 0x100 else f"\\u{ord(char):04x}")


def fmt(mean: float | None, std: float | None = None, digits: int = 2) -> str:
    """The one number format: ``mean ± std`` at ``digits`` decimals; "-" for a missing or
    non-finite number; a std that rounds to zero is not shown."""
    if mean is None or not isinstance(mean, (int, float)) or not math.isfinite(mean):
        return "-"
    if std and math.isfinite(std) and std >= 0.5 * 10 ** -digits:
        return f"{mean:.{digits}f} ± {std:.{digits}f}"
    return f"{mean:.{digits}f}"


#: a task whose cheapest model's mean normalised cost is over 1 - this (the dearest
#: model's is 1) has too narrow a cost range for AUC to say much: every hull lies on
#: [cheapest, 1], so AUC is capped near (1 - cheapest) x 100 and moves with quality alone
NARROW_COST_SPREAD = 0.5


def narrow_cost_flag(spread: float | None) -> str | None:
    """The flag every table shows for a task of normalised cost spread ``spread`` (1 -
    the cheapest model's mean normalised cost) under ``NARROW_COST_SPREAD``; None when
    the range is wide enough or unknown."""
    if spread is None or not isinstance(spread, (int, float)) or not math.isfinite(spread) \
            or spread >= NARROW_COST_SPREAD:
        return None
    return (f"AUC uninformative: normalised costs span only {1 - spread:.3f}-1 (spread "
            f"{spread:.3f} < {NARROW_COST_SPREAD}), so AUC is capped near {100 * spread:.1f} "
            "and tracks quality; read Q@λ0")


class Row(NamedTuple):
    """One row as every renderer sees it: its cells, its style hint and whether a rule
    follows it."""

    cells: list[str]
    style: str | None
    rule_after: bool


@dataclass
class ReportTable:
    """A table of plain strings. ``rows``: lists of cells, one per header; ``right``:
    right-aligned column indices; ``sections``: indices of rows followed by a rule;
    ``styles``: row index -> "bold" or "dim" (a hint renderers may ignore; a row not in it
    is plain); ``note``: a footnote; ``nowrap``: column indices whose cells must never wrap
    or be cut (names).

    A row's style and rule are looked up by its index, never paired with it by position
    in a second list: renderers iterate ``body()``, which yields every row (checked to
    have one cell per header), so a table renders exactly the rows it holds."""

    title: str
    headers: list[str]
    rows: list[list[str]] = field(default_factory=list)
    right: set[int] = field(default_factory=set)
    sections: set[int] = field(default_factory=set)
    styles: dict[int, str | None] = field(default_factory=dict)
    note: str = ""
    nowrap: set[int] = field(default_factory=lambda: {0})

    def __post_init__(self) -> None:
        self.headers = [str(header) for header in self.headers]
        if not self.headers:
            raise ValueError(f"table {self.title!r}: no headers")
        if not isinstance(self.styles, Mapping):
            raise TypeError(f"table {self.title!r}: styles maps row indices to styles, "
                            f"got {type(self.styles).__name__}")
        self.rows = [self._cells(row, i) for i, row in enumerate(self.rows)]
        self.styles, self.sections = dict(self.styles), set(self.sections)
        self.right, self.nowrap = set(self.right), set(self.nowrap)
        for name in ("right", "nowrap"):
            outside = sorted(i for i in getattr(self, name) if not 0 <= i < len(self.headers))
            if outside:
                raise ValueError(f"table {self.title!r}: {name} names column {outside[0]}; "
                                 f"it has {len(self.headers)}")
        self.body()  # styles and sections of rows it does not hold are refused here

    def _cells(self, cells: Any, index: int) -> list[str]:
        if isinstance(cells, (str, bytes)) or not isinstance(cells, Sequence):
            raise TypeError(f"table {self.title!r}: row {index} is not a list of cells")
        if len(cells) != len(self.headers):
            raise ValueError(f"table {self.title!r}: row {index} has {len(cells)} cells, "
                             f"{len(self.headers)} headers")
        return [str(cell) for cell in cells]

    def add(self, cells: Sequence[Any], style: str | None = None) -> None:
        """Append a row (one cell per header, each shown as ``str``) with its style."""
        self._check_style(style)
        self.rows.append(self._cells(cells, len(self.rows)))
        if style is not None:
            self.styles[len(self.rows) - 1] = style

    def _check_style(self, style: object) -> None:
        if style not in STYLES:
            raise ValueError(f"table {self.title!r}: style {style!r} is not one of {STYLES}")

    def body(self) -> list[Row]:
        """Every row, in order, with its style and whether a rule follows: what each
        renderer iterates. Checks the table whole: a row without one cell per header, or
        a style or rule for a row the table does not hold, is a ``ValueError``."""
        for name, indices in (("styles", self.styles), ("sections", self.sections)):
            outside = sorted(i for i in indices
                             if not isinstance(i, int) or not 0 <= i < len(self.rows))
            if outside:
                raise ValueError(f"table {self.title!r}: {name} names row {outside[0]!r}; "
                                 f"it holds {len(self.rows)}")
        for style in self.styles.values():
            self._check_style(style)
        return [Row(self._cells(cells, i), self.styles.get(i), i in self.sections)
                for i, cells in enumerate(self.rows)]

    def to_dict(self) -> dict[str, Any]:
        """The table as JSON-able data: rows as header -> cell mappings."""
        return {"title": self.title, "headers": list(self.headers),
                "rows": [dict(zip(self.headers, row.cells, strict=True))
                         for row in self.body()],
                "note": self.note}


def markdown_cell(text: str) -> str:
    """A cell for a Markdown table: pipes escaped, HTML special characters escaped (a
    name like ``<script>`` must show as text on any Markdown renderer), control
    characters (newlines, escape sequences) shown escaped (``plain``)."""
    import html

    return html.escape(plain(text), quote=False).replace("|", "\\|")


def to_markdown(tables: list[ReportTable]) -> str:
    """The tables as GitHub Markdown (a heading, the table, the footnote)."""
    out: list[str] = []
    for table in tables:
        out += [f"### {markdown_cell(table.title)}", "",
                "| " + " | ".join(markdown_cell(h) for h in table.headers) + " |",
                "|" + "|".join("---:" if i in table.right else "---"
                               for i in range(len(table.headers))) + "|"]
        out += ["| " + " | ".join(markdown_cell(cell) for cell in row.cells) + " |"
                for row in table.body()]
        out += ["", markdown_cell(table.note), ""] if table.note else [""]
    return "\n".join(out)
