"""The cost-quality frontier plot of a result set (PNG), shared by ``eval --plot``,
``results show --plot`` and the HTML leaderboard page (``routeharness.boards.page``).

Names come from data, so every label is plain text: mathtext (``$...$``) and TeX are off
inside the plot, and legend labels are passed explicitly (matplotlib drops a label that
starts with ``_`` otherwise). Lines never share a style: 20 colours, then line styles.
"""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

from routeharness.common.files import check_output_path, write_bytes
from routeharness.results.records import ResultSet

#: colours (tab20) x line styles: 80 distinct lines before anything repeats
LINE_STYLES = ("-", "--", "-.", ":")
#: matplotlib settings that keep names plain text
PLAIN_TEXT = {"text.parse_math": False, "text.usetex": False}


def line_styles(n: int) -> list[tuple[Any, str]]:
    """``n`` (colour, line style) pairs, all distinct for n <= 80."""
    import matplotlib

    # tab20's dark shades first (tab10's order), then the light ones
    colours = [matplotlib.colormaps["tab20"](i) for i in [*range(0, 20, 2), *range(1, 20, 2)]]
    pairs = list(itertools.product(LINE_STYLES, colours))
    return [(colour, style) for style, colour in (pairs[i % len(pairs)] for i in range(n))]


def _lines(result: ResultSet, task: str) -> list[tuple[str, Any, bool]]:
    """(label, frontier, upper bound) per router (first seed), then the oracle."""
    lines, seen = [], set()
    for record in result.records_of(task):
        if record.router in seen:
            continue
        seen.add(record.router)
        label = record.router + (" (upper bound)" if record.upper_bound else "")
        lines.append((label, record.frontier, record.upper_bound))
    oracle = result.tasks[task].oracle
    if oracle is not None and "oracle" not in seen:
        lines.append(("oracle (upper bound)", oracle.frontier, True))
    return lines


def plot_frontiers(result: ResultSet, path: str | Path) -> Path:
    """One panel per task: every router's frontier (first seed) and the oracle's, single
    models as dots; written atomically as a PNG at ``path``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path = check_output_path(path, "plot")
    tasks = list(result.tasks)
    with matplotlib.rc_context(PLAIN_TEXT):
        fig, axes = plt.subplots(1, len(tasks), figsize=(6 * len(tasks), 4.6), squeeze=False)
        for ax, task in zip(axes[0], tasks):
            singles = result.tasks[task].single_models
            handles = [ax.scatter([s.cost for s in singles], [s.quality for s in singles],
                                  c="grey", s=18, zorder=3)]
            labels = ["single models"]
            lines = _lines(result, task)
            for (label, front, upper), (colour, style) in zip(lines, line_styles(len(lines))):
                cost = [c for c in front.cost] + [1.0]
                quality = [100 * q if q is not None else None for q in front.quality]
                quality.append(quality[-1])
                handle, = ax.plot(cost, quality, marker=".", ms=3, lw=1.4, color=colour,
                                  ls="--" if upper and style == "-" else style)
                handles.append(handle)
                labels.append(label)
            ax.set_xlim(0, 1.02)
            ax.set_xlabel("cost (most expensive model's mean = 1)")
            ax.set_ylabel("quality (mean score x 100)")
            ax.set_title(f"{task}: cost-quality frontiers")
            ax.grid(alpha=0.3)
            ax.legend(handles, labels, fontsize=7, loc="lower right")
        save_figure(fig, path)
    return path


def save_figure(fig: Any, path: Path) -> Path:
    """``fig`` laid out and written atomically as a PNG at ``path`` (checked by
    ``check_output_path``), then closed; one line if it cannot be written."""
    import matplotlib.pyplot as plt

    fig.tight_layout()
    try:
        write_bytes(lambda handle: fig.savefig(handle, format="png", dpi=130), path, "plot")
    finally:
        plt.close(fig)
    return path
