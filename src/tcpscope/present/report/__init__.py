"""`tcpscope report`: one self-contained HTML page about a capture (docs/report.md).

Two passes over the input, both streaming:

1. the overview (present/overview.py): every connection's row and lifecycle, and
   the audit's findings; from it the connections told in detail are chosen
   (`pick`): the most interesting ones, one failed handshake and one ordinary
   short conversation, at most `DETAILS` in all;
2. the rows of those connections only: their stories (present/story/, a long one
   by episodes), the sender model's round trips and recoveries, and their graphs
   (present/graph/, reduced per pixel column while they stream by).

What the page holds, and its bounds (each said on the page where it applies):
the overview; a sortable, filterable table of at most `TABLE_MAX` connections
(the most interesting first); per detailed connection its story, ladder (SVG;
at most `LADDER_ROWS` rows), graphs, anomalies with their rules and evidence
(at most `ANOMALIES`), and the round trips (at most `ROUNDS` rows). A connection
of more than `STORY_MAX` packets is told from the sender model and its graphs
only: keeping every packet of it for a story is what would make memory grow
with the capture.

Nothing on the page fetches anything: styles, scripts (present/graph/graph.js
and report.js) and SVG are inline.
"""
from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field

from ...analysis.engine import Analysis
from ...pipeline import Options, Source, run, source_name
from ..graph import GraphSet, GraphUnavailable
from ..graph.figure import Figure
from ..overview import ConnRow, Overview, OverviewCollector
from ..story import ConnectionStory, Extra, StoryCollector, build_story
from ..story.episodes import Model, ModelRows, build_long_story, long_stream

__all__ = ["DETAILS", "TABLE_MAX", "STORY_MAX", "Detail", "ReportData", "collect_report",
           "write_report"]

#: Connections told in detail, at most.
DETAILS = 8
#: Rows of the connection table, at most (the most interesting first).
TABLE_MAX = 1000
#: A connection with more packets is told without its packets (model and graphs only).
STORY_MAX = 20_000
#: Ladder rows, anomalies and round trips shown per connection, at most.
LADDER_ROWS = 400
ANOMALIES = 40
ROUNDS = 150
#: The graphs of each detailed connection, and their width in pixel columns.
KINDS = ("tcptrace", "throughput", "rtt", "window", "cwnd")
GRAPH_WIDTH = 1000


@dataclass
class Detail:
    """What the page tells of one connection."""

    row: ConnRow
    story: ConnectionStory | None        #: None: too long to keep its packets
    model: Model | None
    figures: list[Figure] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)   #: graphs the mode cannot draw


@dataclass
class ReportData:
    overview: Overview
    details: list[Detail]
    mode: str
    lang: str


def pick(ov: Overview, n: int = DETAILS) -> list[ConnRow]:
    """The connections told in detail: the most interesting, then one failed handshake
    and one short ordinary conversation (a reader's reference), `n` at most."""
    chosen = ov.interesting(max(n - 2, 1))
    have = {r.stream for r in chosen}
    failed = next((r for r in ov.failed_rows if r.stream not in have), None)
    plain = next((r for r in ov.plain_rows if r.stream not in have), None)
    for extra in (failed, plain):
        if extra is not None and len(chosen) < n:
            chosen.append(extra)
            have.add(extra.stream)
    for r in ov.interesting(n + 2):
        if len(chosen) >= n:
            break
        if r.stream not in have:
            chosen.append(r)
            have.add(r.stream)
    return chosen


def collect_report(source: Source, *, lang: str = "en", mode: str = "improved",
                   details: int = DETAILS,
                   on_batch: Callable[[int], None] | None = None) -> ReportData:
    """Read `source` twice (see the module's doc) and gather what the page shows."""
    first = OverviewCollector()
    run(source, [first], Options(mode=mode, keep_transitions=False), on_batch=on_batch)
    ov = first.overview()
    rows = pick(ov, details)
    storied = [r.stream for r in rows if r.packets <= STORY_MAX]
    streams = [r.stream for r in rows]
    story = StoryCollector(storied) if storied else None
    model = ModelRows(streams, mode)
    graphs = {s: GraphSet(s, KINDS) for s in streams}
    consumers: list = [model, *(g.consumer for g in graphs.values())]
    if story is not None:
        consumers.append(story)
    result = None
    if streams:
        result = run(source, consumers, Options(mode=mode, keep_transitions=frozenset(storied)),
                     on_batch=on_batch)
    out = []
    for r in rows:
        st = None
        if story is not None and r.stream in storied:
            st = _story(story.analysis, story.extra, r.stream, model.model)
        m = _only(model.model, r.stream)
        d = Detail(r, st, m)
        g = graphs[r.stream]
        ctx = g.context(lang=lang, width=GRAPH_WIDTH, result=result)
        for kind, col in g.collectors.items():
            try:
                fig = col.figure(ctx)
            except GraphUnavailable:
                fig = None
            if fig is not None and any(len(ly) for ly in fig.layers):
                d.figures.append(fig)
            else:     # the cwnd graph without the sender model (wireshark mode)
                d.missing.append(kind)
        out.append(d)
    return ReportData(ov, out, mode, lang)


def _story(analysis: Analysis | None, extra: Extra, stream: int,
           model: Model | None) -> ConnectionStory:
    assert analysis is not None
    if long_stream(analysis, stream):
        return build_long_story(analysis, stream, extra, _only(model, stream))
    return build_story(analysis, stream, extra)


def _only(model: Model | None, stream: int) -> Model | None:
    """The model's rows of one stream."""
    if model is None:
        return None
    keep = model.annotations["stream"] == stream
    if not keep.any():
        return None
    return Model(model.annotations[keep], model.records[keep], model.ts_ns[keep])


def write_report(source: Source, out: str | os.PathLike, *, lang: str = "en",
                 mode: str = "improved", details: int = DETAILS, name: str | None = None,
                 on_batch: Callable[[int], None] | None = None) -> ReportData:
    """Write the report of `source` to `out` (atomically: all of it or nothing)."""
    from ...capture.writer import AtomicOutput
    from .page import render_page

    data = collect_report(source, lang=lang, mode=mode, details=details, on_batch=on_batch)
    page = render_page(data, name or source_name(source)).encode("utf-8")
    target = AtomicOutput(os.fspath(out))
    try:
        target.write(page)
    except BaseException:
        target.abort()
        raise
    target.commit()
    return data
