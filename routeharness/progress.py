"""Progress and messages from long work; the CLI passes a rich implementation."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager


class Reporter:
    """Progress and messages from the protocol; the CLI passes a rich implementation."""

    def log(self, message: str) -> None:
        pass

    @contextmanager
    def progress(self, description: str, total: int) -> Iterator[Callable[[int], None]]:
        yield lambda advance: None
