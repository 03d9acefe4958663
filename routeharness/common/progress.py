"""Progress and messages from long work; the CLI passes a rich implementation
(``routeharness.cli.progress.RichReporter``)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Protocol


class Advance(Protocol):
    """``advance(steps=1, status=None)``: ``steps`` more units done; ``status`` (when
    given) says what is being worked on now, e.g. "knn seed 0: tuning 3/8 (k=10)"."""

    def __call__(self, steps: int = 1, status: str | None = None) -> None: ...


def _ignore(steps: int = 1, status: str | None = None) -> None:
    pass


class Reporter:
    """Progress and messages from the protocol; silent. The CLI passes a rich one."""

    def log(self, message: str) -> None:
        pass

    @contextmanager
    def progress(self, description: str, total: int) -> Iterator[Advance]:
        """A unit of work of ``total`` steps; yields the ``advance`` callback."""
        yield _ignore
