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


# --- a table renders every row it holds --------------------------------------------------------
def test_a_table_built_with_rows_and_no_styles_renders_every_row():
    """`route` built its table from rows alone; the renderer paired rows with a list of
    styles by position and printed none of them."""
    table = ReportTable("routes", ["id", "model"], [["1", "gpt-4"], ["2", "mixtral"]])
    table.add(["3", "claude"], "dim")
    for fmt in ("rich", "markdown"):
        out = io.StringIO()
        emit([table], fmt, file=out)
        assert all(name in out.getvalue() for name in ("gpt-4", "mixtral", "claude")), fmt
    out = io.StringIO()
    emit([table], "json", file=out)
    assert [row["model"] for row in json.loads(out.getvalue())[0]["rows"]] == [
        "gpt-4", "mixtral", "claude"]
    assert [(row.cells[0], row.style) for row in table.body()] == [
        ("1", None), ("2", None), ("3", "dim")]


def test_a_table_refuses_rows_and_styles_that_do_not_fit():
    with pytest.raises(ValueError, match="row 1 has 1 cells, 2 headers"):
        ReportTable("t", ["a", "b"], [["1", "2"], ["3"]])
    with pytest.raises(ValueError, match="styles names row 5"):
        ReportTable("t", ["a"], [["1"]], styles={5: "bold"})
    with pytest.raises(TypeError, match="styles maps row indices"):
        ReportTable("t", ["a"], [["1"]], styles=["bold"])  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="style 'red'"):
        ReportTable("t", ["a"]).add(["1"], "red")
    table = ReportTable("t", ["a", "b"])
    table.rows.append(["only one"])  # past add(): caught when rendered, never dropped
    with pytest.raises(ValueError, match="row 0 has 1 cells"):
        emit([table], "rich", file=io.StringIO())
    table = ReportTable("t", ["a"], [["1"]])
    table.sections.add(3)
    with pytest.raises(ValueError, match="sections names row 3"):
        table.body()


# --- lines are never wrapped -------------------------------------------------------------------
LONG = "saved knn (fitted on 269 prompts of routerbench:mbpp) to /" + "long-folder/" * 20 + "knn"


@pytest.mark.parametrize("terminal", [False, True])
def test_a_message_is_one_line_as_long_as_its_text(terminal):
    out = io.StringIO()
    shown = console(file=out)
    shown.force_terminal, shown.width = terminal, 40
    shown.print(LONG)
    text = out.getvalue()
    if terminal:  # colour codes aside, the text is written whole: the terminal wraps it
        text = re.sub(r"\x1b\[[0-9;]*m", "", text)
    assert text == LONG + "\n"


def test_message_writes_one_line_to_standard_error(capsys):
    from routeharness.cli.render import message

    message(LONG)
    message(f"ok: {HOSTILE[0]}", err=False)
    captured = capsys.readouterr()
    assert captured.err == LONG + "\n"
    assert captured.out == "ok: \\x1b[31mRED\\x1b[0m\n"


def test_in_a_file_a_table_has_its_natural_width_and_lines_of_its_own():
    table = ReportTable("a title longer than the table it names: " + "/x" * 40,
                        ["router", "AUC"], note="; ".join(["a note longer than the table"] * 4))
    table.add(["knn", "83.53"])
    out = io.StringIO()
    emit([table], "rich", file=out)
    lines = out.getvalue().splitlines()
    assert lines[0] == table.title and lines[-1] == table.note
    assert all(line == line.rstrip() for line in lines)
    assert "│ knn    │ 83.53 │" in lines


def test_in_a_narrow_terminal_names_stay_whole_and_other_cells_wrap():
    from routeharness.cli.render import column_widths, rich_table, table_width

    table = ReportTable("t", ["name", "description", "count"], right={2})
    table.add(["meta/code-llama-instruct-34b-chat", "a description of many short words", "7"])
    table.add(["knn", "a-word-of-twenty-two", "12"])
    assert column_widths(table) == [33, 33, 5]  # natural
    narrow = column_widths(table, 70)
    assert narrow[0] == 33 and narrow[1] >= 20 and table_width(narrow) <= 70
    tight = column_widths(table, 20)  # not even the names fit: names and words whole
    assert tight == [33, 20, 5]
    out = io.StringIO()
    terminal = console(file=out)
    terminal.force_terminal, terminal.width = True, 70
    terminal.print(rich_table(table, 70), soft_wrap=False, crop=False)
    text = re.sub(r"\x1b\[[0-9;]*m", "", out.getvalue())
    assert "meta/code-llama-instruct-34b-chat" in text and "a-word-of-twenty-two" in text
    assert "…" not in text and max(map(len, text.splitlines())) <= 70
