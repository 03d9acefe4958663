"""Report tables as plain data: every table the harness prints (results, leaderboards,
data info, listings, conformance) is built once as a ``ReportTable`` of strings and
rendered by ``routeharness.cli.render`` as rich, Markdown or JSON. Cells are plain text:
names that come from data are never read as markup by any renderer."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any

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
        out += ["| " + " | ".join(markdown_cell(cell) for cell in row) + " |"
                for row in table.rows]
        out += ["", markdown_cell(table.note), ""] if table.note else [""]
    return "\n".join(out)
