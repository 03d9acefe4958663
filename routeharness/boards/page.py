"""A board's self-contained HTML page: the ranking table (with intervals and tiers, and
the rule that makes them), the frontier plot of the verified submissions (PNG, base64),
the unverified ones apart and the rejected files; every name HTML-escaped."""

from __future__ import annotations

import base64
import html
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from routeharness.boards.definition import MAIN_METRICS
from routeharness.results.plots import plot_frontiers
from routeharness.results.records import ResultSet
from routeharness.results.tables import ReportTable


def frontier_png(results: Sequence[ResultSet], seed: int) -> bytes | None:
    """The frontiers of several result sets (one router each: a board's submissions) at
    ``seed``, on the first one's tasks; PNG bytes, None when there is nothing to plot."""
    if not results:
        return None
    first = results[0]
    records = [r for result in results for r in result.records if r.seed == seed]
    if not records:
        return None
    merged = first.with_runs(first.tasks, records)
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
               results: Sequence[ResultSet], unverified: ReportTable | None = None,
               tiers: str = "") -> str:
    """One self-contained HTML page: a board's ranking ``table`` (its verified rows) and
    ``tiers`` (how its intervals and tiers are made), the frontier plot of their
    ``results`` (PNG, base64, first seed), the ``unverified`` submissions in their own
    section below, and the ``rejected`` files. Every name is HTML-escaped."""
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
<p class="meta" id="tiers">{esc(tiers)}</p>
{image}
{apart}
{f"<h2>Rejected submissions</h2><ul>{listed}</ul>" if listed else ""}
</body></html>
"""
