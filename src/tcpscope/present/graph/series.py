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
from ...analysis.connections import Connection
from ...pipeline import Chunk, Result, StopRun
from ...wire.record import ACK, CWR, ECE, FIN, RECORD_DTYPE, RST, SYN
from ...wire.text import format_endpoint
from ..i18n import Catalogue
from .decimate import Marks, Points, Spans
from .figure import Layer

__all__ = ["Collector", "Context", "Rows", "StreamRows", "DIRS", "sack_edges", "flagged",
           "RETX", "SPURIOUS", "MAX_SACK", "ACK", "CWR", "ECE", "FIN", "RST", "SYN", "layer"]

ANALYSED = ANN_KIND["analysed"]
#: a retransmission of any kind that is not spurious (a spurious one is drawn apart)
RETX = FLAG["retransmission"] | FLAG["fast_retransmission"]
SPURIOUS = FLAG["spurious_retransmission"]
#: the directions a graph can show, by the data sender: client -> server, server -> client
DIRS = ("c2s", "s2c")
#: SACK blocks a record holds
MAX_SACK = RECORD_DTYPE["sack"].shape[0] // 2


def flagged(rows: Rows, name: str) -> np.ndarray:
    """Rows carrying the analysis flag `name`."""
    return (rows["flags"] & FLAG[name]) != 0


def sack_edges(rows: Rows, block: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(indices, left, right): the SACK block number `block` of the rows that carry
    one, relative like the same packet's ack (the peer's sequence space: rel_ack +
    the signed 32-bit distance from ack to the edge)."""
    idx = np.flatnonzero(((rows["tcp_flags"] & ACK) != 0) & (rows["sack_count"] > block))
    if block >= MAX_SACK or len(idx) == 0:
        return idx[:0], np.zeros(0), np.zeros(0)
    ack = rows["ack"][idx].astype(np.int64)
    base = rows["rel_ack"][idx]

    def rel(edge: np.ndarray) -> np.ndarray:
        d = (edge.astype(np.int64) - ack) & 0xFFFFFFFF
        return base + np.where(d >= 1 << 31, d - (1 << 32), d)

    sack = rows.at("sack", idx)
    return idx, rel(sack[:, 2 * block]), rel(sack[:, 2 * block + 1])


#: what collectors read: annotation fields (and the sender model's, when the analysis has
#: them), record fields
ANN_FIELDS = ("frame", "from_server", "rel_seq", "rel_ack", "next_rel_seq", "win_scaled",
              "win_scale", "flags", "bytes_in_flight", "ack_rtt_ns", "irtt_ns")
SENDER_FIELDS = ("cwnd_est", "ssthresh_est", "in_flight", "cc_phase", "limited_by")
REC_FIELDS = ("payload_len", "tcp_flags", "ip_tos", "sack_count", "sack", "ack")


class Rows:
    """Some rows of one stream: their times, and the columns the graphs read, each taken
    when first read (copying whole records would cost more than drawing them): from the
    chunk for the stream's rows, from those for a subset."""

    def __init__(self, t: np.ndarray, parent: Rows | dict[str, np.ndarray], pick: np.ndarray | slice) -> None:
        self.t = t                  #: seconds since the stream's first packet
        self._parent = parent       #: the rows (or the chunk's columns) these are taken from
        self._pick = pick           #: which of them: positions, a mask or a slice
        self._cols: dict[str, np.ndarray] = {}

    @classmethod
    def select(cls, t: np.ndarray, rec: np.ndarray, ann: np.ndarray, idx: np.ndarray) -> Rows:
        names = ANN_FIELDS + tuple(f for f in SENDER_FIELDS if f in ann.dtype.names)
        src = {f: ann[f] for f in names}
        src.update({f: rec[f] for f in REC_FIELDS})
        return cls(t, src, slice(0, len(idx)) if len(idx) == len(ann) else idx)

    def __getitem__(self, name: str) -> np.ndarray:
        col = self._cols.get(name)
        if col is None:
            col = self._cols[name] = np.ascontiguousarray(self._parent[name][self._pick])
        return col

    def at(self, name: str, idx: np.ndarray) -> np.ndarray:
        """Column `name` of some of these rows only (positions `idx`): for a wide column
        that few rows need (SACK blocks)."""
        if name in self._cols:
            return self._cols[name][idx]
        pick = self._pick
        if isinstance(pick, slice):
            pos = np.arange(*pick.indices(pick.stop if pick.stop is not None else len(self.t)))[idx]
        elif pick.dtype == bool:
            pos = np.flatnonzero(pick)[idx]
        else:
            pos = pick[idx]
        parent = self._parent
        return parent.at(name, pos) if isinstance(parent, Rows) else parent[name][pos]

    @property
    def names(self) -> set[str]:
        return self._parent.names if isinstance(self._parent, Rows) else set(self._parent)

    @property
    def frame(self) -> np.ndarray:
        return self["frame"]

    def __len__(self) -> int:
        return len(self.t)

    def sender(self, d: int) -> np.ndarray:
        """Rows sent by the data sender of direction `d` (0: the client, 1: the server)."""
        return self["from_server"] == d

    def take(self, mask: np.ndarray) -> Rows:
        return Rows(self.t[mask], self, mask)

    def slice(self, a: int, b: int) -> Rows:
        return Rows(self.t[a:b], self, slice(a, b))


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
        return format_endpoint(side[self.direction].addr, side[self.direction].port) if side else "?"

    @property
    def receiver(self) -> str:
        side = (self.conn.client, self.conn.server) if self.conn else None
        end = side[1 - self.direction] if side else None
        return format_endpoint(end.addr, end.port) if end else "?"

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
            rows = Rows.select((ts - self.t0_ns) / 1e9, chunk.records, ann, idx)
            self.t_last = max(self.t_last, float(rows.t.max()))
            self.packets += len(idx)
            for c in self.collectors:
                c.feed(rows)
        if self.until_frame is not None and len(ann) and ann["frame"][-1] >= self.until_frame:
            raise StopRun

    def finish(self, result: Result) -> None:
        self.result = result
