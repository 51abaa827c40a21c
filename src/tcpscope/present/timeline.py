"""`tcpscope timeline FILE --stream N`: one row per round trip of a connection's data sender.

The capture goes through the pipeline once in improved mode (the sender model
is part of tcpscope's own judgement); the rows of the one stream asked for are
kept, and analysis/congestion.py makes the round trips of its data sender (the
side that sent more, or ``sender``). Each row: when the round began (seconds
from the stream's first packet), how long it took (one RTT at the capture
point), the congestion window and slow-start threshold estimates, the most in
flight, the receiver's window, the phase, what held the sender back, the bytes
delivered and retransmitted, and the congestion events that began in it.

Formats: ``table`` (within 100 columns), ``jsonl``, ``csv`` -- the same columns,
``COLUMNS``. docs/congestion.md says what each estimate can know where.
"""
from __future__ import annotations

import csv
import io
import json
import os
from dataclasses import dataclass
from typing import Any, BinaryIO, TextIO

import numpy as np

from ..analysis.congestion import EVENTS, LIMITS, PHASES, rounds, sender_side
from ..pipeline import Collect, Options, StreamNotFound, run

__all__ = ["FORMATS", "COLUMNS", "StreamNotFound", "Timeline", "timeline", "timeline_of",
           "render", "write_timeline"]

FORMATS = ("table", "jsonl", "csv")
#: The columns of every format, in order.
COLUMNS = ("round", "time", "rtt", "cwnd", "ssthresh", "in_flight", "rwnd", "phase", "limited_by",
           "delivered", "retransmitted", "sent", "segments", "events")
SIDES = ("client", "server")


@dataclass
class Timeline:
    stream: int
    sender: str               #: "client" or "server"
    t0_ns: int                #: the stream's first packet
    rounds: np.ndarray        #: ROUND_DTYPE

    def rows(self) -> list[dict[str, Any]]:
        """The rounds as dicts keyed by `COLUMNS` (times in seconds, bytes, segments)."""
        out = []
        for r in self.rounds:
            out.append({
                "round": int(r["round"]),
                "time": round((int(r["ts_ns"]) - self.t0_ns) / 1e9, 6),
                "rtt": round(int(r["duration_ns"]) / 1e9, 6),
                "cwnd": int(r["cwnd"]),
                "ssthresh": int(r["ssthresh"]) if r["ssthresh"] >= 0 else None,
                "in_flight": int(r["in_flight"]),
                "rwnd": int(r["rwnd"]) if r["rwnd"] >= 0 else None,
                "phase": PHASES[r["phase"]],
                "limited_by": LIMITS[r["limited_by"]],
                "delivered": int(r["delivered"]),
                "retransmitted": int(r["retransmitted"]),
                "sent": int(r["sent"]),
                "segments": int(r["segments"]),
                "events": [EVENTS[e] for e in range(1, len(EVENTS)) if int(r["events"]) >> e & 1],
            })
        return out


def timeline(source: str | os.PathLike | BinaryIO, stream: int, sender: str | None = None) -> Timeline:
    """Read `source` and make the round trips of `stream`'s data sender."""
    keep = Collect(lambda chunk: np.flatnonzero(chunk.annotations["stream"] == stream))
    run(source, [keep], Options(mode="improved", keep_transitions=False, summaries=False))
    a = keep.analysis
    if a is None or not len(a):
        raise StreamNotFound.number(stream)
    return timeline_of(a.records, a.annotations, a.ts_ns, stream, sender)


def timeline_of(records: np.ndarray, annotations: np.ndarray, ts_ns: np.ndarray, stream: int,
                sender: str | None = None) -> Timeline:
    """The timeline of `stream` from rows analysed in improved mode (other streams' rows
    may be among them)."""
    rows = np.flatnonzero(annotations["stream"] == stream)
    if not rows.size:
        raise StreamNotFound.number(stream)
    mine = annotations[rows]
    side = SIDES.index(sender) if sender else sender_side(mine)
    if not np.any((mine["from_server"] == side) & (mine["cwnd_est"] >= 0)):
        raise StreamNotFound(f"the {SIDES[side]} of stream {stream} sent no data")
    return Timeline(stream, SIDES[side], int(ts_ns[rows[0]]),
                    rounds(records, annotations, ts_ns, stream, side))


_TABLE = (("round", 5), ("time", 8), ("rtt", 7), ("cwnd", 5), ("ssth", 5), ("flight", 8),
          ("rwnd", 8), ("phase", 13), ("limit", 7), ("deliv", 8), ("retx", 6), ("events", 0))
_PHASE = {"slow_start": "slow start", "congestion_avoidance": "cong. avoid.",
          "fast_recovery": "fast recovery", "rto_recovery": "RTO recovery", "cwr": "CWR"}
_EVENT = {"fast_recovery": "recovery", "rto": "RTO", "tlp": "TLP", "cwr": "CWR"}


def _cell(value: Any) -> str:
    return "-" if value is None else str(value)


def render(tl: Timeline, fmt: str = "table") -> str:
    """The text of a timeline in one of `FORMATS`."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}; expected one of {FORMATS}")
    rows = tl.rows()
    if fmt == "jsonl":
        return "".join(json.dumps(r, separators=(",", ":")) + "\n" for r in rows)
    if fmt == "csv":
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(COLUMNS)
        for r in rows:
            w.writerow(["" if r[c] is None else ";".join(r[c]) if c == "events" else r[c]
                        for c in COLUMNS])
        return buf.getvalue()
    lines = [f"stream {tl.stream}, the {tl.sender}'s data, a row per round trip "
             "(seconds; cwnd, ssth: segments; bytes)"]
    lines.append(" ".join(f"{name:>{width}}" if width else name for name, width in _TABLE).rstrip())
    for r in rows:
        cells = [r["round"], f"{r['time']:.3f}", f"{r['rtt']:.4f}", r["cwnd"], _cell(r["ssthresh"]),
                 r["in_flight"], _cell(r["rwnd"]), _PHASE.get(r["phase"], _cell(r["phase"])),
                 _cell(r["limited_by"]), r["delivered"], r["retransmitted"],
                 ",".join(_EVENT.get(e, e) for e in r["events"])]
        lines.append(" ".join(f"{_cell(v):>{w}}" if w else _cell(v)
                              for v, (_, w) in zip(cells, _TABLE)).rstrip())
    return "\n".join(lines) + "\n"


def write_timeline(source: str | os.PathLike | BinaryIO, out: TextIO, stream: int,
                   fmt: str = "table", sender: str | None = None) -> Timeline:
    """Read `source`, write `stream`'s timeline to `out`; returns it."""
    tl = timeline(source, stream, sender)
    out.write(render(tl, fmt))
    return tl
