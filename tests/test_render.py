"""Hostile #11: names with control characters never reach the terminal raw, in any
renderer (rich tables, Markdown, JSON), console message or progress line."""

from __future__ import annotations

import io
import json
import re

import pytest

from routeharness.cli.render import console, emit
from routeharness.results.tables import ReportTable, markdown_cell, plain

HOSTILE = ["\x1b[31mRED\x1b[0m", "\x1b]8;;http://x\x1b\\click\x1b]8;;\x1b\\", "two\nlines",
           "back\rover", "bell\x07\x00nul\x7fdel", "c1\x9b31m", "\u202eevil.exe"]
#: what must never be printed raw (the newlines a renderer writes itself aside)
RAW = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def hostile_table() -> ReportTable:
    table = ReportTable(f"task {HOSTILE[0]}", ["router", f"auc {HOSTILE[6]}"],
                        note=f"note {HOSTILE[1]}")
    for name in HOSTILE:
        table.add([name, "1.00"])
    return table


def test_plain_escapes_every_control_character_visibly():
    assert plain("\x1b[31mRED") == "\\x1b[31mRED"
    assert plain("a\nb\rc\td") == "a\\nb\\rc\\td"
    assert plain("\x9b\x7f\u202e\u2066") == "\\x9b\\x7f\\u202e\\u2066"
    assert plain("plain ümlaut · [bold]x $y$") == "plain ümlaut · [bold]x $y$"
    for name in HOSTILE:
        assert not RAW.search(plain(name)) and "\n" not in plain(name)


@pytest.mark.parametrize("fmt", ["rich", "markdown", "json"])
def test_no_raw_control_character_in_any_format(fmt):
    out = io.StringIO()
    emit([hostile_table()], fmt, file=out)
    text = out.getvalue()
    assert not RAW.search(text), repr(RAW.search(text))
    if fmt == "json":  # the data is intact: escaped as JSON, read back as written
        data = json.loads(text)[0]
        assert [row["router"] for row in data["rows"]] == HOSTILE
        assert data["title"] == f"task {HOSTILE[0]}"
    else:
        assert "\\x1b[31mRED\\x1b[0m" in text and "\\u202eevil.exe" in text
        assert "two\\nlines" in text  # one row, not two


def test_markdown_cell_escapes_controls_html_and_pipes():
    assert markdown_cell("a|\x1b<b>\nc") == "a\\|\\x1b&lt;b&gt;\\nc"


def test_console_messages_are_escaped_and_keep_their_style():
    from rich.text import Text

    out = io.StringIO()
    shown = console(file=out)
    shown.print(f"saved to {HOSTILE[1]}")
    shown.print(Text.assemble(("bold ", "bold"), (HOSTILE[0], "red"), " end"))
    text = out.getvalue()
    assert not RAW.search(text)
    assert "saved to \\x1b]8;;http://x\\x1b\\click" in text
    assert "bold \\x1b[31mRED\\x1b[0m end" in text
    styled = io.StringIO()
    terminal = console(file=styled)
    terminal.force_terminal = True
    terminal.print(Text.assemble(("x", "red"), (HOSTILE[0], "red")))
    assert "\x1b[31mRED" not in styled.getvalue() and "\\x1b[31mRED" in styled.getvalue()


def test_progress_lines_and_log_are_escaped():
    from rich.console import Console

    from routeharness.cli.progress import RichReporter

    out = io.StringIO()
    reporter = RichReporter(console=Console(file=out, markup=False, highlight=False))
    reporter.log(f"loading task {HOSTILE[0]}")
    with reporter.progress(f"encoding {HOSTILE[6]}", 2) as advance:
        advance(1, status=HOSTILE[1])
        advance(1)
    text = out.getvalue()
    assert not RAW.search(text), repr(text)
    assert "loading task \\x1b[31mRED" in text and "encoding \\u202eevil.exe" in text


def test_progress_bar_in_a_terminal_is_escaped():
    from rich.console import Console

    from routeharness.cli.progress import RichReporter

    out = io.StringIO()
    reporter = RichReporter(console=Console(file=out, force_terminal=True, width=200))
    with reporter.progress(f"encoding {HOSTILE[1]}", 2) as advance:
        advance(1, status=HOSTILE[0])
        advance(1, status=HOSTILE[6])
    text = out.getvalue()  # rich writes its own escape codes here; never the names' ones
    assert "\x1b]8;;http://x" not in text and "\x1b[31mRED" not in text
    assert "\u202e" not in text
    assert "encoding \\x1b]8;;http://x" in text and "\\u202eevil.exe" in text
