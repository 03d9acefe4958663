"""One renderer for every table the CLI prints: rich (terminal), Markdown or JSON.

Commands build ``routeharness.results.tables.ReportTable``s and call ``emit(tables, fmt)``; every
command that prints a table takes ``--format`` through ``format_option``. Cells are rich
``Text`` objects, so a name like ``[bold]x`` or ``$x^2$`` prints as written, and control
characters (escape sequences, hyperlinks, newlines, bidi overrides) print escaped
(``plain``), in tables and in every message through ``console()``. Names and parameters
are never cut: when output is not a terminal the table takes its natural width instead
of 80 columns.
"""

from __future__ import annotations

import json
from typing import Any

import click

from routeharness.results.tables import CONTROL_CHARACTERS, ReportTable, plain, to_markdown

__all__ = ["FORMATS", "console", "emit", "format_option", "natural_width", "plain",
           "plain_text", "rich_table"]

FORMATS = ("rich", "markdown", "json")

format_option = click.option(
    "--format", "fmt", type=click.Choice(FORMATS), default="rich", show_default=True,
    help="Output format: rich tables, Markdown (for reports), or JSON.")


def console(stderr: bool = False, file: Any = None) -> Any:
    """A rich console that never interprets markup or highlights numbers in output, and
    prints the control characters of any text it is given escaped (``plain``)."""
    from rich.console import Console

    class PlainConsole(Console):
        def print(self, *objects: Any, **kwargs: Any) -> None:
            super().print(*(plain_text(o) if isinstance(o, str) or hasattr(o, "spans")
                            else o for o in objects), **kwargs)

    return PlainConsole(stderr=stderr, file=file, highlight=False, markup=False, emoji=False)


def plain_text(text: Any) -> Any:
    """A ``str`` or rich ``Text`` with its control characters escaped (``plain``); a
    ``Text`` keeps its styles."""
    if isinstance(text, str):
        return plain(text)
    if not CONTROL_CHARACTERS.search(text.plain):
        return text
    from rich.text import Span

    out, last = text.blank_copy(), 0
    for match in CONTROL_CHARACTERS.finditer(text.plain):
        out.append_text(text[last:match.start()])
        char = text[match.start():match.end()]
        shown = char.blank_copy(plain(char.plain))
        shown.spans = [Span(0, len(shown), span.style) for span in char.spans]
        out.append_text(shown)
        last = match.end()
    out.append_text(text[last:])
    return out


def rich_table(report: ReportTable) -> Any:
    """A ``ReportTable`` as a rich table; every cell is plain text."""
    from rich.table import Table
    from rich.text import Text

    table = Table(title=Text(plain(report.title)), title_justify="left")
    for i, header in enumerate(report.headers):
        width = max((len(plain(row[i])) for row in report.rows), default=0) \
            if i in report.nowrap else None
        table.add_column(Text(plain(header)), justify="right" if i in report.right else "left",
                         no_wrap=i in report.nowrap, min_width=width or None)
    for i, (cells, style) in enumerate(zip(report.rows, report.styles)):
        table.add_row(*(Text(plain(cell), style=style or "") if j == 0 else Text(plain(cell))
                        for j, cell in enumerate(cells)), end_section=i in report.sections)
    return table


def natural_width(report: ReportTable) -> int:
    """Columns a table needs so that no cell is cut or wrapped (borders and padding)."""
    widths = [max([len(plain(h)), *(len(plain(row[i])) for row in report.rows)])
              for i, h in enumerate(report.headers)]
    return sum(widths) + 3 * len(widths) + 1


def emit(tables: list[ReportTable], fmt: str = "rich", *, file: Any = None) -> None:
    """Print ``tables`` to standard output (or ``file``) in ``fmt``."""
    if fmt == "markdown":
        click.echo(to_markdown(tables), file=file, nl=False)
        return
    if fmt == "json":
        text = json.dumps([t.to_dict() for t in tables], indent=1, ensure_ascii=False)
        # json escapes C0 controls in strings (the newlines left are its indentation);
        # DEL, C1 controls and bidi overrides become \u escapes here
        click.echo(CONTROL_CHARACTERS.sub(
            lambda m: m.group() if m.group() < "\x7f" else f"\\u{ord(m.group()):04x}", text),
            file=file)
        return
    if fmt != "rich":
        raise click.BadParameter(f"unknown format {fmt!r}; one of {', '.join(FORMATS)}",
                                 param_hint="--format")
    out = console(file=file)
    for report in tables:
        if not out.is_terminal:  # a pipe or a file: the table's own width, never 80 columns
            out.width = max(natural_width(report), 80)
        out.print(rich_table(report))
        if report.note:
            out.print(plain(report.note), style="dim")
