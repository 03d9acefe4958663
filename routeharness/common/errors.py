"""Errors the harness raises for bad input: each prints as one clear line."""

from __future__ import annotations

#: the longest message ``one_line`` keeps from an exception it did not raise
ONE_LINE_LIMIT = 300


def one_line(exc: BaseException, *, with_type: bool = False) -> str:
    """The one-line form of an exception raised by code we call (a library, a plugin):
    its message with every line break and run of spaces made one space, cut at
    ``ONE_LINE_LIMIT`` characters, or its type's name when it has no message;
    ``with_type`` puts ``Type: `` in front."""
    text = " ".join(str(exc).split())
    if len(text) > ONE_LINE_LIMIT:
        text = text[:ONE_LINE_LIMIT - 3] + "..."
    name = type(exc).__name__
    if not text:
        return name
    return f"{name}: {text}" if with_type else text


class RouteHarnessError(Exception):
    """Base class: an error a user can act on. The CLI prints it as one line, exit 1."""


class UnknownNameError(RouteHarnessError):
    """A router, task or encoder name that is not registered (CLI exit code 2)."""

    def __init__(self, kind: str, name: str, known: list[str], *, note: str = ""):
        """``note``: appended to the message (e.g. the plugins that failed to load)."""
        import difflib

        self.kind, self.name, self.known = kind, name, known
        close = difflib.get_close_matches(name, known, n=3, cutoff=0.5)
        hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
        listing = ", ".join(known) if known else "none registered"
        super().__init__(f"unknown {kind} {name!r}.{hint} Known: {listing}{note}.")


class DataError(RouteHarnessError):
    """A malformed dataset: names the file, the row and the column where known."""

    def __init__(self, message: str, *, source: str | None = None, row: int | None = None,
                 column: str | None = None):
        self.source, self.row, self.column, self.detail = source, row, column, message
        where = []
        if source is not None:
            where.append(str(source))
        if row is not None:
            where.append(f"row {row}")
        if column is not None:
            where.append(f"column {column!r}")
        prefix = ": ".join([", ".join(where)]) + ": " if where else ""
        super().__init__(prefix + message)


class TaskCardError(RouteHarnessError):
    """A task card (YAML) that does not follow the card schema."""


class PluginError(RouteHarnessError):
    """A plugin that registers a duplicate name or breaks the plugin contract.

    With ``plugin``, the message is ``plugin 'NAME': DETAIL`` and ``detail`` keeps the
    part after the name (for reports that already say which plugin).
    """

    def __init__(self, message: str, *, plugin: str | None = None):
        self.plugin, self.detail = plugin, message
        super().__init__(f"plugin {plugin!r}: {message}" if plugin is not None else message)


class CheckpointError(RouteHarnessError):
    """A checkpoint (``OUTPUT.partial``) that ``--resume`` cannot continue from."""
