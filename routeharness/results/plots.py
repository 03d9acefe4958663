"""The cost-quality frontier plot of a result set (PNG), shared by ``eval --plot`` and
``results show --plot``, and the self-contained HTML leaderboard page that embeds it.

Names come from data, so every label is plain text: mathtext (``$...$``) and TeX are off
inside the plot, and legend labels are passed explicitly (matplotlib drops a label that
starts with ``_`` otherwise). Lines never share a style: 20 colours, then line styles.
"""

from __future__ import annotations

import base64
import html
import itertools
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from routeharness.common.errors import RouteHarnessError
from routeharness.common.jsonfiles import check_output_path
from routeharness.results.records import ResultSet
from routeharness.results.tables import ReportTable

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
    tmp = path.with_name(f".{path.name}.tmp.png")
    try:
        fig.savefig(tmp, dpi=130)
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise RouteHarnessError(f"{path}: cannot write the plot: "
                                f"{exc.strerror or exc}") from None
    finally:
        plt.close(fig)
    return path


# --- the HTML leaderboard page ------------------------------------------------------------------
def frontier_png(results: Sequence[ResultSet], seed: int) -> bytes | None:
    """The frontiers of several result sets (one router each: a board's submissions) at
    ``seed``, on the first one's tasks; PNG bytes, None when there is nothing to plot."""
    if not results:
        return None
    first = results[0]
    records = tuple(r for result in results for r in result.records if r.seed == seed)
    merged = ResultSet(encoder=first.encoder, protocol=first.protocol, tasks=first.tasks,
                       records=records)
    with tempfile.TemporaryDirectory() as tmp:
        return plot_frontiers(merged, Path(tmp) / "frontier.png").read_bytes()


def _html_table(table: ReportTable, css: str = "", bound: bool = True) -> str:
    """``table`` as an HTML table, every cell escaped; rows ranked "-" get class bound."""
    esc = html.escape
    head = "".join(f"<th>{esc(h)}</th>" for h in table.headers)
    body = "".join(
        "<tr" + (' class="bound"' if bound and row[0] == "-" else "") + ">"
        + "".join(f"<td>{esc(c)}</td>" for c in row) + "</tr>" for row in table.rows)
    return f"<table{css}><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def board_page(board: Any, table: ReportTable, rejected: Sequence[tuple[str, list[str]]],
               results: Sequence[ResultSet], unverified: ReportTable | None = None) -> str:
    """One self-contained HTML page: a board's ranking ``table`` (its verified rows), the
    frontier plot of their ``results`` (PNG, base64, first seed), the ``unverified``
    submissions in their own section below, and the ``rejected`` files. Every name is
    HTML-escaped."""
    from routeharness.boards.definition import MAIN_METRICS

    esc = html.escape
    png = frontier_png(results, board.seeds[0])
    image = (f'<img alt="cost-quality frontiers" src="data:image/png;base64,'
             f'{base64.b64encode(png).decode("ascii")}">' if png
             else "<p>No verified submissions yet.</p>")
    apart = ("" if unverified is None else
             f'<h2 id="unverified">Unverified submissions (not ranked)</h2>\n'
             f'<p class="meta">{esc(unverified.note)}</p>\n'
             + _html_table(unverified, ' class="unverified"', bound=False))
    listed = "".join(f"<li>{esc(f)}: {esc('; '.join(p))}</li>" for f, p in rejected)
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>routeharness leaderboard {esc(board.name)}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2em; color: #222; }}
table {{ border-collapse: collapse; margin: 1em 0; }}
th, td {{ border: 1px solid #ccc; padding: 0.3em 0.7em; text-align: right; }}
th {{ background: #f0f0f0; }}
td:nth-child(2), td:nth-child(3), th:nth-child(2), th:nth-child(3) {{ text-align: left; }}
tr.bound td {{ color: #777; font-style: italic; }}
table.unverified td {{ color: #8a5a00; }}
table.unverified td:first-child, table.unverified td:last-child {{ text-align: left; }}
img {{ max-width: 100%; }} .meta {{ color: #555; font-size: 0.9em; }}
</style></head><body>
<h1>Leaderboard {esc(board.name)}</h1>
<p>{esc(board.description.strip())}</p>
<p class="meta">Main metric: {esc(board.main_metric)}, {esc(MAIN_METRICS[board.main_metric])}; the
mean over tasks of the mean over seeds {esc(str(list(board.seeds)))}; encoder
{esc(board.encoder)}; tasks {esc(", ".join(f"{t.name} v{t.version}" for t in board.tasks))}.
Only submissions re-run by <code>leaderboard verify</code> are ranked; upper bounds are
shown unranked.</p>
{_html_table(table)}
{image}
{apart}
{f"<h2>Rejected submissions</h2><ul>{listed}</ul>" if listed else ""}
</body></html>
"""
