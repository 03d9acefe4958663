"""One renderer for every table the CLI prints: rich (terminal), Markdown or JSON.

Commands build ``routeharness.tables.ReportTable``s and call ``emit(tables, fmt)``; every
command that prints a table takes ``--format`` through ``format_option``. Cells are rich
``Text`` objects, so a name like ``[bold]x`` or ``$x^2$`` prints as written. Names and
parameters are never cut: when output is not a terminal the table takes its natural
width instead of 80 columns.
"""

from __future__ import annotations

import json
from typing import Any

import click

from routeharness.tables import ReportTable, to_markdown

FORMATS = ("rich", "markdown", "json")

format_option = click.option(
    "--format", "fmt", type=click.Choice(FORMATS), default="rich", show_default=True,
    help="Output format: rich tables, Markdown (for reports), or JSON.")


def console(stderr: bool = False, file: Any = None) -> Any:
    """A rich console that never interprets markup or highlights numbers in output."""
    from rich.console import Console

    return Console(stderr=stderr, file=file, highlight=False, markup=False, emoji=False)


def rich_table(report: ReportTable) -> Any:
    """A ``ReportTable`` as a rich table; every cell is plain text."""
    from rich.table import Table
    from rich.text import Text

    table = Table(title=Text(report.title), title_justify="left")
    for i, header in enumerate(report.headers):
        width = max((len(row[i]) for row in report.rows), default=0) if i in report.nowrap \
            else None
        table.add_column(Text(header), justify="right" if i in report.right else "left",
                         no_wrap=i in report.nowrap, min_width=width or None)
    for i, (cells, style) in enumerate(zip(report.rows, report.styles)):
        table.add_row(*(Text(cell, style=style or "") if j == 0 else Text(cell)
                        for j, cell in enumerate(cells)), end_section=i in report.sections)
    return table


def natural_width(report: ReportTable) -> int:
    """Columns a table needs so that no cell is cut or wrapped (borders and padding)."""
    widths = [max([len(h), *(len(row[i]) for row in report.rows)])
              for i, h in enumerate(report.headers)]
    return sum(widths) + 3 * len(widths) + 1


def emit(tables: list[ReportTable], fmt: str = "rich", *, file: Any = None) -> None:
    """Print ``tables`` to standard output (or ``file``) in ``fmt``."""
    if fmt == "markdown":
        click.echo(to_markdown(tables), file=file, nl=False)
        return
    if fmt == "json":
        click.echo(json.dumps([t.to_dict() for t in tables], indent=1, ensure_ascii=False),
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
            out.print(report.note, style="dim")
