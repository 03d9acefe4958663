"""One renderer for every table the CLI prints: rich (terminal), Markdown or JSON.

Commands build ``routeharness.results.tables.ReportTable``s and call ``emit(tables, fmt)``; every
command that prints a table takes ``--format`` through ``format_option``. Cells are rich
``Text`` objects, so a name like ``[bold]x`` or ``$x^2$`` prints as written, and control
characters (escape sequences, hyperlinks, newlines, bidi overrides) print escaped
(``plain``), in tables and in every message through ``console()`` (``message``). Names
and parameters are never cut: when output is not a terminal the table takes its natural
width instead of 80 columns, and in a terminal never less than its names need. No line
of text (a status, warning or error, a title, a note) is ever wrapped by rich: in a pipe
a line is exactly as long as its content, in a terminal the terminal wraps it.
"""

from __future__ import annotations

import json
from typing import Any

import click

from routeharness.results.tables import CONTROL_CHARACTERS, ReportTable, plain, to_markdown

__all__ = ["FORMATS", "column_widths", "console", "emit", "format_option", "message", "plain",
           "plain_text", "rich_table", "table_width"]

FORMATS = ("rich", "markdown", "json")

format_option = click.option(
    "--format", "fmt", type=click.Choice(FORMATS), default="rich", show_default=True,
    help="Output format: rich tables, Markdown (for reports), or JSON.")


def console(stderr: bool = False, file: Any = None) -> Any:
    """A rich console that never interprets markup or highlights numbers in output, prints
    the control characters of any text it is given escaped (``plain``), and never wraps
    a line of text (``soft_wrap``): in a pipe a message is exactly its text on one line,
    in a terminal the terminal wraps it, so a path in it stays whole for grep and for
    copying. Tables are laid out by ``emit``."""
    from rich.console import Console

    class PlainConsole(Console):
        def print(self, *objects: Any, **kwargs: Any) -> None:
            super().print(*(plain_text(o) if isinstance(o, str) or hasattr(o, "spans")
                            else o for o in objects), **kwargs)

    return PlainConsole(stderr=stderr, file=file, highlight=False, markup=False, emoji=False,
                        soft_wrap=True)


def message(text: str, *, err: bool = True, style: str | None = None) -> None:
    """One status, warning or error line (standard error unless ``err`` is false): the
    one way the CLI prints a message, through ``console``: one line however long,
    control characters escaped, never read as markup."""
    console(stderr=err).print(text, style=style)


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


def rich_table(report: ReportTable, width: int | None = None) -> Any:
    """A ``ReportTable`` as a rich table, every row of it (``ReportTable.body``), its
    columns as ``column_widths`` lays them out for ``width`` columns (None: its natural
    width); every cell is plain text and none is ever cut: a cell wider than its column
    wraps, a word longer than it folds. The title is not part of it: ``emit`` prints it
    as a line of its own, so that a long one (a path) is never wrapped to the table."""
    from rich.table import Table
    from rich.text import Text

    body = report.body()
    table = Table()
    for i, (header, column) in enumerate(zip(report.headers, column_widths(report, width),
                                             strict=True)):
        table.add_column(Text(plain(header)), justify="right" if i in report.right else "left",
                         no_wrap=i in report.nowrap, width=column, overflow="fold")
    for row in body:
        table.add_row(*(Text(plain(cell), style=row.style or "") if j == 0 else Text(plain(cell))
                        for j, cell in enumerate(row.cells)), end_section=row.rule_after)
    return table


def _cells(report: ReportTable, column: int) -> list[str]:
    return [plain(report.headers[column]), *(plain(row.cells[column]) for row in report.body())]


def column_widths(report: ReportTable, width: int | None = None) -> list[int]:
    """Each column's width (cells, without padding) for a table at most ``width`` columns
    wide, borders included: the natural widths when they fit (or ``width`` is None);
    else the widest wrappable columns narrowed to a common cap, none below its longest
    word, and the ``nowrap`` columns (names) always whole. When even that does not fit,
    the table is wider than ``width`` (a terminal wraps its lines) rather than a name
    cut."""
    from rich.cells import cell_len

    natural = [max(map(cell_len, _cells(report, i))) for i in range(len(report.headers))]
    budget = None if width is None else width - (3 * len(natural) + 1)
    if budget is None or sum(natural) <= budget:
        return natural
    floor = [natural[i] if i in report.nowrap
             else max([1, *(cell_len(word) for cell in _cells(report, i) for word in cell.split())])
             for i in range(len(natural))]

    def capped(cap: int) -> list[int]:
        return [n if i in report.nowrap else min(n, max(cap, f))
                for i, (n, f) in enumerate(zip(natural, floor, strict=True))]

    low, high = 0, max(natural)  # the widest cap that fits: capped(0) == floor
    while low < high:
        middle = (low + high + 1) // 2
        if sum(capped(middle)) <= budget:
            low = middle
        else:
            high = middle - 1
    return capped(low)


def table_width(widths: list[int]) -> int:
    """A table's width from its columns' (borders and one space of padding each side)."""
    return sum(widths) + 3 * len(widths) + 1


def emit(tables: list[ReportTable], fmt: str = "rich", *, file: Any = None) -> None:
    """Print ``tables`` to standard output (or ``file``) in ``fmt``.

    rich: each table's title and note are lines of their own (never wrapped, as every
    message); in a pipe or a file the table takes its natural width (never 80 columns);
    in a terminal it fits the terminal's width, its other columns wrapped, but never
    narrower than its names whole (``column_widths``): a table wider than the terminal
    is left to the terminal to wrap rather than a name cut."""
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
    from rich.text import Text

    out = console(file=file)
    terminal_width = out.width
    for report in tables:
        widths = column_widths(report, terminal_width if out.is_terminal else None)
        out.print(Text(plain(report.title), style="italic"))
        out.width = max(terminal_width, table_width(widths))  # a wider table is never cut
        out.print(rich_table(report, out.width), soft_wrap=False, crop=False)
        out.width = terminal_width
        if report.note:
            out.print(plain(report.note), style="dim")
