"""The sliding window at one instant (RFC 9293 §3.3.1, Figure 3), and a stream's key moments.

The sender's sequence space at frame F, as every textbook draws it::

        1          2          3          4
    ----------|----------|----------|----------
           SND.UNA    SND.NXT    SND.UNA
                                +SND.WND
    1 - old sequence numbers that have been acknowledged
    2 - sequence numbers of unacknowledged data
    3 - sequence numbers allowed for new data transmission
    4 - future sequence numbers that are not yet allowed

It is a vertical slice through the tcptrace graph at F's time, from the same
facts: SND.UNA is the highest ack the receiver had sent (the ACK line),
SND.WND the window its latest packet advertised (scaled), SND.NXT the highest
next seq the sender had sent (the top of the data); the SACK blocks of the
receiver's latest ACK split region 2; the congestion window estimate (sender
model, ``cwnd_est`` × the sender's largest segment) is a second limit beside
the receiver's window, and the usable window is what is left under both.

`SlidingWindow` also finds a stream's key moments while it reads (for the
report): the first data segment, the first window-full segment, the first zero
window and the first window update after it, the first retransmission, and the
segment with the most bytes in flight; it takes the picture at each.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .figure import Figure, Layer
from .series import ACK, MAX_SACK, RETX, Context, Rows, flagged, sack_edges

__all__ = ["SlidingWindow", "Snapshot", "MOMENTS"]

#: the key moments, in the order a stream meets them
MOMENTS = ("first_data", "window_full", "zero_window", "window_reopened", "first_retx", "peak_flight")


@dataclass(frozen=True)
class Snapshot:
    """The sender's view of direction `direction` after frame `frame`."""

    frame: int
    t: float
    direction: int
    una: int | None = None           #: SND.UNA: the highest ack from the receiver
    nxt: int | None = None           #: SND.NXT: the highest next seq sent
    wnd: int | None = None           #: SND.WND: the receiver's latest window, scaled
    sacked: tuple[tuple[int, int], ...] = ()   #: SACK blocks of the receiver's latest ACK
    bytes_in_flight: int | None = None         #: the analysis's, after the sender's latest segment
    cwnd_est: float | None = None    #: segments (sender model), when the analysis has it
    mss: int = 0                     #: the sender's largest segment so far
    reason: str = ""                 #: a key moment's name, "" for a frame asked for


@dataclass
class _State:
    una: int | None = None
    nxt: int | None = None
    wnd: int | None = None
    sacked: tuple[tuple[int, int], ...] = ()
    bif: int | None = None
    cwnd: float | None = None
    mss: int = 0
    found: dict[str, Snapshot] = field(default_factory=dict)
    peak: int = -1


class SlidingWindow:
    """Takes the picture at `frames` (both directions) and at each direction's key moments."""

    def __init__(self, frames: tuple[int, ...] = (), moments: bool = False) -> None:
        self.frames = tuple(sorted(frames))
        self.moments = moments
        self.state = (_State(), _State())
        self.at: dict[tuple[int, int], Snapshot] = {}   #: (frame, direction) -> picture
        self.frame_sender: dict[int, tuple[int, int]] = {}   #: frame -> (from_server, len)

    # -- reading -------------------------------------------------------------

    def feed(self, rows: Rows) -> None:
        asked = [f for f in self.frames if np.any(rows.frame == f)]
        for f in asked:
            i = int(np.flatnonzero(rows.frame == f)[0])
            self.frame_sender[f] = (int(rows["from_server"][i]), int(rows["payload_len"][i]))
        for d, st in enumerate(self.state):
            stops = {f: "" for f in asked}
            if self.moments:
                stops.update(self._candidates(d, st, rows))
            pos = 0
            for f in sorted(stops):
                i = int(np.flatnonzero(rows.frame == f)[0]) + 1
                self._update(d, st, rows, pos, i)
                pos = i
                snap = self._snap(d, st, f, float(rows.t[i - 1]), stops[f])
                if stops[f]:
                    st.found[stops[f]] = snap
                else:
                    self.at[(f, d)] = snap
            self._update(d, st, rows, pos, len(rows.t))

    def _candidates(self, d: int, st: _State, rows: Rows) -> dict[int, str]:
        """The frames in `rows` that are a key moment of direction `d` not yet found."""
        fwd = rows.sender(d)
        ann = rows
        first = {
            "first_data": fwd & (rows["payload_len"] > 0),
            "window_full": fwd & flagged(ann, "window_full"),
            "zero_window": ~fwd & flagged(ann, "zero_window"),
            "first_retx": fwd & ((ann["flags"] & RETX) != 0),
        }
        out: dict[int, str] = {}
        for name, m in first.items():
            idx = np.flatnonzero(m)
            if name not in st.found and len(idx):
                out.setdefault(int(rows.frame[idx[0]]), name)
        zero = st.found["zero_window"].frame if "zero_window" in st.found else \
            next((f for f, name in out.items() if name == "zero_window"), None)
        if zero is not None and "window_reopened" not in st.found:
            idx = np.flatnonzero(~fwd & flagged(ann, "window_update") & (rows.frame > zero))
            if len(idx):
                out.setdefault(int(rows.frame[idx[0]]), "window_reopened")
        bif = np.where(fwd, ann["bytes_in_flight"], -1)
        if len(bif) and bif.max() > st.peak:
            i = int(np.argmax(bif))
            st.peak = int(bif[i])
            out.setdefault(int(rows.frame[i]), "peak_flight")
        return out

    def _update(self, d: int, st: _State, rows: Rows, a: int, b: int) -> None:
        """Fold rows a..b-1 into the state of direction `d`."""
        if a >= b:
            return
        r = rows.slice(a, b)
        fwd = r.sender(d)
        f = r.take(fwd)
        if len(f.t):
            top = int(f["next_rel_seq"].max())
            st.nxt = top if st.nxt is None else max(st.nxt, top)
            st.bif = int(f["bytes_in_flight"][-1])
            st.mss = max(st.mss, int(f["payload_len"].max()))
            if "cwnd_est" in f.names:
                st.cwnd = float(f["cwnd_est"][-1]) if f["cwnd_est"][-1] >= 0 else None
        rev = r.take(~fwd & ((r["tcp_flags"] & ACK) != 0))
        if len(rev.t):
            top = int(rev["rel_ack"].max())
            st.una = top if st.una is None else max(st.una, top)
            known = rev["win_scale"] != -1
            if known[-1]:
                st.wnd = int(rev["win_scaled"][-1])
            last = rev.take(np.arange(len(rev.t)) == len(rev.t) - 1)
            blocks = []
            for k in range(MAX_SACK):
                rows_k, lo, hi = sack_edges(last, k)
                blocks += [(int(x), int(y)) for x, y in zip(lo, hi)]
            st.sacked = tuple(sorted(blocks))

    @staticmethod
    def _snap(d: int, st: _State, frame: int, t: float, reason: str) -> Snapshot:
        return Snapshot(frame, t, d, st.una, st.nxt, st.wnd, st.sacked,
                        None if st.bif is None or st.bif < 0 else st.bif, st.cwnd, st.mss, reason)

    # -- results -------------------------------------------------------------

    def direction_of(self, frame: int) -> int:
        """The data direction a picture of `frame` shows: its sender's if it carries
        data, else its peer's (an ACK belongs to the data it acknowledges)."""
        if frame not in self.frame_sender:
            raise KeyError(frame)
        side, length = self.frame_sender[frame]
        return side if length > 0 else 1 - side

    def snapshot(self, frame: int, direction: int | None = None) -> Snapshot:
        d = self.direction_of(frame) if direction is None else direction
        return self.at[(frame, d)]

    def key_moments(self, direction: int) -> list[Snapshot]:
        """The key moments of `direction` that happened, in frame order."""
        found = self.state[direction].found
        return sorted(found.values(), key=lambda s: s.frame)


def figure(ctx: Context, snap: Snapshot) -> Figure:
    """The picture of one snapshot: the byte space in bands, the edges marked, and
    what the sender may do, in words."""
    tx = ctx.text
    if snap.una is None or snap.nxt is None:
        return Figure("slidingwindow", tx("title.slidingwindow", stream=ctx.stream, frame=snap.frame,
                                          src=ctx.sender, dst=ctx.receiver),
                      tx("axis.seq"), "", [], notes=[tx("sw.unknown")], packets=ctx.packets,
                      words=ctx.words())
    una, nxt = snap.una, snap.nxt
    wnd = snap.wnd if snap.wnd is not None else 0
    cwnd_bytes = int(snap.cwnd_est * snap.mss) if snap.cwnd_est is not None and snap.mss else None
    edge_r = una + wnd
    edge = min(edge_r, una + cwnd_bytes) if cwnd_bytes is not None else edge_r
    width = max(wnd, nxt - una, cwnd_bytes or 0, 4 * snap.mss, 1)
    lo = max(0, una - width // 3)
    hi = max(edge_r, nxt, una + (cwnd_bytes or 0)) + width // 3
    bands: list[tuple[str, int, int, int]] = [("acked", lo, una, 0), ("sent", una, nxt, 0)]
    bands += [("sacked", max(a, una), min(b, nxt), 0) for a, b in snap.sacked if b > una and a < nxt]
    if nxt < edge:
        bands.append(("usable", nxt, edge, 0))
    elif nxt > edge:
        bands.append(("beyond", edge, nxt, 0))
    bands.append(("not_allowed", max(edge, nxt), hi, 0))
    bands.append(("rwnd_span", una, edge_r, 1))
    if cwnd_bytes is not None:
        bands.append(("cwnd_span", una, una + cwnd_bytes, 2))
    layers = []
    for key in dict.fromkeys(b[0] for b in bands):
        mine = [b for b in bands if b[0] == key and b[2] > b[1]]
        if not mine:
            continue
        cols = {"lo": np.array([b[1] for b in mine], "f8"), "hi": np.array([b[2] for b in mine], "f8"),
                "row": np.array([b[3] for b in mine], "i8")}
        params = {"n": sum(b[2] - b[1] for b in mine)}
        layers.append(Layer(key, "band", cols, label=tx(f"sw.{key}", **params)))
    edges = [("SND.UNA", una), ("SND.NXT", nxt), ("SND.UNA+SND.WND", edge_r)]
    if cwnd_bytes is not None:
        edges.append(("SND.UNA+cwnd", una + cwnd_bytes))
    for name, x in edges:
        layers.append(Layer("edge", "edge", {"x": np.array([float(x)])}, text=f"{name} = {x}"))
    usable = edge - nxt
    notes = [tx("sw.at", frame=snap.frame, t=f"{snap.t:.6f}", una=una, nxt=nxt, wnd=wnd,
                flight=nxt - una)]
    if snap.bytes_in_flight is not None:
        notes.append(tx("sw.bif", bif=snap.bytes_in_flight))
    if cwnd_bytes is not None:
        notes.append(tx("sw.cwnd", cwnd=f"{snap.cwnd_est:g}", mss=snap.mss, bytes=cwnd_bytes))
    if wnd == 0:
        notes.append(tx("sw.zero"))
    elif usable > 0:
        notes.append(tx("sw.may", usable=usable, limit=tx("sw.by_cwnd" if edge < edge_r else "sw.by_rwnd")))
    else:
        notes.append(tx("sw.wait", limit=tx("sw.by_cwnd" if edge < edge_r else "sw.by_rwnd")))
    if snap.reason:
        notes.insert(0, tx(f"moment.{snap.reason}"))
    title = tx("title.slidingwindow", stream=ctx.stream, frame=snap.frame, src=ctx.sender,
               dst=ctx.receiver)
    rows = {i: tx(f"sw.row_{name}") for i, name in enumerate(("bytes", "rwnd", "cwnd"))}
    return Figure("slidingwindow", title, tx("axis.seq"), "", layers, notes=notes,
                  packets=ctx.packets, words=ctx.words(), row_labels=rows)
