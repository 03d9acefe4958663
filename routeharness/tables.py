"""Report tables as plain data: every table the harness prints (results, leaderboards,
data info, listings, conformance) is built once as a ``ReportTable`` of strings and
rendered by ``routeharness.cli.render`` as rich, Markdown or JSON. Cells are plain text:
names that come from data are never read as markup by any renderer."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

STYLES = ("bold", "dim", None)


def fmt(mean: float | None, std: float | None = None, digits: int = 2) -> str:
    """The one number format: ``mean ± std`` at ``digits`` decimals; "-" for a missing or
    non-finite number; a std that rounds to zero is not shown."""
    if mean is None or not isinstance(mean, (int, float)) or not math.isfinite(mean):
        return "-"
    if std and math.isfinite(std) and std >= 0.5 * 10 ** -digits:
        return f"{mean:.{digits}f} ± {std:.{digits}f}"
    return f"{mean:.{digits}f}"


@dataclass
class ReportTable:
    """A table of plain strings. ``right``: right-aligned column indices; ``sections``:
    indices of rows followed by a rule; ``styles``: per row "bold", "dim" or None (a
    hint renderers may ignore); ``note``: a footnote; ``nowrap``: column indices whose
    cells must never wrap or be cut (names)."""

    title: str
    headers: list[str]
    rows: list[list[str]] = field(default_factory=list)
    right: set[int] = field(default_factory=set)
    sections: set[int] = field(default_factory=set)
    styles: list[str | None] = field(default_factory=list)
    note: str = ""
    nowrap: set[int] = field(default_factory=lambda: {0})

    def add(self, cells: list[Any], style: str | None = None) -> None:
        if len(cells) != len(self.headers):
            raise ValueError(f"table {self.title!r}: row has {len(cells)} cells, "
                             f"{len(self.headers)} headers")
        self.rows.append([str(cell) for cell in cells])
        self.styles.append(style)

    def to_dict(self) -> dict[str, Any]:
        """The table as JSON-able data: rows as header -> cell mappings."""
        return {"title": self.title, "headers": list(self.headers),
                "rows": [dict(zip(self.headers, row)) for row in self.rows],
                "note": self.note}


def markdown_cell(text: str) -> str:
    """A cell for a Markdown table: pipes escaped, HTML special characters escaped (a
    name like ``<script>`` must show as text on any Markdown renderer), no newlines."""
    import html

    return html.escape(text, quote=False).replace("|", "\\|").replace("\n", " ")


def to_markdown(tables: list[ReportTable]) -> str:
    """The tables as GitHub Markdown (a heading, the table, the footnote)."""
    out: list[str] = []
    for table in tables:
        out += [f"### {markdown_cell(table.title)}", "",
                "| " + " | ".join(markdown_cell(h) for h in table.headers) + " |",
                "|" + "|".join("---:" if i in table.right else "---"
                               for i in range(len(table.headers))) + "|"]
        out += ["| " + " | ".join(markdown_cell(cell) for cell in row) + " |"
                for row in table.rows]
        out += ["", markdown_cell(table.note), ""] if table.note else [""]
    return "\n".join(out)
