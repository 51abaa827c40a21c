"""The sender model's facts in Python: names, episodes, round trips, the row of a connection.

The model itself is a unit of the native engine (``_engine/sender.c``, improved
mode): it puts ``cwnd_est``, ``ssthresh_est``, ``in_flight``, ``cc_phase``,
``limited_by``, ``cc_round`` and the congestion events on the annotations of
each data sender's segments, and ``cc_guess`` & co. on the connection rows.
This module reads those columns back into what people and presenters use::

    a = tcpscope.analyze("trace.pcap", mode="improved")
    rows = congestion.rounds(a.records, a.annotations, a.ts_ns, stream=0)   # ROUND_DTYPE
    eps = congestion.episodes(a.annotations, a.ts_ns, stream=0)            # [Episode]
    congestion.conn_facts(a.connections[0])                                 # per side

docs/congestion.md states every rule and what each capture point can know.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from . import _engine
from .annotation import FLAG

__all__ = [
    "PHASES", "LIMITS", "EVENTS", "TRIGGERS", "FAMILIES", "ROUND_DTYPE", "Episode",
    "SenderState", "sender_state", "episodes", "rounds", "sender_side", "conn_facts",
    "CONN_COLUMNS", "CONN_KEYS", "data_sender_columns", "data_sender_facts",
]

_ENUMS = _engine.enums()


def _names(kind: str) -> tuple[str | None, ...]:
    values = {v: k.lower() for k, v in _ENUMS[kind].items()}
    return tuple(None if values.get(i) == "none" else values.get(i) for i in range(max(values) + 1))


#: cc_phase values -> names (index 0, NONE, is None: not a data sender's segment)
PHASES = _names("cc_phase")
#: limited_by values -> names
LIMITS = _names("limited_by")
#: cc_event / cc_episode_end values -> names
EVENTS = _names("cc_event")
#: cc_trigger values -> names
TRIGGERS = _names("cc_trigger")
#: cc_guess values -> names (0 is "unknown")
FAMILIES = tuple(k.lower() for k, _ in sorted(_ENUMS["cc_family"].items(), key=lambda kv: kv[1]))
_INF = 0x7FFFFFFF
_RETX = FLAG["retransmission"]

#: One row per round trip of a data sender (see `rounds`).
ROUND_DTYPE = np.dtype([
    ("round", "u4"),          # the sender's round trips so far (cc_round)
    ("ts_ns", "i8"),          # its first segment's capture time
    ("duration_ns", "i8"),    # until the next round's first segment: one RTT at the capture point
    ("frame", "i8"),          # its first segment's frame
    ("cwnd", "i4"),           # the estimate at its last segment, segments
    ("ssthresh", "i4"),       # ... -1 while unknown or infinite
    ("in_flight", "i8"),      # the most in flight during it, bytes
    ("rwnd", "i8"),           # the receiver's last advertised window in it, bytes (-1 none)
    ("phase", "u1"),          # cc_phase at its last segment
    ("limited_by", "u1"),     # what held the sender back most often in it
    ("events", "u1"),         # bit (1 << event) for each event that began in it
    ("segments", "u4"),       # data segments sent
    ("sent", "i8"),           # payload bytes sent (retransmissions included)
    ("retransmitted", "i8"),  # payload bytes of retransmissions
    ("delivered", "i8"),      # bytes the receiver's cumulative ACK advanced by
])


@dataclass(frozen=True)
class SenderState:
    """The sender model of one side as it stands (`sender_state`)."""

    cwnd: int                 #: segments
    ssthresh: int | None      #: segments; None while infinite
    in_flight: int            #: bytes, as the sender counts them
    phase: str
    limited_by: str           #: what holds it back now
    family: str               #: the guess so far
    confidence: int           #: 0..100
    rounds: int
    srtt_us: int
    min_rtt_us: int
    remote: bool              #: the capture is not beside this sender


def sender_state(analyzer: Any, stream: int, side: int, now_ns: int | None = None) -> SenderState | None:
    """The model of `side` (0 client, 1 server) of `stream` in an `Analyzer`, after
    the packets fed so far; with `now_ns`, as it stands at that capture time (the
    ACKs that have reached a remote sender by then, a timer that has fired), worked
    out without changing the analyzer. None if that side sent no data (or its state
    was evicted)."""
    v = analyzer._engine.sender_state(int(stream), int(side), int(now_ns or 0))
    if v is None:
        return None
    return SenderState(
        cwnd=v["cwnd"], ssthresh=None if v["ssthresh"] >= _INF else v["ssthresh"],
        in_flight=v["in_flight"], phase=PHASES[v["phase"]] or "slow_start",
        limited_by=LIMITS[v["limited_by"]] or "unknown", family=FAMILIES[v["family"]],
        confidence=v["confidence"], rounds=v["rounds"], srtt_us=v["srtt_us"],
        min_rtt_us=v["min_rtt_us"], remote=v["remote"])


@dataclass(frozen=True)
class Episode:
    """A loss recovery or window reduction, from its start to its end."""

    start_frame: int
    end_frame: int | None     #: the sender's first segment after it ended; None: it had not
    trigger: str              #: dupacks, sack, rack, tlp, rto, ece
    lost: int                 #: segments (retransmitted, less those D-SACK proved needless)
    retransmitted: int
    spurious: bool            #: undone: the reduction was not needed
    start_ns: int
    end_ns: int | None


def _stream_side(annotations: np.ndarray, stream: int, side: int | None) -> tuple[np.ndarray, int]:
    """Rows of `stream`; the data sender's side (given, or the one that sent more)."""
    rows = np.flatnonzero(annotations["stream"] == stream)
    if side is None:
        side = sender_side(annotations[rows])
    return rows, side


def sender_side(annotations: np.ndarray) -> int:
    """0 (client) or 1 (server): the side whose segments carry more model rows."""
    sent = annotations["cwnd_est"] >= 0
    server = int(np.count_nonzero(sent & (annotations["from_server"] == 1)))
    return 1 if server > np.count_nonzero(sent) - server else 0


def episodes(annotations: np.ndarray, ts_ns: np.ndarray, stream: int,
             side: int | None = None) -> list[Episode]:
    """The episodes of a stream's data sender, in order, from the events on its segments."""
    rows, side = _stream_side(annotations, stream, side)
    a = annotations[rows]
    mine = a["from_server"] == side
    out: list[Episode] = []
    open_: dict | None = None
    for k in np.flatnonzero(mine & ((a["cc_event"] > 0) | (a["cc_episode_end"] > 0))):
        r = a[k]
        t = int(ts_ns[rows[k]])
        end = int(r["cc_episode_end"])
        if end:
            start = int(r["cc_episode_start"])
            start_ns = open_["start_ns"] if open_ and open_["frame"] == start else t
            out.append(Episode(start, int(r["frame"]), TRIGGERS[r["cc_episode_trigger"]] or "unknown",
                               int(r["cc_episode_lost"]), int(r["cc_episode_retx"]),
                               EVENTS[end] == "undo", start_ns, t))
            open_ = None
        ev = EVENTS[r["cc_event"]]
        if ev in ("fast_recovery", "rto", "cwr", "tlp") and not (ev == "rto" and open_):
            open_ = {"frame": int(r["frame"]), "trigger": TRIGGERS[r["cc_trigger"]] or "unknown",
                     "start_ns": t}
    if open_ and open_["trigger"] != "tlp":
        out.append(Episode(open_["frame"], None, open_["trigger"], 0, 0, False, open_["start_ns"], None))
    return out


def rounds(records: np.ndarray, annotations: np.ndarray, ts_ns: np.ndarray, stream: int,
           side: int | None = None) -> np.ndarray:
    """One `ROUND_DTYPE` row per round trip of a stream's data sender (`side`, or
    the side that sent more). A round ends when the ACK passes what was sent when
    it began, so its length is one round-trip time wherever the capture is."""
    rows, side = _stream_side(annotations, stream, side)
    a = annotations[rows]
    rec = records[rows]
    ts = np.asarray(ts_ns, dtype=np.int64)[rows]
    mine = (a["from_server"] == side) & (a["cwnd_est"] >= 0)
    peer = (a["from_server"] != side) & (a["kind"] == 1)
    idx = np.flatnonzero(mine)
    if idx.size == 0:
        return np.zeros(0, dtype=ROUND_DTYPE)
    rnd = a["cc_round"][idx]
    starts = idx[np.r_[True, rnd[1:] != rnd[:-1]]]
    out = np.zeros(starts.size, dtype=ROUND_DTYPE)
    # the receiver's cumulative ACK, running maximum over its ACK-bearing rows
    acked = np.where(peer & ((rec["tcp_flags"] & 0x10) != 0), a["rel_ack"], -1)
    acked = np.maximum.accumulate(np.maximum(acked, 0))
    for i, s in enumerate(starts):
        e = starts[i + 1] if i + 1 < starts.size else len(a)
        seg = idx[(idx >= s) & (idx < e)]
        last = seg[-1]
        payload = rec["payload_len"][seg].astype(np.int64)
        data = payload > 0
        retx = data & ((a["flags"][seg] & _RETX) != 0)
        win = np.flatnonzero(peer[s:e])
        limits = a["limited_by"][seg]
        ev = a["cc_event"][seg]
        o = out[i]
        o["round"] = a["cc_round"][s]
        o["ts_ns"] = ts[s]
        o["duration_ns"] = (ts[e] if e < len(a) else ts[-1]) - ts[s]
        o["frame"] = a["frame"][s]
        o["cwnd"] = a["cwnd_est"][last]
        o["ssthresh"] = a["ssthresh_est"][last]
        o["in_flight"] = int(a["in_flight"][seg].max())
        o["rwnd"] = int(a["win_scaled"][s + win[-1]]) if win.size else -1
        o["phase"] = a["cc_phase"][last]
        o["limited_by"] = int(np.bincount(limits).argmax())
        o["events"] = int(np.bitwise_or.reduce((1 << ev[ev > 0].astype(np.uint16)).astype(np.uint16),
                                               initial=0))
        o["segments"] = int(np.count_nonzero(data))
        o["sent"] = int(payload.sum())
        o["retransmitted"] = int(payload[retx].sum())
        before = acked[s - 1] if s > 0 else 0
        o["delivered"] = int(acked[e - 1] - before)
    return out


def conn_facts(row: np.void) -> dict[str, dict[str, Any]]:
    """The sender model's facts of a connection row (CONN_DTYPE), per side."""
    out = {}
    for i, side in enumerate(("client", "server")):
        ms = row["time_limited_ms"][i]
        out[side] = {
            "cc_guess": FAMILIES[int(row["cc_guess"][i])],
            "cc_confidence": int(row["cc_confidence"][i]),
            "loss_episodes": int(row["loss_episodes"][i]),
            "rto_count": int(row["rto_count"][i]),
            "tlp_count": int(row["tlp_count"][i]),
            "max_cwnd_est": int(row["max_cwnd_est"][i]) or None,
            "time_limited_by": {name: int(ms[b]) / 1000 for b, name in enumerate(LIMITS[1:5])},
        }
    return out


#: The connection record's keys for the sender model (DESIGN.md "Connection record").
CONN_KEYS = ("cc_guess", "cc_confidence", "loss_episodes", "rto_count", "tlp_count",
             "max_cwnd_est", "time_limited_by")
#: The same as flat columns (``conns``): ``time_limited_by`` becomes one column per limit.
CONN_COLUMNS = tuple(k for k in CONN_KEYS if k != "time_limited_by") + tuple(
    f"time_limited_by_{name}" for name in LIMITS[1:5])


def data_sender_facts(row: np.void) -> dict[str, Any]:
    """`CONN_KEYS` of a connection row for its data sender: the side that sent more
    payload bytes (the client on a tie)."""
    side = "server" if int(row["bytes"][1]) > int(row["bytes"][0]) else "client"
    return conn_facts(row)[side]


def data_sender_columns(row: np.void) -> dict[str, Any]:
    """`CONN_COLUMNS` of a connection row: `data_sender_facts` with ``time_limited_by``
    flattened (seconds per limit)."""
    facts = data_sender_facts(row)
    limited = facts.pop("time_limited_by")
    facts.update({f"time_limited_by_{name}": v for name, v in limited.items()})
    return facts
