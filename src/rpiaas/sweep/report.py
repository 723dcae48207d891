"""A sweep's ``report.html``: the summary table and every plot on one page that needs nothing else.

:func:`render_report` lays out one HTML page: a table (in a sweep, one row per
metric and one column per group, filled by
:func:`rpiaas.sweep.summary.aggregate`), then every plot embedded as a
``data:`` URI. The page loads no script, font, style sheet or image from
anywhere: its Content-Security-Policy forbids it.
"""

from __future__ import annotations

import base64
import html
from collections.abc import Sequence
from pathlib import Path
from typing import Any

__all__ = ["render_report", "write_report"]

_CSS = """
body{font-family:system-ui,sans-serif;margin:1.5em auto;max-width:1400px;color:#222;padding:0 1em}
h1{font-size:1.5em}h2{font-size:1.2em;margin-top:1.6em;border-bottom:1px solid #ddd}
.scroll{overflow-x:auto}table{border-collapse:collapse;margin:.5em 0;font-size:.9em}
td,th{padding:.2em .6em;border-bottom:1px solid #eee;text-align:right;white-space:nowrap}
td:first-child,th:first-child{text-align:left}th{vertical-align:bottom}
.plots{display:flex;flex-wrap:wrap;gap:1em}
figure.plot{margin:0;border:1px solid #ddd;padding:.4em;background:#fff}
figure.plot img{display:block;width:580px;max-width:100%;height:auto}
figcaption{font-size:.85em;color:#444}.note{color:#555;font-size:.9em}
"""
_CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"


def _e(x: Any) -> str:
    return html.escape(str(x), quote=True)


def render_report(title: str, note: str, head: Sequence[Sequence[str]], body: Sequence[Sequence[str]],
                  plots: Sequence[Path], after: str = "") -> str:
    """The page: a table (``head`` rows of column titles, ``body`` rows of cells, the first cell of each
    row its name) and ``plots`` (PNG files) inline; ``note`` above the table, ``after`` below the plots."""
    parts = [f"<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
             f"<meta http-equiv='Content-Security-Policy' content=\"{_CSP}\">"
             f"<title>{_e(title)}</title><style>{_CSS}</style></head><body>",
             f"<h1>{_e(title)}</h1>", f"<p class='note'>{_e(note)}</p>", "<h2>Summary</h2>"]
    if not body:
        parts.append("<p id='no-runs'>No run completed: the sweep's errors went to its standard error.</p>")
    else:
        parts.append("<div class='scroll'><table id='summary'><thead>")
        parts += ["<tr>" + "".join(f"<th>{_e(c)}</th>" for c in row) + "</tr>" for row in head]
        parts.append("</thead><tbody>")
        parts += [f"<tr id='metric-{_e(row[0])}'>" + "".join(f"<td>{_e(c)}</td>" for c in row) + "</tr>"
                  for row in body]
        parts.append("</tbody></table></div>")
    parts.append("<h2>Plots</h2>")
    if plots:
        parts.append("<p class='note'>Means with their 95 % confidence intervals as error bars; at one x the "
                     "series are drawn a little apart so that no interval hides another.</p>")
        parts.append("<div class='plots'>")
        for path in plots:
            data = base64.b64encode(path.read_bytes()).decode("ascii")
            parts.append(f"<figure class='plot' id='plot-{_e(path.stem)}'>"
                         f"<img src='data:image/png;base64,{data}' alt='{_e(path.stem)}'>"
                         f"<figcaption>{_e(path.stem)}</figcaption></figure>")
        parts.append("</div>")
    else:
        parts.append("<p class='note'>No plot: no run completed, no metric varies, or matplotlib (the sweep "
                     "extra) is not installed.</p>")
    if after:
        parts.append(f"<p class='note' id='after'>{_e(after)}</p>")
    parts.append("</body></html>\n")
    return "\n".join(parts)


def write_report(path: Path, page: str) -> Path:
    """Write ``page`` to ``path`` whole (a reader never sees half a page); ``path``."""
    tmp = path.with_suffix(".html.tmp")
    tmp.write_text(page, encoding="utf-8")
    tmp.replace(path)
    return path
