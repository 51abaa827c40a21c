"""Graphs of one TCP stream: time-sequence (tcptrace, Stevens), throughput, RTT, windows,
the congestion window, and the sliding window at one instant (docs/graphs.md).

One pass over the capture fills every graph asked for::

    g = GraphSet(stream=3, kinds=("tcptrace", "rtt"))
    run("trace.pcap", [g.consumer], Options())        # or with other consumers (the report)
    for fig in g.figures(lang="zh"):                   # Figure: layers of plot data, texts
        png = render(fig, "png")                       # PNG/SVG: matplotlib (tcpscope[graph])
    page = html_page(g.figures())                      # interactive, self-contained HTML

`graphs(source, stream, kinds)` does both steps. The data comes first: a
`Figure` holds the series as they will be drawn (tests check those, not
pixels), reduced per pixel column as the rows stream by (decimate.py).
"""
from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import replace

from ...analysis.connections import decode_all
from ...analysis.engine import DEFAULT_MODE
from ...capture.writer import AtomicOutput
from ...pipeline import Options, Result, Source, StreamNotFound, run
from ..i18n import catalogue
from . import sliding
from .figure import Figure, Layer
from .html import html_fragment, html_page
from .rates import CWND_FIELDS, Cwnd, GraphUnavailable, Rtt, Throughput, Window
from .series import DIRS, Context, StreamRows
from .timeseq import TimeSeq

__all__ = ["KINDS", "DIRS", "FORMATS", "Figure", "Layer", "GraphSet", "GraphUnavailable", "graphs",
           "render", "write_graph", "html_fragment", "html_page", "CWND_FIELDS"]

#: the graphs, in the order the CLI lists them
KINDS = ("stevens", "tcptrace", "throughput", "rtt", "window", "cwnd", "slidingwindow")
#: output formats, by the output file's extension
FORMATS = ("png", "svg", "html")
#: pixel columns of a picture, and of an interactive page (room to zoom in)
WIDTH = {"png": 1400, "svg": 1400, "html": 2048}


class GraphSet:
    """The collectors of the graphs of one stream, fed by one pipeline consumer.

    `frames`: the instants of the sliding-window picture; `moments`: also find
    the stream's key moments and picture them (both directions are kept until
    the end, when the direction drawn is chosen).
    """

    def __init__(self, stream: int, kinds: Sequence[str], *, frames: Sequence[int] = (),
                 moments: bool = False, window: float | None = None) -> None:
        unknown = [k for k in kinds if k not in KINDS]
        if unknown:
            raise ValueError(f"unknown graph kind {unknown[0]!r}; expected one of {', '.join(KINDS)}")
        if "slidingwindow" in kinds and not frames and not moments:
            raise ValueError("the sliding window is drawn at a frame: give one (--frame F)")
        self.stream = stream
        self.kinds = tuple(kinds)
        self.frames = tuple(frames)
        self.collectors = {}
        for kind in self.kinds:
            self.collectors[kind] = {
                "stevens": lambda: TimeSeq(stevens=True),
                "tcptrace": lambda: TimeSeq(),
                "throughput": lambda: Throughput(window),
                "rtt": Rtt,
                "window": Window,
                "cwnd": Cwnd,
                "slidingwindow": lambda: sliding.SlidingWindow(self.frames, moments),
            }[kind]()
        # a picture of some frames only needs the rows up to the last of them
        until = max(self.frames) if set(self.kinds) == {"slidingwindow"} and not moments else None
        self.consumer = StreamRows(stream, list(self.collectors.values()), until_frame=until)

    def context(self, *, direction: str | None = None, lang: str = "en", width: int = 1400,
                result: Result | None = None) -> Context:
        """What the figures of this stream need once the run has ended."""
        res = result or self.consumer.result
        rows = res.analyzer.connections(self.stream)[:1] if res and res.analyzer else []
        conn = decode_all(rows)[0] if len(rows) else None
        if conn is None:
            raise StreamNotFound.number(self.stream)
        if direction is None:
            d = 0 if conn.client.bytes >= conn.server.bytes else 1
        else:
            d = DIRS.index(direction)
        return Context(self.stream, d, catalogue(lang), conn, self.consumer.t_last,
                       self.consumer.packets, width)

    def figures(self, *, direction: str | None = None, lang: str = "en", width: int = 1400,
                result: Result | None = None) -> list[Figure]:
        """One figure per kind asked for (one per frame for the sliding window; one per
        key moment with ``moments``), drawn for `direction` (default: the side that sent
        more payload; for a frame's picture, the data that frame sends or acknowledges)."""
        ctx = self.context(direction=direction, lang=lang, width=width, result=result)
        out = []
        for kind, col in self.collectors.items():
            if kind != "slidingwindow":
                fig = col.figure(ctx)
                if ctx.packets > 4 * width:
                    fig.notes.append(ctx.text("note.reduced", packets=ctx.packets, columns=width))
                out.append(fig)
                continue
            for f in self.frames:
                if f not in col.frame_sender:
                    raise LookupError(f"frame {f} is not a packet of stream {self.stream}")
                snap = col.snapshot(f, None if direction is None else ctx.direction)
                out.append(sliding.figure(replace(ctx, direction=snap.direction), snap))
            if col.moments:
                out += [sliding.figure(ctx, s) for s in col.key_moments(ctx.direction)]
        return out


def graphs(source: Source, stream: int, kinds: Sequence[str], *, direction: str | None = None,
           lang: str = "en", frames: Sequence[int] = (), mode: str = DEFAULT_MODE,
           width: int = 1400, window: float | None = None) -> list[Figure]:
    """Read `source` once and return the figures of `stream` (see `GraphSet.figures`)."""
    g = GraphSet(stream, kinds, frames=frames, window=window)
    result = run(source, [g.consumer], Options(mode=mode, states=False))
    return g.figures(direction=direction, lang=lang, width=width, result=result)


def render(fig: Figure, fmt: str) -> bytes:
    """The figure as a PNG or SVG file's bytes (matplotlib: ``pip install tcpscope[graph]``)."""
    from .mpl import render_mpl

    return render_mpl(fig, fmt)


def write_graph(source: Source, stream: int, kind: str, out: str | os.PathLike, *,
                direction: str | None = None, lang: str = "en", frame: int | None = None,
                mode: str = DEFAULT_MODE) -> None:
    """`tcpscope graph`: one graph of `stream` to `out`, PNG, SVG or HTML by its extension
    (the sliding window at `frame`)."""
    fmt = os.path.splitext(os.fspath(out))[1].lower().lstrip(".")
    if fmt not in FORMATS:
        raise ValueError(f"{os.fspath(out)}: the output's extension says the format: "
                         f"{', '.join('.' + f for f in FORMATS)}")
    figs = graphs(source, stream, [kind], direction=direction, lang=lang,
                  frames=() if frame is None else (frame,), mode=mode, width=WIDTH[fmt])
    data = html_page(figs, lang=lang).encode("utf-8") if fmt == "html" else render(figs[0], fmt)
    with AtomicOutput(out) as f:
        f.write(data)
