"""What the lifecycle layer tells: per-row states and events, and one `Lifecycle` per connection."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np

from ..states import State, StateAnomaly, Transition

__all__ = [
    "LifecycleBatch", "Lifecycle", "SideOptions", "LIFECYCLE_EVENTS", "HANDSHAKE_KINDS",
    "TEARDOWN_KINDS", "BACKOFF_VERDICTS", "backoff_verdict",
]

#: Names of the per-packet lifecycle events, in the order they are reported within a packet.
LIFECYCLE_EVENTS: tuple[str, ...] = (
    "handshake_started", "syn_retransmit", "synack_retransmit", "data_on_syn",
    "handshake_complete", "rejected", "teardown_started", "half_close", "fin_acked",
    "simultaneous_close", "time_wait_entered", "connection_reset", "connection_closed",
    "state_revised", "state_inferred", "state_anomaly",
)
HANDSHAKE_KINDS = ("3way", "3way+retries", "simultaneous", "rejected", "unanswered", "half_open",
                   "midstream")
TEARDOWN_KINDS = ("4way", "3way", "simultaneous", "half_close", "rst_client", "rst_server", "none")
BACKOFF_VERDICTS = ("single", "constant", "doubling", "constant_then_doubling", "irregular")


@dataclass
class LifecycleBatch:
    """What a tracker's ``feed`` returns for one batch (parallel to its rows)."""

    client: np.ndarray  #: np.uint8: the client's State after each row (0 = UNKNOWN / not TCP)
    server: np.ndarray  #: np.uint8: the server's State after each row
    events: dict[int, tuple[str, ...]]  #: row index -> lifecycle events that row caused


class SideOptions(NamedTuple):
    """What one side offered on its SYN (or SYN-ACK)."""

    mss: int | None = None
    wscale: int | None = None   #: the shift, capped at 14 as RFC 7323 §2.3 says
    sack_permitted: bool = False
    timestamps: bool = False
    tfo: bool = False           #: carried a TCP Fast Open option (cookie or cookie request)
    ecn: bool = False           #: SYN with ECE+CWR, or SYN-ACK with ECE (RFC 3168 §6.1.1)

    def as_dict(self) -> dict[str, Any]:
        return dict(self._asdict())


#: (client's, server's)
Pair = tuple[Any, Any]


@dataclass
class Lifecycle:
    """One connection's story: handshake, teardown, final states, and every transition."""

    stream: int
    handshake: str                  #: one of HANDSHAKE_KINDS
    handshake_complete: bool        #: both endpoints reached a synchronized state after a SYN
    syn_retries: int                #: the client's SYN sent again (same ISN)
    syn_intervals: tuple[float, ...]  #: seconds between consecutive SYNs
    syn_backoff: str | None         #: one of BACKOFF_VERDICTS, None without retries
    synack_retries: int
    synack_intervals: tuple[float, ...]
    synack_backoff: str | None
    data_on_syn: bool               #: the SYN carried data (TCP Fast Open)
    client_options: SideOptions
    server_options: SideOptions
    negotiated: dict[str, Any]      #: mss, wscale (pair), sack, timestamps, ecn, tfo
    teardown: str                   #: one of TEARDOWN_KINDS
    teardown_complete: bool         #: both FINs acknowledged, or a RST
    time_wait_side: str | None      #: "client", "server", "both" or None (final states)
    client_final: State
    server_final: State
    first_ts: float
    last_ts: float
    duration: float                 #: seconds, last - first packet
    packets: tuple[int, int]        #: (client -> server, server -> client)
    bytes: tuple[int, int]          #: payload bytes each way
    handshake_rtt: float | None     #: the engine's iRTT (SYN -> the handshake's ACK), seconds;
    #: None unless the handshake completed (a refusal's SYN -> RST time is not a handshake)
    anomalies: dict[str, int]       #: engine flags -> frames carrying them (non-zero only)
    role_guessed: bool              #: no SYN / SYN-ACK: the client is a guess
    transitions: list[Transition] = field(default_factory=list)
    state_anomalies: list[StateAnomaly] = field(default_factory=list)
    first_frame: int = 0
    rejected_by: str | None = None  #: the side whose RST refused the SYN
    #: the reason id when the teardown kind rests on an inference, else None:
    #: "infer.fin_ack_not_captured" = the first FIN's ACK is a packet the capture missed
    #: (the peer's IPv4 IDs skip one before its FIN), so "4way" although the capture shows
    #: its FIN as the first ACK
    teardown_inferred: str | None = None
    #: the frames of each side's SYNs (without ACK) and SYN-ACKs: (client's, server's)
    syn_frames: Pair = ((), ())
    synack_frames: Pair = ((), ())
    #: the frame of each side's first FIN, as captured (None: it sent none)
    fin_frames: Pair = (None, None)
    handshake_frame: int | None = None  #: the frame that completed the handshake
    #: the side whose FIN (or, for a reset, whose RST) began the teardown, if any
    closer: str | None = None
    rst_frame: int | None = None    #: the first RST that changed a state
    #: the listener answered the SYN with a SYN cookie: its SYN-ACK was never sent again
    #: while the same listener resent those of the requests it queued (it kept no state)
    syn_cookie: bool = False
    #: the side that held this 4-tuple in TIME-WAIT when the SYN reused it (RFC 6191), and
    #: the stream it held it for; it starts this connection in TIME-WAIT
    time_wait_reused: str | None = None
    reused_from: int | None = None
    #: each side's state before the first packet, as the whole capture shows it
    initial: Pair = (State.UNKNOWN, State.UNKNOWN)
    #: rows whose states the whole capture corrects (the per-row states a stream showed
    #: before the evidence came): (side index, first frame, frame it ends before or -1 for
    #: the end of the capture, state)
    corrections: list[tuple[int, int, int, int]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        """Plain values (state names as text), for JSON."""
        return {
            "stream": self.stream, "handshake": self.handshake,
            "handshake_complete": self.handshake_complete,
            "syn_retries": self.syn_retries, "syn_intervals": list(self.syn_intervals),
            "syn_backoff": self.syn_backoff, "synack_retries": self.synack_retries,
            "synack_intervals": list(self.synack_intervals), "synack_backoff": self.synack_backoff,
            "data_on_syn": self.data_on_syn,
            "client_options": self.client_options.as_dict(),
            "server_options": self.server_options.as_dict(),
            "negotiated": dict(self.negotiated), "teardown": self.teardown,
            "teardown_complete": self.teardown_complete,
            "teardown_inferred": self.teardown_inferred, "time_wait_side": self.time_wait_side,
            "client_final": self.client_final.name, "server_final": self.server_final.name,
            "first_ts": self.first_ts, "last_ts": self.last_ts, "duration": self.duration,
            "packets": list(self.packets), "bytes": list(self.bytes),
            "handshake_rtt": self.handshake_rtt, "anomalies": dict(self.anomalies),
            "role_guessed": self.role_guessed,
            "syn_frames": [list(f) for f in self.syn_frames],
            "synack_frames": [list(f) for f in self.synack_frames],
            "fin_frames": list(self.fin_frames), "handshake_frame": self.handshake_frame,
            "closer": self.closer, "rst_frame": self.rst_frame,
            "initial": [s.name for s in self.initial], "syn_cookie": self.syn_cookie,
            "time_wait_reused": self.time_wait_reused, "reused_from": self.reused_from,
            "transitions": [
                {"frame": t.frame, "ts": t.ts_ns / 1e9, "side": t.side, "old": t.old.name,
                 "new": t.new.name, "reason": t.reason, "sentence": t.sentence,
                 "confidence": t.confidence, "event": t.event, "revised": t.revised}
                for t in self.transitions],
            "state_anomalies": [
                {"frame": a.frame, "side": a.side, "state": a.state.name, "event": a.event,
                 "anomaly": a.anomaly} for a in self.state_anomalies],
        }


def backoff_verdict(intervals: tuple[float, ...] | list[float]) -> str | None:
    """What a series of retransmission intervals shows.

    ``doubling`` (RFC 6298 §5.5, each ~2x the last), ``constant`` (each ~ the
    last: Linux >= 6.5 keeps the SYN RTO at 1 s for its first
    ``tcp_syn_linear_timeouts`` = 4 retries), ``constant_then_doubling``
    (both, in that order: Linux's full SYN series), ``irregular``, or
    ``single`` (one interval: nothing to compare). None without retries.
    """
    iv = list(intervals)
    if not iv:
        return None
    if len(iv) == 1:
        return "single"
    ratios = [b / a if a > 0 else float("inf") for a, b in zip(iv, iv[1:])]

    def const(r: float) -> bool:
        return 0.75 <= r <= 1.34

    def dbl(r: float) -> bool:
        return 1.5 <= r <= 2.67

    if all(const(r) for r in ratios):
        return "constant"
    if all(dbl(r) for r in ratios):
        return "doubling"
    k = 0
    while k < len(ratios) and const(ratios[k]):
        k += 1
    if 0 < k < len(ratios) and all(dbl(r) for r in ratios[k:]):
        return "constant_then_doubling"
    return "irregular"
