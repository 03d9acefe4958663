"""The studies' PNG plots: curves with bands (learning curves, sweeps) and the
locality plot (agreement by distance decile against the shuffled-pairing null band).
Names are plain text (``routeharness.results.plots.PLAIN_TEXT``); files are written atomically."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from routeharness.common.files import check_output_path
from routeharness.results.plots import PLAIN_TEXT, line_styles, save_figure

#: one panel: line label -> (x values, y means, y stds or None)
Panel = dict[str, tuple[list[float], list[float | None], list[float | None] | None]]


def _axes(n: int, columns: int | None = None) -> tuple[Any, Any]:
    """A figure of ``n`` panels in one row, or in rows of ``columns``; the axes as one
    row of ``n`` (spare panels of the last row hidden)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if columns is None or columns >= n:
        return plt.subplots(1, n, figsize=(6 * n, 4.4), squeeze=False)
    rows = -(-n // columns)
    fig, axes = plt.subplots(rows, columns, figsize=(6 * columns, 4.4 * rows), squeeze=False)
    flat = axes.ravel()
    for ax in flat[n:]:
        ax.set_visible(False)
    return fig, flat[None, :n]


def curves(panels: dict[str, Panel], path: str | Path, *, xlabel: str, ylabel: str,
           logx: bool = False, marks: dict[str, dict[str, float]] | None = None,
           columns: int | None = None) -> Path:
    """One panel per title: a line per label with a ± std band; ``marks[title][label]``
    an x to mark on that line (e.g. the value tuning picked); ``columns``: panels per row
    (default: all in one row)."""
    import matplotlib
    import matplotlib.ticker

    path = check_output_path(path, "plot")
    with matplotlib.rc_context(PLAIN_TEXT):
        fig, axes = _axes(len(panels), columns)
        for ax, (title, lines) in zip(axes[0], panels.items()):
            for (label, (x, y, std)), (colour, style) in zip(lines.items(),
                                                             line_styles(len(lines))):
                points = [(a, b, s) for a, b, s in zip(x, y, std or [None] * len(x))
                          if b is not None]
                if not points:
                    continue
                xs, ys, ss = zip(*points)
                ax.plot(xs, ys, marker="o", ms=3, lw=1.4, color=colour, ls=style, label=label)
                if std is not None:
                    ax.fill_between(xs, [b - (s or 0) for b, s in zip(ys, ss)],
                                    [b + (s or 0) for b, s in zip(ys, ss)], color=colour,
                                    alpha=0.15, lw=0)
                mark = (marks or {}).get(title, {}).get(label)
                if mark is not None and mark in xs:
                    ax.plot([mark], [ys[xs.index(mark)]], marker="*", ms=12, color=colour)
            if logx:  # log ticks are mathtext, which PLAIN_TEXT turns off: label them plainly
                ax.set_xscale("log")
                ticks = sorted({x for _, (xs, _, _) in lines.items() for x in xs})
                ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
                ax.set_xticks(ticks, [f"{t:g}" for t in ticks])
            ax.set_xlabel(xlabel)
            ax.set_ylabel(ylabel)
            ax.set_title(title)
            ax.grid(alpha=0.3)
            ax.legend(fontsize=7, loc="lower right")
        return save_figure(fig, path)


def deciles(panels: dict[str, list[dict[str, Any]]], path: str | Path) -> Path:
    """Per panel, mean outcome agreement by distance decile with the null band of
    shuffled pairings. Each row: ``mean_distance``, ``agreement``, ``null_low``,
    ``null_high``."""
    import matplotlib

    path = check_output_path(path, "plot")
    with matplotlib.rc_context(PLAIN_TEXT):
        fig, axes = _axes(len(panels))
        for ax, (title, rows) in zip(axes[0], panels.items()):
            x = [r["mean_distance"] for r in rows]
            ax.fill_between(x, [r["null_low"] for r in rows], [r["null_high"] for r in rows],
                            color="grey", alpha=0.3, lw=0, label="shuffled pairs (95%)")
            ax.plot(x, [r["agreement"] for r in rows], marker="o", lw=1.6, label="pairs")
            ax.set_xlabel("cosine distance (decile mean)")
            ax.set_ylabel("outcome agreement")
            ax.set_title(title)
            ax.grid(alpha=0.3)
            ax.legend(fontsize=7)
        return save_figure(fig, path)
