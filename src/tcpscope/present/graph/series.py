"""One stream's rows, taken from the pipeline chunk by chunk, and what every graph shares.

`StreamRows` is the pipeline consumer: it keeps the analysed rows of one
stream (`Rows`: seconds since the stream's first packet, the dissected
records, the annotations) and hands them to the graphs' collectors, which
reduce them to plot series as they come (present/graph/decimate.py): nothing
holds the stream's rows. Each collector keeps both directions; the one drawn
is chosen at the end (`Context`), by default the side that sent more payload.

Every value drawn is a fact of the analysis (annotation.h) or of the
dissection (record.h): relative seq/ack, next seq, the scaled window, the
analysis flags, bytes in flight, ack_rtt. The only arithmetic here is on one
packet at a time: a SACK edge made relative with the same packet's ack
(`sack_edges`), an ACK line's advance, an edge = ack + window.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from ...analysis.annotation import ANN_KIND, FLAG
from ...flows.connection import Connection
from ...pipeline import Chunk, Result, StopRun
from ...wire.record import ACK, CWR, ECE, FIN, RST, SYN
from ..i18n import Catalogue
from .decimate import Marks, Points, Spans
from .figure import Layer

__all__ = ["Collector", "Context", "Rows", "StreamRows", "DIRS", "sack_edges", "flagged",
           "RETX", "SPURIOUS", "ACK", "CWR", "ECE", "FIN", "RST", "SYN", "layer"]

ANALYSED = ANN_KIND["analysed"]
#: a retransmission of any kind that is not spurious (a spurious one is drawn apart)
RETX = FLAG["retransmission"] | FLAG["fast_retransmission"]
SPURIOUS = FLAG["spurious_retransmission"]
#: the directions a graph can show, by the data sender: client -> server, server -> client
DIRS = ("c2s", "s2c")


def flagged(ann: np.ndarray, name: str) -> np.ndarray:
    """Rows carrying the analysis flag `name`."""
    return (ann["flags"] & FLAG[name]) != 0


def sack_edges(rec: np.ndarray, ann: np.ndarray, block: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(rows, left, right): the SACK block number `block` of the rows that carry one,
    relative like the same packet's ack (the peer's sequence space: rel_ack + the
    signed 32-bit distance from ack to the edge)."""
    rows = np.flatnonzero(((rec["tcp_flags"] & ACK) != 0) & (rec["sack_count"] > block))
    if block >= rec.dtype["sack"].shape[0] // 2 or len(rows) == 0:
        return rows[:0], np.zeros(0), np.zeros(0)
    ack = rec["ack"][rows].astype(np.int64)
    base = ann["rel_ack"][rows]

    def rel(edge: np.ndarray) -> np.ndarray:
        d = (edge.astype(np.int64) - ack) & 0xFFFFFFFF
        return base + np.where(d >= 1 << 31, d - (1 << 32), d)

    return rows, rel(rec["sack"][rows, 2 * block]), rel(rec["sack"][rows, 2 * block + 1])


@dataclass
class Rows:
    """Some consecutive rows of one stream."""

    t: np.ndarray          #: seconds since the stream's first packet
    rec: np.ndarray        #: RECORD_DTYPE
    ann: np.ndarray        #: ANNOTATION_DTYPE

    @property
    def frame(self) -> np.ndarray:
        return self.ann["frame"]

    def sender(self, d: int) -> np.ndarray:
        """Rows sent by the data sender of direction `d` (0: the client, 1: the server)."""
        return self.ann["from_server"] == d

    def take(self, mask: np.ndarray) -> Rows:
        return Rows(self.t[mask], self.rec[mask], self.ann[mask])


@dataclass
class Context:
    """What a figure needs besides its series: which direction, the words, the scale."""

    stream: int
    direction: int                 #: 0: client -> server, 1: server -> client
    cat: Catalogue
    conn: Connection | None
    span: float                    #: seconds from the stream's first to its last packet
    packets: int                   #: the stream's analysed packets
    width: int = 1400              #: pixel columns the series are reduced to

    @property
    def sender(self) -> str:
        side = (self.conn.client, self.conn.server) if self.conn else None
        return f"{side[self.direction].addr}:{side[self.direction].port}" if side else "?"

    @property
    def receiver(self) -> str:
        side = (self.conn.client, self.conn.server) if self.conn else None
        return f"{side[1 - self.direction].addr}:{side[1 - self.direction].port}" if side else "?"

    def text(self, key: str, **params) -> str:
        return self.cat.render(f"graph.{key}", params)

    def title(self, kind: str) -> str:
        return self.text(f"title.{kind}", stream=self.stream, src=self.sender, dst=self.receiver)

    def words(self) -> dict[str, str]:
        return {w: self.text(f"word.{w}") for w in ("frame", "frames", "time", "packets")}


class Collector(Protocol):
    """Reduces a stream's rows to series as they come, and draws them at the end."""

    def feed(self, rows: Rows) -> None: ...


def layer(ctx: Context, key: str, draw: str, series: Points | Spans | Marks, *, axis: int = 0,
          scale: float = 1.0, label: bool = True) -> Layer:
    """A layer from a series, reduced to the picture's pixel columns; `scale`
    multiplies the values (bytes to bits, ns to ms)."""
    if isinstance(series, Marks):
        c = series.columns()
        if draw in ("ibeam", "bar"):
            one = np.ones(len(c["t"]), np.int64)
            cols = {"t": c["t"], "t1": c["t"], "lo": c["y"], "hi": c["y2"], "n": one,
                    "frame": c["frame"], "frame1": c["frame"]}
        else:
            cols = {"t": c["t"], "y": c["y"], "frame": c["frame"]}
    else:
        cols = dict(series.fit(ctx.width, ctx.span))
    if scale != 1.0:
        for name in ("y", "lo", "hi"):
            if name in cols:
                cols[name] = cols[name] * scale
    return Layer(key, draw, cols, label=ctx.text(f"mark.{key}") if label else "", axis=axis)


@dataclass
class StreamRows:
    """Pipeline consumer: hands the analysed rows of `stream` to each collector.

    `until_frame`: stop reading after that frame (a picture of one instant).
    """

    stream: int
    collectors: list[Collector]
    until_frame: int | None = None
    t0_ns: int | None = None        #: the stream's first timestamp
    t_last: float = 0.0             #: seconds, the stream's last packet so far
    packets: int = 0
    result: Result | None = field(default=None, repr=False)

    def feed(self, chunk: Chunk) -> None:
        ann = chunk.annotations
        mask = (ann["stream"] == self.stream) & (ann["kind"] == ANALYSED)
        if self.until_frame is not None:
            mask &= ann["frame"] <= self.until_frame
        idx = np.flatnonzero(mask)
        if len(idx):
            ts = chunk.ts_ns[idx]
            if self.t0_ns is None:
                self.t0_ns = int(ts[0])
            rows = Rows((ts - self.t0_ns) / 1e9, chunk.records[idx], ann[idx])
            self.t_last = max(self.t_last, float(rows.t.max()))
            self.packets += len(idx)
            for c in self.collectors:
                c.feed(rows)
        if self.until_frame is not None and len(ann) and ann["frame"][-1] >= self.until_frame:
            raise StopRun

    def finish(self, result: Result) -> None:
        self.result = result
