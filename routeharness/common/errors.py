"""Errors the harness raises for bad input: each prints as one clear line."""

from __future__ import annotations


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
