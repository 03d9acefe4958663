"""What a user sees of the CLI: the command in a pipe, or under a pseudo-terminal of a
fixed size replayed into the lines a terminal would show, and the rich tables in either
read back into cells (for tests/test_user_output.py and tests/test_readme_output.py).

Nothing here depends on where the tests run: the pseudo-terminal's size is set
(``TIOCSWINSZ``), ``COLUMNS`` and ``LINES`` are removed from a terminal run's environment
and set to a small width in a pipe run's (a pipe's output must not depend on it)."""

from __future__ import annotations

import fcntl
import os
import re
import select
import signal
import struct
import subprocess
import sys
import termios
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

#: environment variables that change how rich sees a terminal: removed from every run
TERMINAL_VARIABLES = ("COLUMNS", "LINES", "FORCE_COLOR", "NO_COLOR", "TTY_COMPATIBLE",
                      "TTY_INTERACTIVE", "JUPYTER_COLUMNS", "JUPYTER_LINES")
#: what a pipe run sets COLUMNS to: narrower than any line the CLI prints
PIPE_COLUMNS = "40"


def _env(extra: dict[str, str] | None, **fixed: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in TERMINAL_VARIABLES}
    env.update(extra or {})
    env.update(fixed)
    return env


@dataclass
class Shown:
    """One run: its exit status and what it printed, as lines. In a pipe ``stdout`` and
    ``stderr`` are apart; in a terminal both are ``screen`` (one pseudo-terminal)."""

    returncode: int
    stdout: str = ""
    stderr: str = ""
    screen: list[str] = field(default_factory=list)
    terminal: bool = False
    tag: str = ""  #: which run: "pipe", "tty100", ...

    @property
    def lines(self) -> list[str]:
        """Every line shown: the screen, or standard output then standard error."""
        if self.terminal:
            return self.screen
        return self.stdout.splitlines() + self.stderr.splitlines()

    def describe(self) -> str:
        return "\n".join(self.screen) if self.terminal else (
            f"--- stdout\n{self.stdout}\n--- stderr\n{self.stderr}")


def in_pipe(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None,
            timeout: float = 300) -> Shown:
    """``routeharness ARGS`` with standard output and error each a pipe (COLUMNS set
    narrow: a pipe's output must not depend on it)."""
    done = subprocess.run([sys.executable, "-m", "routeharness", *args], capture_output=True,
                          text=True, encoding="utf-8", env=_env(env, COLUMNS=PIPE_COLUMNS),
                          cwd=cwd, timeout=timeout, stdin=subprocess.DEVNULL)
    return Shown(done.returncode, done.stdout, done.stderr)


def in_terminal(*args: str, columns: int, rows: int = 50, env: dict[str, str] | None = None,
                cwd: Path | None = None, timeout: float = 300,
                until: str | None = None) -> Shown:
    """``routeharness ARGS`` under a pseudo-terminal ``columns`` wide (its standard input,
    output and error), replayed into the lines the terminal shows (``replay``). With
    ``until``, the command is stopped (SIGTERM) once the screen shows that text (a
    server's start-up line)."""
    master, slave = os.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, columns, 0, 0))
    process = subprocess.Popen(
        [sys.executable, "-m", "routeharness", *args], stdin=slave, stdout=slave,
        stderr=slave, cwd=cwd, env=_env(env, TERM="xterm-256color"), close_fds=True,
        start_new_session=True)
    os.close(slave)
    raw, deadline = bytearray(), time.monotonic() + timeout
    try:
        while True:
            if time.monotonic() > deadline:
                process.kill()
                raise TimeoutError(f"routeharness {' '.join(args)}: no end after {timeout} s:\n"
                                   + "\n".join(replay(raw.decode("utf-8", "replace"))))
            ready, _, _ = select.select([master], [], [], 0.2)
            if ready:
                try:
                    chunk = os.read(master, 65536)
                except OSError:  # EIO: every process holding the terminal has exited
                    chunk = b""
                if not chunk:
                    break
                raw += chunk
                if until is not None and until in raw.decode("utf-8", "replace") \
                        and process.poll() is None:
                    process.send_signal(signal.SIGTERM)
                    until = None
            elif process.poll() is not None:
                break
    finally:
        os.close(master)
        if process.poll() is None:
            process.kill()
        process.wait(timeout=30)
    return Shown(process.returncode, screen=replay(raw.decode("utf-8", "replace")),
                 terminal=True)


# --- a terminal's screen, from the bytes written to it ----------------------------------------
_TOKEN = re.compile(r"\x1b\[([0-?]*)[ -/]*([@-~])"      # CSI: cursor, erase, colours
                    r"|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)"  # OSC: titles, hyperlinks
                    r"|\x1b[()][0-9A-Za-z]|\x1b[=>78]"     # charsets, keypad, save cursor
                    r"|[\r\n\b\t]"
                    r"|[^\x1b\r\n\b\t]+")


def replay(raw: str) -> list[str]:
    """The lines a terminal shows after ``raw`` was written to it, each as written
    (a line longer than the terminal is one line here: the terminal only wraps it on
    screen), trailing blanks removed. Follows what rich writes: text, carriage return,
    line feed, cursor up/down/left/right/column, erase in line and display; colours and
    other sequences are dropped."""
    lines: list[list[str]] = [[]]
    row = col = 0

    def at(r: int) -> list[str]:
        while len(lines) <= r:
            lines.append([])
        return lines[r]

    for match in _TOKEN.finditer(raw):
        token = match.group()
        if match.group(2):  # a CSI sequence
            params, final = match.group(1), match.group(2)
            if params.startswith("?"):
                continue
            numbers = [int(p) if p.isdigit() else 0 for p in params.split(";")] if params else []
            n = numbers[0] if numbers else 0
            line = at(row)
            if final == "A":
                row = max(0, row - max(n, 1))
            elif final == "B":
                row += max(n, 1)
            elif final == "C":
                col += max(n, 1)
            elif final == "D":
                col = max(0, col - max(n, 1))
            elif final == "G":
                col = max(n, 1) - 1
            elif final == "H":
                row, col = (max(numbers[0], 1) - 1 if numbers else 0,
                            max(numbers[1], 1) - 1 if len(numbers) > 1 else 0)
            elif final == "K":
                if n == 0:
                    del line[col:]
                elif n == 1:
                    line[:col + 1] = [" "] * min(col + 1, len(line))
                else:
                    line.clear()
            elif final == "J":
                if n == 0:
                    del line[col:]
                    del lines[row + 1:]
                else:
                    lines, row, col = [[]], 0, 0
        elif token.startswith("\x1b"):
            continue
        elif token == "\r":
            col = 0
        elif token == "\n":
            row, col = row + 1, 0
            at(row)
        elif token == "\b":
            col = max(0, col - 1)
        elif token == "\t":
            col = (col // 8 + 1) * 8
        else:
            line = at(row)
            for char in token:
                if len(line) < col:
                    line.extend(" " * (col - len(line)))
                if col < len(line):
                    line[col] = char
                else:
                    line.append(char)
                col += 1
    text = ["".join(line).rstrip() for line in lines]
    while text and not text[-1]:
        text.pop()
    return text


# --- rich tables, read back ---------------------------------------------------------------------
@dataclass
class ShownTable:
    """A rich table as printed: the line before it (its title), its header lines and body
    lines split into cells, and the line after it (its note, when it has one)."""

    title: str
    header: list[list[str]]
    body: list[list[str]]
    after: str | None


def tables_in(lines: list[str]) -> list[ShownTable]:
    """Every rich table (heavy top border ``┏``) in ``lines``, in order."""
    found, i = [], 0
    while i < len(lines):
        if not lines[i].startswith("┏"):
            i += 1
            continue
        title = lines[i - 1] if i > 0 else ""
        header, body, i = [], [], i + 1
        while i < len(lines) and not lines[i].startswith("└"):
            line = lines[i]
            if line.startswith("┃"):
                header.append([cell.strip() for cell in line.split("┃")[1:-1]])
            elif line.startswith("│"):
                body.append([cell.strip() for cell in line.split("│")[1:-1]])
            elif not line.startswith(("┡", "├", "┣")):
                raise AssertionError(f"a line inside a table that is not part of it: {line!r}")
            i += 1
        if i == len(lines):
            raise AssertionError("a table without its bottom border: cut short")
        found.append(ShownTable(title, header, body, lines[i + 1] if i + 1 < len(lines) else None))
        i += 1
    return found


def _squeeze(text: str) -> str:
    return "".join(text.split())


def check_table(shown: ShownTable, expected: dict[str, Any], *, one_line_rows: bool,
                timings: frozenset[str] = frozenset()) -> None:
    """``shown`` shows ``expected`` (a table as ``--format json`` gives it: title, headers,
    rows as header -> cell, note) whole: its title and note each one line, every header
    and cell in its column in order (however the terminal's width wrapped or folded
    them: compared without whitespace), the first column's names whole on one line each,
    and, with ``one_line_rows`` (a pipe: the natural width), one line per row, each
    cell exactly. Columns named in ``timings`` (seconds measured by each run) are only
    checked to hold a number in every row."""
    from routeharness.results.tables import plain

    headers = [plain(h) for h in expected["headers"]]
    rows = [[plain(row[h]) for h in expected["headers"]] for row in expected["rows"]]
    timed = [j for j, header in enumerate(headers) if header in timings]
    if timed:
        shown = ShownTable(shown.title, shown.header,
                           [[re.sub(r"\d", "0", c) if j in timed else c for j, c in enumerate(line)]
                            for line in shown.body], shown.after)
        rows = [[re.sub(r"\d", "0", c) if j in timed else c for j, c in enumerate(row)]
                for row in rows]
    where = f"table {expected['title']!r}"
    assert shown.title == plain(expected["title"]), f"{where}: title line {shown.title!r}"
    columns = len(headers)
    for line in shown.header + shown.body:
        assert len(line) == columns, f"{where}: a line with {len(line)} cells: {line}"
    for j in range(columns):
        assert _squeeze("".join(line[j] for line in shown.header)) == _squeeze(headers[j]), \
            f"{where}: header {headers[j]!r} shown as {[line[j] for line in shown.header]}"
        got = _squeeze("".join(line[j] for line in shown.body))
        want = _squeeze("".join(row[j] for row in rows))
        assert got == want, f"{where}: column {headers[j]!r} shows {got!r}, holds {want!r}"
    names = [line[0] for line in shown.body if line[0]]
    assert names == [row[0] for row in rows if row[0]], \
        f"{where}: names {names} (each whole, on one line), rows {[row[0] for row in rows]}"
    if one_line_rows:
        assert shown.body == rows, f"{where}: {len(shown.body)} lines for {len(rows)} rows"
    if expected.get("note"):
        assert shown.after == plain(expected["note"]), f"{where}: note line {shown.after!r}"


def check_tables(lines: list[str], expected: list[dict[str, Any]], *, one_line_rows: bool,
                 timings: frozenset[str] = frozenset()) -> None:
    """Exactly the ``expected`` tables are shown in ``lines``, each whole (``check_table``)."""
    shown = tables_in(lines)
    assert [t.title for t in shown] == [t["title"] for t in expected], \
        f"tables shown {[t.title for t in shown]}, expected {[t['title'] for t in expected]}"
    for table, want in zip(shown, expected, strict=True):
        check_table(table, want, one_line_rows=one_line_rows, timings=timings)


def check_pipe_lines(shown: Shown) -> None:
    """In a pipe a line is exactly as long as its content: no line ends in blanks (rich
    padding a title, a message or a table to a width)."""
    for stream in (shown.stdout, shown.stderr):
        for line in stream.splitlines():
            assert line == line.rstrip(), f"a line padded with blanks: {line!r}"
