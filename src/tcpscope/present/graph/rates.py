"""Graphs of quantities over time: throughput, RTT, windows, the congestion window.

- `Throughput`: bits/s of the data sender's payload (``throughput``) and of
  the receiver's ACK advance (``goodput``: what arrived in order), averaged over
  a moving window; segment lengths as dots on the right axis (``seglen``).
- `Rtt`: the analysis's per-ACK samples (``ack_rtt``: the ACK's time minus the
  acknowledged segment's), in ms. A sample whose ACK acknowledges retransmitted
  bytes is ambiguous (Karn's rule: the ACK may answer the original) and drawn
  apart (``rtt_karn``); the handshake RTT as a reference line (``irtt``).
- `Window`: the receiver's advertised window, scaled (``rwnd``, steps), against
  the data in flight (``bif``, the analysis's bytes in flight after each
  segment); window-full and zero-window marks.
- `Cwnd`: the sender model's estimate (``cwnd_est``, ``ssthresh_est`` in
  segments), its data in flight (``in_flight``, bytes, right axis), the phase
  after each segment shaded (``cc_phase``), a recovery's start marked. These are
  the per-packet fields of DESIGN.md ("Per-packet record") that the sender model
  adds to the annotations; `Cwnd` says so when the analysis has none.
"""
from __future__ import annotations

import numpy as np

from .decimate import Marks, Points, Sums
from .figure import Figure, Layer
from .series import ACK, RETX, SPURIOUS, SYN, Context, Rows, flagged, layer

__all__ = ["Throughput", "Rtt", "Window", "Cwnd", "CWND_FIELDS", "CC_PHASES", "GraphUnavailable"]

#: the sender model's fields the cwnd graph reads (DESIGN.md, per-packet record)
CWND_FIELDS = ("cwnd_est", "ssthresh_est", "in_flight", "cc_phase")
#: cc_phase codes, in the order of their numbers
CC_PHASES = ("unknown", "slow_start", "congestion_avoidance", "fast_recovery", "rto_recovery", "cwr")
_RECOVERY = ("fast_recovery", "rto_recovery")


class GraphUnavailable(Exception):
    """The analysis has not the facts this graph draws; the message says which."""


def _known_window(r: Rows) -> np.ndarray:
    """Rows whose window is scaled as the sender reads it: scale known, not a SYN."""
    return (r["win_scale"] != -1) & ((r["tcp_flags"] & SYN) == 0)


class Throughput:
    """Payload and ACK advance per second, and segment lengths."""

    def __init__(self, window: float | None = None) -> None:
        self.window = window   #: the moving average's width in seconds (default: 1 % of the span)
        self.sides = [self._side() for _ in range(2)]

    @staticmethod
    def _side() -> dict:
        return {"fwd": Sums(), "good": Sums(), "seglen": Points(), "ack": None}

    def feed(self, rows: Rows) -> None:
        for d, side in enumerate(self.sides):
            f = rows.take(rows.sender(d))
            length = f["payload_len"].astype(np.float64)
            m = length > 0
            side["fwd"].add(f.t[m], length[m])
            side["seglen"].add(f.t[m], length[m], f.frame[m])
            r = rows.take(~rows.sender(d))
            r = r.take((r["tcp_flags"] & ACK) != 0)
            if len(r.t) == 0:
                continue
            ack = r["rel_ack"]
            start = ack[0] if side["ack"] is None else side["ack"]
            top = np.maximum.accumulate(np.r_[start, ack])
            side["good"].add(r.t, np.diff(top).astype(np.float64))
            side["ack"] = top[-1]

    def figure(self, ctx: Context) -> Figure:
        s = self.sides[ctx.direction]
        window = self.window if self.window is not None else ctx.span / 100
        layers = []
        for key in ("fwd", "good"):
            t, bps, used = s[key].rate(ctx.span, ctx.width, window)
            name = "throughput" if key == "fwd" else "goodput"
            layers.append(Layer(name, "line", {"t": t, "y": bps * 8, "frame": np.zeros(len(t), np.int64)},
                                label=ctx.text(f"mark.{name}")))
        layers.append(layer(ctx, "seglen", "dots", s["seglen"], axis=1))
        note = ctx.text("note.window", window=ctx.cat.duration(used))
        return Figure("throughput", ctx.title("throughput"), ctx.text("axis.time"),
                      ctx.text("axis.bps"), layers, y2label=ctx.text("axis.seglen"), notes=[note],
                      packets=ctx.packets, words=ctx.words())


class Rtt:
    """Per-ACK RTT samples, Karn-ambiguous ones apart, and the handshake RTT.

    Karn's rule on the analysis's facts: a sample is ambiguous when its ACK is the
    first to acknowledge bytes of a retransmission (flagged by the analysis), or
    one of the ACKs after it until the whole retransmission is acknowledged.
    """

    def __init__(self) -> None:
        #: per direction: the series, and the retransmissions (frame, seq, end) not yet
        #: wholly acknowledged
        self.sides = [{"rtt": Points(), "karn": Marks(), "pending": []} for _ in range(2)]
        self.irtt_ns = -1

    def feed(self, rows: Rows) -> None:
        self.irtt_ns = max(self.irtt_ns, int(rows["irtt_ns"].max()))
        for d, side in enumerate(self.sides):
            f = rows.take(rows.sender(d))
            rx = ((f["flags"] & (RETX | SPURIOUS)) != 0) & (f["payload_len"] > 0)
            side["pending"] += zip(f.frame[rx].tolist(), f["rel_seq"][rx].tolist(),
                                   (f["rel_seq"] + f["payload_len"])[rx].tolist())
            r = rows.take(~rows.sender(d))
            r = r.take(r["ack_rtt_ns"] >= 0)
            if len(r.t) == 0:
                continue
            amb = self._karn(side, r.frame, r["rel_ack"])
            ms = r["ack_rtt_ns"] / 1e6
            side["rtt"].add(r.t[~amb], ms[~amb], r.frame[~amb])
            side["karn"].add(r.t[amb], ms[amb], r.frame[amb])

    @staticmethod
    def _karn(side: dict, frame: np.ndarray, ack: np.ndarray) -> np.ndarray:
        amb = np.zeros(len(frame), bool)
        keep = []
        for fr, seq, end in side["pending"]:
            later = frame > fr
            first = np.flatnonzero(later & (ack > seq))
            if len(first) == 0:
                keep.append((fr, seq, end))
                continue
            done = np.flatnonzero(later & (ack >= end))
            amb[first[0]:(done[0] if len(done) else len(frame) - 1) + 1] = True
            if len(done) == 0:
                keep.append((fr, seq, end))
        side["pending"] = keep
        return amb

    def figure(self, ctx: Context) -> Figure:
        s = self.sides[ctx.direction]
        layers = [layer(ctx, "rtt", "dots", s["rtt"]), layer(ctx, "rtt_karn", "marker", s["karn"])]
        if self.irtt_ns >= 0:
            ms = self.irtt_ns / 1e6
            layers.append(Layer("irtt", "line", {"t": np.array([0.0, ctx.span]), "y": np.array([ms, ms]),
                                                 "frame": np.zeros(2, np.int64)},
                                label=ctx.text("mark.irtt", rtt=ctx.cat.duration(self.irtt_ns / 1e9))))
        return Figure("rtt", ctx.title("rtt"), ctx.text("axis.time"), ctx.text("axis.rtt"), layers,
                      packets=ctx.packets, words=ctx.words())


class Window:
    """The receiver's window against the sender's data in flight."""

    def __init__(self) -> None:
        self.sides = [{"rwnd": Points(), "bif": Points(), "full": Marks(), "zero": Marks()}
                      for _ in range(2)]

    def feed(self, rows: Rows) -> None:
        for d, side in enumerate(self.sides):
            f = rows.take(rows.sender(d))
            b = f["bytes_in_flight"] >= 0
            side["bif"].add(f.t[b], f["bytes_in_flight"][b], f.frame[b])
            full = flagged(f, "window_full") & b
            side["full"].add(f.t[full], f["bytes_in_flight"][full], f.frame[full])
            r = rows.take(~rows.sender(d))
            k = _known_window(r)
            side["rwnd"].add(r.t[k], r["win_scaled"][k], r.frame[k])
            z = flagged(r, "zero_window")
            side["zero"].add(r.t[z], np.zeros(int(z.sum())), r.frame[z])

    def figure(self, ctx: Context) -> Figure:
        s = self.sides[ctx.direction]
        layers = [layer(ctx, "rwnd", "step", s["rwnd"]), layer(ctx, "bif", "dots", s["bif"]),
                  layer(ctx, "window_full", "marker", s["full"]),
                  layer(ctx, "zero_window_at", "marker", s["zero"])]
        return Figure("window", ctx.title("window"), ctx.text("axis.time"), ctx.text("axis.bytes"),
                      layers, packets=ctx.packets, words=ctx.words())


class Cwnd:
    """The sender model's congestion window, ssthresh, in flight and phases."""

    def __init__(self, phases: tuple[str, ...] = CC_PHASES) -> None:
        self.phases = phases
        self.sides = [{"cwnd": Points(), "ssthresh": Points(), "in_flight": Points(),
                       "recovery": Marks(), "spans": [], "run": None} for _ in range(2)]
        self.t_last = 0.0

    def feed(self, rows: Rows) -> None:
        missing = [f for f in CWND_FIELDS if f not in rows.names]
        if missing:
            raise GraphUnavailable(", ".join(missing))
        self.t_last = max(self.t_last, float(rows.t.max()))
        for d, side in enumerate(self.sides):
            f = rows.take(rows.sender(d))
            f = f.take(f["cwnd_est"] >= 0)
            if len(f.t) == 0:
                continue
            side["cwnd"].add(f.t, f["cwnd_est"], f.frame)
            ss = f["ssthresh_est"] >= 0
            side["ssthresh"].add(f.t[ss], f["ssthresh_est"][ss], f.frame[ss])
            fl = f["in_flight"] >= 0
            side["in_flight"].add(f.t[fl], f["in_flight"][fl], f.frame[fl])
            self._phases(side, f)

    def _phases(self, side: dict, f: Rows) -> None:
        """Runs of one phase as (start, end, phase); a recovery's first segment is marked."""
        ph = f["cc_phase"].astype(np.int64)
        change = np.flatnonzero(np.r_[True, ph[1:] != ph[:-1]])
        for i in change:
            code, t = int(ph[i]), float(f.t[i])
            run = side["run"]
            if run is not None and run[1] == code:
                continue
            if run is not None:
                side["spans"].append((run[0], t, self.phases[run[1]]))
            side["run"] = (t, code)
            if self.phases[code] in _RECOVERY:
                side["recovery"].add(f.t[i:i + 1], f["cwnd_est"][i:i + 1], f.frame[i:i + 1])

    def figure(self, ctx: Context) -> Figure:
        s = self.sides[ctx.direction]
        spans = list(s["spans"])
        if s["run"] is not None:
            spans.append((s["run"][0], self.t_last, self.phases[s["run"][1]]))
        spans = [(a, b, f"phase.{p}") for a, b, p in spans if p != "unknown"]
        layers = [layer(ctx, "cwnd", "step", s["cwnd"]), layer(ctx, "ssthresh", "step", s["ssthresh"]),
                  layer(ctx, "in_flight", "line", s["in_flight"], axis=1),
                  layer(ctx, "recovery", "marker", s["recovery"])]
        labels = {f"phase.{p}": ctx.text(f"phase.{p}") for p in self.phases if p != "unknown"}
        return Figure("cwnd", ctx.title("cwnd"), ctx.text("axis.time"), ctx.text("axis.segments"),
                      layers, y2label=ctx.text("axis.bytes"), spans=spans, span_labels=labels,
                      packets=ctx.packets, words=ctx.words())
