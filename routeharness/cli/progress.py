"""The CLI's progress reporter: a rich bar in a terminal, plain lines elsewhere.

In a terminal the bar advances per step (each configuration tuned, each final fit, each
batch encoded) and its description names what is running now. When standard error is
not a terminal (a log file, CI, a pipe) there are no redraws: one plain line when the
work starts, then one whenever another tenth is done or ``PLAIN_INTERVAL_S`` seconds
have passed with progress made, and one when it ends. Messages and names are printed as
plain text, never as rich markup, their control characters escaped (``tables.plain``).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from routeharness.common.progress import Advance, Reporter, _ignore
from routeharness.results.tables import plain

#: at most one plain progress line per this many seconds (besides each tenth done)
PLAIN_INTERVAL_S = 10.0


def _stderr_console() -> Any:
    """The CLI's one console on standard error (``routeharness.cli.render.console``): its
    lines are never wrapped, their control characters escaped."""
    from routeharness.cli.render import console

    return console(stderr=True)


class RichReporter(Reporter):
    """Messages and progress on standard error; ``quiet`` shows neither."""

    def __init__(self, quiet: bool = False, console: Any = None):
        self.console = console if console is not None else _stderr_console()
        self.quiet = quiet

    def log(self, message: str) -> None:
        if not self.quiet:
            from rich.text import Text

            self.console.print(Text.assemble(("• ", "dim"), plain(message)), soft_wrap=True)

    @contextmanager
    def progress(self, description: str, total: int) -> Iterator[Advance]:
        if self.quiet or total <= 0:
            yield _ignore
        elif self.console.is_terminal:
            with self._bar(description, total) as advance:
                yield advance
        else:
            with self._lines(description, total) as advance:
                yield advance

    @contextmanager
    def _bar(self, description: str, total: int) -> Iterator[Advance]:
        from rich.markup import escape
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
        )

        # the description column renders markup: names are escaped into it
        with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                      TimeElapsedColumn(), TextColumn("{task.fields[status]}", markup=False),
                      console=self.console, transient=True) as bar:
            handle = bar.add_task(escape(plain(description)), total=total, status="")

            def advance(steps: int = 1, status: str | None = None) -> None:
                if status is None:
                    bar.advance(handle, steps)
                else:
                    bar.update(handle, advance=steps, status=plain(status))

            yield advance

    @contextmanager
    def _lines(self, description: str, total: int) -> Iterator[Advance]:
        from rich.text import Text

        started = time.monotonic()
        state: dict[str, Any] = {"done": 0, "tenth": 0, "printed": started, "status": "",
                                 "shown": -1}

        def line(final: bool = False) -> None:
            done, elapsed = state["done"], time.monotonic() - started
            text = f"{description}: {done}/{total} ({100 * done // total}%), {elapsed:.0f} s"
            if state["status"] and not final:
                text += f"; {state['status']}"
            self.console.print(Text(plain(text) + (" (done)" if final else "")),
                               soft_wrap=True)
            state["printed"], state["shown"] = time.monotonic(), done

        def advance(steps: int = 1, status: str | None = None) -> None:
            state["done"] = min(total, state["done"] + steps)
            if status is not None:
                state["status"] = status
            tenth = 10 * state["done"] // total
            due = time.monotonic() - state["printed"] >= PLAIN_INTERVAL_S
            if tenth > state["tenth"] or (due and state["done"] != state["shown"]):
                state["tenth"] = tenth
                if state["done"] < total:
                    line()

        line()
        try:
            yield advance
        finally:
            line(final=state["done"] >= total)
