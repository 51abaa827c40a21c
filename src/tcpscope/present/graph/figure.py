"""A graph as data: what the renderers draw, and the one table of how each mark looks.

A `Figure` is a list of `Layer`s over two axes (x: seconds since the stream's
first packet, or relative sequence numbers for the sliding window), with every
text already in the reader's language. Renderers (`mpl` for PNG/SVG, `html`
for the interactive page) know nothing of TCP: they draw a layer by its
`draw` style and look its colour and symbol up in `STYLE` by its `key`.

Layer columns by `draw`:

- ``ibeam``: ``t, t1, lo, hi, n, frame, frame1`` (n = 1: one segment, drawn as
  an I-beam at t; n > 1: a bin of n segments, drawn as a bar from lo to hi);
- ``bar``: the same columns, drawn without caps (SACK blocks);
- ``step``, ``line``, ``dots``, ``marker``: ``t, y, frame``;
- ``band``: ``lo, hi, row`` (the sliding window's byte ranges, row 0 at the top);
- ``edge``: ``x`` and the layer's `text` (a labelled vertical line).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

__all__ = ["Figure", "Layer", "STYLE", "Style"]


@dataclass(frozen=True)
class Style:
    color: str
    marker: str = ""        #: matplotlib marker name (the HTML renderer maps it)
    ms: float = 5.0         #: marker size, in points
    lw: float = 1.2         #: line width, in points
    z: int = 2              #: drawing order: higher on top
    dash: bool = False


#: How every mark looks, by layer key: one table for every renderer.
STYLE: dict[str, Style] = {
    # time-sequence (tcptrace, stevens)
    "data": Style("#1f4e9c", lw=1.0, z=3),
    "stevens": Style("#1f4e9c", marker="o", ms=2.5, z=3),
    # I-beams (line width) in tcptrace; dots (marker size) in Stevens'
    "retx": Style("#d62728", marker="o", ms=4, lw=1.6, z=6),
    "spurious": Style("#e377c2", marker="o", ms=4, lw=1.6, z=6),
    "ooo": Style("#9467bd", marker="o", ms=4, lw=1.6, z=6),
    "zwp": Style("#8c564b", marker="o", ms=4, lw=1.6, z=6),
    "lost": Style("#444444", marker="|", ms=5, z=6),
    "sack": Style("#2ca02c", lw=3.0, z=4),
    "sack_old": Style("#98df8a", lw=3.0, z=4),
    "ack": Style("#7f7f00", lw=1.2, z=5),
    "dupack": Style("#bcbd22", marker="|", ms=4, z=3),
    "rwnd_edge": Style("#17becf", lw=1.2, z=4),
    "zero_window": Style("#d62728", marker="x", ms=8, z=7),
    "ce": Style("#ff7f0e", marker="D", ms=5, z=7),
    "ece": Style("#ff7f0e", marker="v", ms=6, z=7),
    "cwr": Style("#ff7f0e", marker="^", ms=6, z=7),
    "syn": Style("#2ca02c", marker="s", ms=6, z=7),
    "fin": Style("#000000", marker="s", ms=6, z=7),
    "rst": Style("#d62728", marker="X", ms=8, z=7),
    # throughput
    "throughput": Style("#1f4e9c", lw=1.6, z=4),
    "goodput": Style("#2ca02c", lw=1.6, z=4),
    "seglen": Style("#aaaaaa", marker="o", ms=2.0, z=2),
    # rtt
    "rtt": Style("#1f4e9c", marker="o", ms=3, z=3),
    "rtt_karn": Style("#d62728", marker="x", ms=5, z=4),
    "irtt": Style("#7f7f7f", lw=1.0, z=2, dash=True),
    # window
    "rwnd": Style("#17becf", lw=1.4, z=4),
    "bif": Style("#1f4e9c", marker="o", ms=2, z=3),
    "in_flight": Style("#9467bd", lw=1.2, z=3),
    "window_full": Style("#ff7f0e", marker="|", ms=8, z=6),
    "zero_window_at": Style("#d62728", marker="x", ms=8, z=7),
    # cwnd
    "cwnd": Style("#1f4e9c", lw=1.6, z=5),
    "ssthresh": Style("#d62728", lw=1.2, z=4, dash=True),
    "recovery": Style("#d62728", marker="v", ms=7, z=7),
    "phase.slow_start": Style("#d9ead3"),
    "phase.congestion_avoidance": Style("#fff2cc"),
    "phase.fast_recovery": Style("#f4cccc"),
    "phase.rto_recovery": Style("#ea9999"),
    "phase.cwr": Style("#fce5cd"),
    # sliding window
    "acked": Style("#b7b7b7"),
    "sent": Style("#6fa8dc"),
    "sacked": Style("#93c47d"),
    "usable": Style("#ffd966"),
    "not_allowed": Style("#f3f3f3"),
    "beyond": Style("#e06666"),
    "rwnd_span": Style("#17becf"),
    "cwnd_span": Style("#8e7cc3"),
    "edge": Style("#000000", lw=1.0),
}


@dataclass
class Layer:
    """One series as it is drawn."""

    key: str                        #: its look (STYLE) and its legend entry
    draw: str                       #: ibeam | bar | step | line | dots | marker | band | edge
    cols: dict[str, np.ndarray]
    label: str = ""                 #: the legend text ("" = not in the legend)
    axis: int = 0                   #: 0: left y axis, 1: right
    text: str = ""                  #: an edge's label

    def __len__(self) -> int:
        first = next(iter(self.cols.values()), np.zeros(0))
        return len(first)


@dataclass
class Figure:
    """A graph ready to draw; every text in the reader's language."""

    kind: str
    title: str
    xlabel: str
    ylabel: str
    layers: list[Layer]
    y2label: str = ""
    #: shaded time ranges: (t0, t1, style key); their legend labels are in `span_labels`
    spans: list[tuple[float, float, str]] = field(default_factory=list)
    span_labels: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)   #: lines under the graph
    packets: int = 0                #: the stream's packets the graph was made from
    #: for tooltips: the words for "frame", "frames", "time", "value"
    words: dict[str, str] = field(default_factory=dict)
    #: the sliding window's rows (the sender's bytes, the receiver's window, cwnd), by number
    row_labels: dict[int, str] = field(default_factory=dict)

    def legend(self) -> list[tuple[str, str, str]]:
        """(key, draw, label) of every labelled layer that has data, then of the spans."""
        out = [(ly.key, ly.draw, ly.label) for ly in self.layers if ly.label and len(ly)]
        seen = {key for _, _, key in self.spans}
        out += [(key, "span", label) for key, label in self.span_labels.items() if key in seen]
        return out
