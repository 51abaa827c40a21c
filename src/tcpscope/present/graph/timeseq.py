"""Time-sequence graphs: tcptrace's (Wireshark's "tcptrace") and Stevens'.

x is seconds since the stream's first packet, y the data sender's relative
sequence number. tcptrace's grammar (SEMANTICS.md §2, Stream graphs):

- every data segment an I-beam from seq to seq + len (``data``); a
  retransmission (``retx``), a spurious one (``spurious``), an out-of-order
  segment (``ooo``) and a zero-window probe (``zwp``) in their own colours;
- from the receiver's packets: the ACK line as steps (``ack``), duplicate ACK
  ticks on it (``dupack``), the receive-window edge ack + scaled window
  (``rwnd_edge``; only once the window scale is known), SACK blocks as bars, the
  most recent block apart from the older ones (``sack``, ``sack_old``), zero
  windows (``zero_window``, on the ACK line);
- ECN: CE on a data segment's IP header (``ce``, at its end), ECE on an ACK
  (``ece``, on the ACK line), CWR on a data segment (``cwr``, at its start);
- SYN, FIN (at the sequence number they take) and RST (the sender's at its seq,
  the receiver's on the ACK line); ``lost``: the analysis saw a gap before this
  segment (previous segment not captured).

Stevens' graph is the plain version: one dot per data segment at (time, seq),
retransmissions marked.
"""
from __future__ import annotations

import numpy as np

from .decimate import Marks, Points, Spans
from .figure import Figure
from .series import ACK, CWR, ECE, FIN, MAX_SACK, RETX, RST, SPURIOUS, SYN, Context, Rows, flagged, \
    layer, sack_edges

__all__ = ["TimeSeq"]

# Marks on the data sender's own packets: key -> (flag test, y from, draw)
_FWD_MARKS = ("retx", "spurious", "ooo", "zwp")


class _Side:
    def __init__(self, stevens: bool) -> None:
        self.data = Points() if stevens else Spans()
        self.marks = {k: Marks() for k in (*_FWD_MARKS, "lost", "ce", "cwr", "syn", "fin", "rst",
                                            "zero_window", "ece")}
        self.ack, self.dupack, self.edge = Points(), Points(), Points()
        self.sack, self.sack_old = Spans(), Spans()


class TimeSeq:
    """Collects the tcptrace graph (``stevens=False``) or Stevens' (``stevens=True``)."""

    def __init__(self, stevens: bool = False) -> None:
        self.stevens = stevens
        self.sides = (_Side(stevens), _Side(stevens))

    def feed(self, rows: Rows) -> None:
        for d, side in enumerate(self.sides):
            self._fwd(side, rows.take(rows.sender(d)))
            if not self.stevens:
                self._rev(side, rows.take(~rows.sender(d)))

    def _fwd(self, side: _Side, r: Rows) -> None:
        ann = rec = r
        t = r.t
        seq, length = ann["rel_seq"], rec["payload_len"].astype(np.int64)
        tf = rec["tcp_flags"]
        kinds = {
            "retx": ((ann["flags"] & RETX) != 0) & ((ann["flags"] & SPURIOUS) == 0),
            "spurious": (ann["flags"] & SPURIOUS) != 0,
            "ooo": flagged(ann, "out_of_order"),
            "zwp": flagged(ann, "zero_window_probe"),
        }
        special = np.zeros(len(t), bool)
        for key in _FWD_MARKS:
            m = kinds[key] & (length > 0)
            special |= m
            side.marks[key].add(t[m], seq[m], r.frame[m], seq[m] + length[m])
        plain = (length > 0) & ~special
        if self.stevens:
            side.data.add(t[plain], seq[plain], r.frame[plain])
        else:
            side.data.add(t[plain], seq[plain], seq[plain] + length[plain], r.frame[plain])
        at = {
            "lost": flagged(ann, "lost_segment"),
            "cwr": ((tf & CWR) != 0) & ((tf & SYN) == 0),
            "syn": (tf & SYN) != 0,
            "rst": (tf & RST) != 0,
        }
        for key, m in at.items():
            side.marks[key].add(t[m], seq[m], r.frame[m])
        fin = (tf & FIN) != 0
        side.marks["fin"].add(t[fin], (seq + length)[fin], r.frame[fin])
        ce = ((rec["ip_tos"] & 3) == 3) & (length > 0)
        side.marks["ce"].add(t[ce], (seq + length)[ce], r.frame[ce])

    def _rev(self, side: _Side, r: Rows) -> None:
        ann = rec = r
        t = r.t
        tf = rec["tcp_flags"]
        acks = (tf & ACK) != 0
        a = r.take(acks)
        side.ack.add(a.t, a["rel_ack"], a.frame)
        known = (a["win_scale"] != -1) & ((a["tcp_flags"] & SYN) == 0)
        side.edge.add(a.t[known], (a["rel_ack"] + a["win_scaled"])[known], a.frame[known])
        dup = flagged(a, "duplicate_ack")
        side.dupack.add(a.t[dup], a["rel_ack"][dup], a.frame[dup])
        for key, m in (("zero_window", flagged(a, "zero_window")),
                       ("ece", ((a["tcp_flags"] & ECE) != 0) & ((a["tcp_flags"] & SYN) == 0)),
                       ("rst", (a["tcp_flags"] & RST) != 0)):
            side.marks[key].add(a.t[m], a["rel_ack"][m], a.frame[m])
        for block in range(MAX_SACK):
            rows, lo, hi = sack_edges(r, block)
            (side.sack if block == 0 else side.sack_old).add(t[rows], lo, hi, r.frame[rows])

    def figure(self, ctx: Context) -> Figure:
        s = self.sides[ctx.direction]
        kind = "stevens" if self.stevens else "tcptrace"
        if self.stevens:
            layers = [layer(ctx, "stevens", "dots", s.data)]
        else:
            layers = [layer(ctx, "data", "ibeam", s.data),
                      layer(ctx, "sack_old", "bar", s.sack_old),
                      layer(ctx, "sack", "bar", s.sack),
                      layer(ctx, "ack", "step", s.ack),
                      layer(ctx, "rwnd_edge", "step", s.edge),
                      layer(ctx, "dupack", "marker", s.dupack)]
        layers += [layer(ctx, key, "dots" if self.stevens else "ibeam", s.marks[key])
                   for key in _FWD_MARKS]
        points = ("lost", "syn", "fin", "rst") if self.stevens else \
            ("lost", "zero_window", "ce", "ece", "cwr", "syn", "fin", "rst")
        layers += [layer(ctx, key, "marker", s.marks[key]) for key in points]
        return Figure(kind, ctx.title(kind), ctx.text("axis.time"), ctx.text("axis.seq"), layers,
                      packets=ctx.packets, words=ctx.words())
