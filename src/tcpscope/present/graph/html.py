"""Interactive graphs in a self-contained web page: the data as JSON, drawn by graph.js.

Why our own 300 lines of JavaScript rather than plotly or bokeh: a page must open
offline, so a library's code goes into every file — plotly.js is ~3.5 MB, BokehJS
~1 MB plus a Python stack (pandas, Jinja2, tornado) — while the report must stay a few
MB for a whole capture with many graphs. The series are already reduced per pixel
column (decimate.py), so what the page needs is small: paths, markers, axes, a legend,
zoom and pan, and a tooltip naming the frame. graph.js does that with no dependency,
for the core install (no matplotlib needed for HTML).

`html_fragment(fig)` is one ``<figure>`` (for the report, which includes `SCRIPT` and
`STYLE_CSS` once); `html_page(figs)` a whole page.
"""
from __future__ import annotations

import html
import json
from importlib import resources

import numpy as np

from .figure import STYLE, Figure

__all__ = ["html_fragment", "html_page", "SCRIPT", "STYLE_CSS", "figure_json"]

SCRIPT = (resources.files(__package__) / "graph.js").read_text(encoding="utf-8")

STYLE_CSS = """
figure.tcpscope-graph { position: relative; margin: 1em 0 2em; font: 13px system-ui, sans-serif; }
figure.tcpscope-graph svg.tcpscope-plot { display: block; cursor: crosshair; user-select: none; }
.tcpscope-legend { list-style: none; padding: 0; margin: .4em 0 0 80px; columns: 3 16em; }
.tcpscope-legend li { cursor: pointer; margin: 0 0 .2em; break-inside: avoid; }
.tcpscope-legend li.off { opacity: .35; }
.tcpscope-legend svg { vertical-align: middle; }
.tcpscope-notes { white-space: pre-line; color: #444; margin: .4em 0 0 80px; }
.tcpscope-tip { position: absolute; display: none; pointer-events: none; white-space: pre;
  background: rgba(255,255,255,.95); border: 1px solid #999; padding: 3px 6px; font-size: 12px; }
"""


def _num(a: np.ndarray) -> list:
    """A column for JSON: integers stay integers, times keep ns precision."""
    if a.dtype.kind in "iu":
        return a.tolist()
    r = np.round(a, 9)
    whole = np.isfinite(r) & (r == np.round(r)) & (np.abs(r) < 2 ** 53)
    if whole.all():
        return r.astype(np.int64).tolist()
    return r.tolist()


def figure_json(fig: Figure) -> dict:
    """What graph.js draws: the figure's texts, layers (columns as lists) and styles."""
    keys = {ly.key for ly in fig.layers} | {k for _, _, k in fig.spans}
    return {
        "kind": fig.kind, "title": fig.title, "xlabel": fig.xlabel, "ylabel": fig.ylabel,
        "y2label": fig.y2label, "notes": fig.notes, "words": fig.words,
        "rows": {str(k): v for k, v in fig.row_labels.items()},
        "layers": [{"key": ly.key, "draw": ly.draw, "label": ly.label, "axis": ly.axis, "text": ly.text,
                    "cols": {k: _num(v) for k, v in ly.cols.items()}}
                   for ly in fig.layers if len(ly)],
        "spans": [[a, b, k] for a, b, k in fig.spans],
        "legend": [list(e) for e in fig.legend()],
        "styles": {k: {"color": STYLE[k].color, "marker": STYLE[k].marker, "ms": STYLE[k].ms,
                       "lw": STYLE[k].lw, "dash": STYLE[k].dash} for k in sorted(keys)},
    }


def html_fragment(fig: Figure) -> str:
    """One graph: a ``<figure>`` holding its data; graph.js draws it."""
    data = json.dumps(figure_json(fig), ensure_ascii=False, separators=(",", ":"))
    data = data.replace("</", "<\\/")
    return (f'<figure class="tcpscope-graph" data-kind="{fig.kind}">'
            f'<script type="application/json" class="tcpscope-data">{data}</script></figure>\n')


def html_page(figs: list[Figure], title: str | None = None, lang: str = "en") -> str:
    """A whole page with `figs`, readable offline."""
    head = html.escape(title or (figs[0].title if figs else "tcpscope"))
    body = "".join(html_fragment(f) for f in figs)
    return (f'<!DOCTYPE html>\n<html lang="{"zh-CN" if lang == "zh" else "en"}"><head><meta charset="utf-8">'
            f"<title>{head}</title><style>{STYLE_CSS}</style></head>\n<body>\n{body}"
            f"<script>{SCRIPT}</script>\n</body></html>\n")
