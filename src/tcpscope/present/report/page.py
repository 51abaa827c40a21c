"""The report's HTML: the overview, the connection table, a section per detailed connection.

Everything the page needs is inside it: the styles, graph.js (present/graph/html.py)
with each graph's data, report.js (`SCRIPT`: the table's sorting and filtering, opening
a connection's section from its row), the ladders as inline SVG. Every word comes from
the catalogues (``report.*`` ids, and those of the story, the overview and the graphs).
"""
from __future__ import annotations

import html
import re
from dataclasses import replace
from datetime import datetime, timezone

import numpy as np

from ... import __version__
from ..audit import sentence
from ..explain import explain_story
from ..graph.html import SCRIPT as GRAPH_SCRIPT
from ..graph.html import STYLE_CSS as GRAPH_CSS
from ..graph.html import html_fragment
from ..i18n import Catalogue, catalogue
from ..ladder import build_ladder, render_svg
from ..overview import ConnRow, overview_facts
from ..story import ConnectionStory, Run, Step
from ..story.episodes import is_long, model_chapters, told_items
from ..timeline import Timeline
from . import ANOMALIES, LADDER_ROWS, ROUNDS, STORY_MAX, TABLE_MAX, Detail, ReportData

__all__ = ["render_page", "SCRIPT", "CSS"]

CSS = """
body { font: 14px/1.45 system-ui, sans-serif; margin: 0 auto; max-width: 1240px;
  padding: 0 1.2em 3em; color: #222; }
h1 { font-size: 1.5em; margin: .8em 0 .2em; }
h2 { margin-top: 1.6em; border-bottom: 1px solid #ccc; }
h3 { margin: 1.2em 0 .4em; } .muted { color: #666; }
.note { color: #7a5b00; background: #fff8e0; padding: .3em .6em; border-left: 3px solid #e0b000; }
.cards { display: flex; flex-wrap: wrap; gap: .8em; }
.card { border: 1px solid #ddd; border-radius: 6px; padding: .5em .9em; min-width: 16em; flex: 1; }
.card h3 { margin: .2em 0 .4em; font-size: 1em; }
.card ul { margin: 0; padding-left: 1.1em; }
table.conns { border-collapse: collapse; width: 100%; font-size: 13px; }
table.conns th { position: sticky; top: 0; background: #f0f3f7; cursor: pointer; text-align: left;
  padding: 4px 6px; border-bottom: 2px solid #bbb; white-space: nowrap; }
table.conns th[aria-sort=ascending]::after { content: " ▲"; }
table.conns th[aria-sort=descending]::after { content: " ▼"; }
table.conns td { padding: 3px 6px; border-bottom: 1px solid #eee; white-space: nowrap; }
table.conns td.num { text-align: right; font-variant-numeric: tabular-nums; }
table.conns tr.bad td { background: #fff4f0; }
.tablebox { max-height: 32em; overflow: auto; border: 1px solid #ddd; }
#filter { width: 28em; padding: .3em .5em; margin: .4em 0; }
details.conn { border: 1px solid #ccd; border-radius: 6px; margin: .8em 0; padding: .2em .8em; }
details.conn > summary { cursor: pointer; font-weight: 600; padding: .4em 0; }
details.part > summary { cursor: pointer; color: #124; margin: .5em 0; }
pre.story { font: 12px/1.35 ui-monospace, monospace; background: #fafafa; border: 1px solid #eee;
  padding: .6em; overflow-x: auto; white-space: pre; }
.ladder { overflow: auto; max-height: 40em; border: 1px solid #eee; }
table.rounds { border-collapse: collapse; font-size: 12px; } table.rounds td, table.rounds th
  { padding: 2px 6px; border-bottom: 1px solid #eee; text-align: right; }
ul.anoms li { margin: .2em 0; } .flag { font-weight: 600; color: #a33; }
"""

SCRIPT = r"""
(function () {
  var table = document.getElementById("conns");
  if (!table) return;
  var body = table.tBodies[0];
  Array.prototype.forEach.call(table.tHead.rows[0].cells, function (th, col) {
    th.addEventListener("click", function () {
      var asc = th.getAttribute("aria-sort") !== "ascending";
      Array.prototype.forEach.call(table.tHead.rows[0].cells,
                                   function (o) { o.removeAttribute("aria-sort"); });
      th.setAttribute("aria-sort", asc ? "ascending" : "descending");
      var num = th.getAttribute("data-type") === "num";
      var rows = Array.prototype.slice.call(body.rows);
      rows.sort(function (a, b) {
        var x = a.cells[col].getAttribute("data-v");
        var y = b.cells[col].getAttribute("data-v");
        var c = num ? (+x) - (+y) : (x < y ? -1 : x > y ? 1 : 0);
        return asc ? c : -c;
      });
      rows.forEach(function (r) { body.appendChild(r); });
    });
  });
  var filter = document.getElementById("filter"), count = document.getElementById("shown");
  function apply() {
    var words = filter.value.toLowerCase().split(/\s+/).filter(Boolean), n = 0;
    Array.prototype.forEach.call(body.rows, function (r) {
      var text = r.textContent.toLowerCase();
      var ok = words.every(function (w) { return text.indexOf(w) >= 0; });
      r.style.display = ok ? "" : "none";
      if (ok) n++;
    });
    count.textContent = n;
  }
  filter.addEventListener("input", apply);
  function open() {
    var id = location.hash.slice(1), el = id && document.getElementById(id);
    if (el && el.tagName === "DETAILS") { el.open = true; el.scrollIntoView(); }
  }
  window.addEventListener("hashchange", open);
  open();
})();
"""

_ESC = html.escape


def _e(text: object) -> str:
    return _ESC(str(text), quote=True)


def _note(cat: Catalogue, msg_id: str, params: dict | None = None, cls: str = "note") -> str:
    """A paragraph of the catalogue's message `msg_id` (`cls`: note, muted)."""
    return f'<p class="{cls}">{_e(cat.render(msg_id, params))}</p>'


def render_page(data: ReportData, name: str) -> str:
    """The whole page."""
    cat = catalogue(data.lang)
    ov = data.overview
    title = _e(cat.render("report.title", {"name": name}))
    parts = [
        f'<!DOCTYPE html>\n<html lang="{"zh-CN" if data.lang == "zh" else "en"}"><head>'
        f'<meta charset="utf-8"><meta name="viewport" content="width=device-width">'
        f"<title>{title}</title><style>{CSS}{GRAPH_CSS}</style></head><body>",
        f"<h1>{title}</h1>",
        _note(cat, "report.made", {"version": __version__, "mode": data.mode, "when": _now()},
              "muted"),
        _overview(cat, data),
        _table(cat, ov.rows, ov.connections, {d.row.stream for d in data.details}),
        f'<h2 id="details">{_e(cat.render("report.details"))}</h2>',
        _note(cat, "report.details_why", {"count": len(data.details)}, "muted"),
    ]
    parts += [_detail(cat, data, d, k == 0) for k, d in enumerate(data.details)]
    parts.append(f"<script>{GRAPH_SCRIPT}</script><script>{SCRIPT}</script></body></html>\n")
    return "\n".join(parts)


def _now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


def _overview(cat: Catalogue, data: ReportData) -> str:
    ov = data.overview
    detailed = {d.row.stream for d in data.details}
    out = [f'<h2 id="overview">{_e(cat.render("overview.title"))}</h2>']
    if ov.damaged:
        out.append(_note(cat, "report.damaged"))
    sections = overview_facts(ov)
    head, facts = sections[0]
    out.append(f"<p>{_e(cat.render(facts[0].id, facts[0].params))}</p><div class=\"cards\">")
    for head, facts in sections[1:]:
        items = []
        for f in facts:
            if f.id == "overview.finding":
                text = sentence(f.params["finding"], data.lang)
            else:
                text = cat.render(f.id, f.params)
            link = f.params.get("stream")
            if link in detailed and f.id in ("overview.transfer", "overview.pick",
                                             "overview.pick_plain"):
                items.append(f'<li><a href="#s{link}">{_e(text)}</a></li>')
            else:
                items.append(f"<li>{_e(text)}</li>")
        out.append(f'<div class="card"><h3>{_e(cat.render(head))}</h3>'
                   f'<ul>{"".join(items)}</ul></div>')
    out.append("</div>")
    return "\n".join(out)


_COLS = (("stream", "num"), ("client", "text"), ("server", "text"), ("packets", "num"),
         ("bytes", "num"), ("duration", "num"), ("handshake", "text"), ("teardown", "text"),
         ("anomalies", "num"), ("states", "text"))


def _table(cat: Catalogue, rows: list[ConnRow], count: int, detailed: set[int]) -> str:
    """The table of the kept rows (`count`: all connections of the capture)."""
    ranked = sorted(rows, key=lambda r: (-r.score, r.stream))[:TABLE_MAX]
    ranked.sort(key=lambda r: r.stream)
    head = "".join(f'<th data-type="{t}">{_e(cat.render("report.col." + c))}</th>'
                   for c, t in _COLS)
    body = []
    for r in ranked:
        hs = cat.term("term.handshake", r.handshake)
        td = cat.term("term.teardown", r.teardown)
        stream = (f'<a href="#s{r.stream}">{r.stream}</a>' if r.stream in detailed
                  else str(r.stream))
        flags = ", ".join(f"{cat.term('term.flag', k)} {v}" for k, v in sorted(r.anomalies.items()))
        cells = [
            (r.stream, stream, "num"), (r.client, _e(r.client), ""),
            (r.server, _e(r.server), ""),
            (r.packets, r.packets, "num"), (sum(r.bytes), _e(cat.size(sum(r.bytes))), "num"),
            (round(r.duration, 6), f"{r.duration:.3f}", "num"), (hs, _e(hs), ""), (td, _e(td), ""),
            (r.anomaly_count, f'<span title="{_e(flags)}">{r.anomaly_count}</span>', "num"),
            (f"{r.client_final} {r.server_final}", f"{r.client_final} / {r.server_final}", ""),
        ]
        bad = r.handshake in ("rejected", "unanswered") or r.teardown.startswith("rst")
        tds = "".join(f'<td data-v="{_e(v)}"{" class=num" if c else ""}>{shown}</td>'
                      for v, shown, c in cells)
        body.append(f'<tr{" class=bad" if bad else ""}>{tds}</tr>')
    out = [f'<h2 id="connections">{_e(cat.render("report.connections"))}</h2>',
           f'<input id="filter" type="search" placeholder="{_e(cat.render("report.filter"))}"> '
           f'<span class="muted">{_e(cat.render("report.shown"))} '
           f'<span id="shown">{len(ranked)}</span> / {count}</span>']
    if count > len(ranked):
        out.append(_note(cat, "report.table_capped", {"shown": len(ranked), "count": count}))
    out.append(f'<div class="tablebox"><table class="conns" id="conns"><thead><tr>{head}</tr>'
               f'</thead><tbody>{"".join(body)}</tbody></table></div>')
    return "\n".join(out)


def _detail(cat: Catalogue, data: ReportData, d: Detail, first: bool) -> str:
    r = d.row
    title = cat.render("report.conn_title", {"stream": r.stream, "client": r.client,
                                             "server": r.server, "packets": r.packets,
                                             "bytes": sum(r.bytes)})
    out = [f'<details class="conn" id="s{r.stream}"{" open" if first else ""}>'
           f"<summary>{_e(title)}</summary>"]
    st = d.story
    if st is None:
        out.append(_note(cat, "report.no_story", {"packets": r.packets, "max": STORY_MAX,
                                                  "stream": r.stream}))
        if d.model is not None:
            out.append(f"<h3>{_e(cat.render('report.episodes'))}</h3><ul>")
            out += ["<li>" + _e(" ".join(cat.render(f.id, f.params) for f in c.facts)) + "</li>"
                    for c in model_chapters(d.model, r.stream)]
            out.append("</ul>")
    else:
        out.append(f"<h3>{_e(cat.render('sum.title'))}</h3><ul>")
        out += [f"<li>{_e(cat.render(f.id, f.params))}</li>" for f in st.summary]
        out.append("</ul>")
    out.append(_graphs(cat, d))
    if st is not None:
        out.append(_anomalies(cat, d))
        out.append(_ladder(cat, d))
    out.append(_rounds(cat, d))
    if st is not None:
        text = "\n".join("".join(t for t, _ in line).rstrip().replace("\u00a0", " ")
                         for line in explain_story(st, data.lang, ladder=False))
        out.append(f'<details class="part"><summary>{_e(cat.render("report.story"))}</summary>'
                   f'<pre class="story">{_e(text)}</pre></details>')
    out.append("</details>")
    return "\n".join(out)


def _graphs(cat: Catalogue, d: Detail) -> str:
    out = [f"<h3>{_e(cat.render('report.graphs'))}</h3>"]
    out += [html_fragment(f) for f in d.figures]
    if d.missing:
        out.append(_note(cat, "report.graphs_missing", {"kinds": d.missing}, "muted"))
    return "\n".join(out)


def _anomalies(cat: Catalogue, d: Detail) -> str:
    assert d.story is not None
    st = d.story
    out = [f"<h3>{_e(cat.render('report.anomalies'))}</h3>"]
    if is_long(st):     # only the packets it narrates have their facts
        told = sorted({s.frame: s for s in _narrated(st)}.items())
        found = [(s, f) for _, s in told for f in s.facts if f.id.startswith("anom.")]
        out.append(_note(cat, "report.anomalies_long", cls="muted"))
    else:
        found = [(s, f) for s in st.steps for f in s.facts if f.id.startswith("anom.")]
    if not found:
        out.append(f"<p>{_e(cat.render('sum.no_anomalies'))}</p>")
        return "\n".join(out)
    items = [f'<li><span class="flag">{s.frame}</span> {_e(", ".join(s.tags))}: '
             f"{_e(cat.render(f.id, f.params))}</li>" for s, f in found[:ANOMALIES]]
    out.append(f'<ul class="anoms">{"".join(items)}</ul>')
    if len(found) > ANOMALIES:
        out.append(_note(cat, "report.anomalies_capped", {"shown": ANOMALIES, "count": len(found),
                                                          "stream": d.row.stream}))
    return "\n".join(out)


def _narrated(st: ConnectionStory) -> list[Step]:
    out: list[Step] = []
    for item in told_items(st):
        out += item.steps if isinstance(item, Run) else [item]
    return out


_IDS = re.compile(r'(id="|url\(#|href="#)(head-)')


def _ladder(cat: Catalogue, d: Detail) -> str:
    assert d.story is not None
    st = d.story
    lad = build_ladder([replace(st, items=told_items(st))], cat.lang, fold=True)
    note = ""
    if len(lad.rows) > LADDER_ROWS:
        half = LADDER_ROWS // 2
        note = cat.render("report.ladder_capped", {"shown": LADDER_ROWS, "count": len(lad.rows),
                                                   "stream": d.row.stream})
        lad = replace(lad, rows=lad.rows[:half] + lad.rows[-half:])
    svg = render_svg(lad).split("\n", 1)[1]   # inline: no XML declaration
    svg = _IDS.sub(lambda m: f"{m.group(1)}s{d.row.stream}-{m.group(2)}", svg)
    out = [f'<details class="part"{" open" if len(lad.rows) < 60 else ""}><summary>'
           f'{_e(cat.render("report.ladder"))}</summary>']
    if note:
        out.append(f'<p class="note">{_e(note)}</p>')
    out.append(f'<div class="ladder">{svg}</div></details>')
    return "\n".join(out)


def _rounds(cat: Catalogue, d: Detail) -> str:
    m = d.model
    if m is None:
        return ""
    from ...analysis import congestion

    rounds = congestion.rounds(m.records, m.annotations, m.ts_ns, d.row.stream)
    if not rounds.size:
        return ""
    side = congestion.sender_side(m.annotations)
    tl = Timeline(d.row.stream, ("client", "server")[side], int(m.ts_ns[0]), rounds)
    rows = tl.rows()
    eps = congestion.episodes(m.annotations, m.ts_ns, d.row.stream)
    shown = rows
    if len(rows) > ROUNDS:
        # the rounds where something happens (an event, a change of phase), then evenly
        keep = {k for k, r in enumerate(rows) if r["events"] or
                (k and r["phase"] != rows[k - 1]["phase"])}
        keep = set(sorted(keep)[:ROUNDS // 2])
        keep |= set(np.linspace(0, len(rows) - 1, ROUNDS - len(keep)).astype(int).tolist())
        shown = [rows[k] for k in sorted(keep)]
    cols = ("round", "time", "rtt", "cwnd", "ssthresh", "in_flight", "rwnd", "phase",
            "limited_by", "delivered", "retransmitted", "events")
    head = "".join(f"<th>{_e(c)}</th>" for c in cols)
    body = "".join("<tr>" + "".join(
        f"<td>{_e(','.join(r[c]) if c == 'events' else '-' if r[c] is None else r[c])}</td>"
        for c in cols) + "</tr>" for r in shown)
    summary = cat.render("report.rounds", {"count": len(rows), "episodes": len(eps),
                                           "sender": tl.sender})
    out = [f'<details class="part"><summary>{_e(summary)}</summary>']
    if len(shown) < len(rows):
        out.append(_note(cat, "report.rounds_capped", {"shown": len(shown), "count": len(rows),
                                                       "stream": d.row.stream}))
    out.append(f'<table class="rounds"><thead><tr>{head}</tr></thead><tbody>{body}</tbody>'
               f'</table></details>')
    return "\n".join(out)
