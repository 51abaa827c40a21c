"""Connection lifecycles: both endpoints' states after every packet, and what happened.

Sans-IO, fed the same batches as the engine (it reads only the dissected
records, the engine's annotations and the capture timestamps)::

    tracker = LifecycleTracker()
    for chunk in Pipeline([], Options(states=False)).read(path):   # tcpscope.pipeline
        out = tracker.feed(chunk.records, chunk.annotations, chunk.ts_ns)
        out.client, out.server   # np.uint8 State after each row (0 = UNKNOWN / not TCP)
        out.events               # {row index: ("handshake_complete", ...)}
    tracker.lifecycles()         # {stream: Lifecycle}

The states come from `states.ConnectionStates` (the transition table). Python
runs only for rows that can change a state: SYN, FIN and RST segments, ACKs
of unseen data (a missed FIN), and every row of a connection that is not in a
steady state (both ESTABLISHED; or FIN-WAIT-2 / CLOSE-WAIT once the half-close
is established). All other rows -- the bulk of any capture -- get their
connection's current states with numpy, and their counters are summed with
numpy too. A skipped row is still a segment to the machine, and the answers
must be the machine's on every row: what such a row would have done is applied
in bulk -- it confirms its sender's assumed receive (`_confirm_run`), and its
sequence numbers count in its sender's ``max_end``, brought up to date before
the machine reads it (`_refresh_max_end`). See docs/states.md.
"""
from __future__ import annotations

import bisect
import gc
from dataclasses import dataclass, field
from collections.abc import Callable, Collection
from typing import Any, NamedTuple

import numpy as np

from ..wire.record import OPTION, WARNING
from .annotation import ANN_KIND, FLAG, FLAG_NAMES
from .states import (
    ANY_SEGMENT, SYNCHRONIZED, Confidence, ConnectionStates, State, StateAnomaly, Transition,
)

__all__ = [
    "LifecycleTracker", "LifecycleBatch", "Lifecycle", "SideOptions", "LIFECYCLE_EVENTS",
    "HANDSHAKE_KINDS", "TEARDOWN_KINDS", "BACKOFF_VERDICTS", "backoff_verdict",
]

#: Names of the per-packet lifecycle events, in the order they are reported within a packet.
LIFECYCLE_EVENTS: tuple[str, ...] = (
    "handshake_started", "syn_retransmit", "synack_retransmit", "data_on_syn",
    "handshake_complete", "rejected", "teardown_started", "half_close", "fin_acked",
    "simultaneous_close", "time_wait_entered", "connection_reset", "connection_closed",
    "state_inferred", "state_anomaly",
)
HANDSHAKE_KINDS = ("3way", "3way+retries", "simultaneous", "rejected", "unanswered", "midstream")
TEARDOWN_KINDS = ("4way", "3way", "simultaneous", "half_close", "rst_client", "rst_server", "none")
BACKOFF_VERDICTS = ("single", "constant", "doubling", "constant_then_doubling", "irregular")

_FIN, _SYN, _RST, _ACK, _ECE, _CWR = 0x01, 0x02, 0x04, 0x10, 0x40, 0x80
_ACK_LOST = FLAG["ack_lost_segment"]
_CAPDUP = FLAG["capture_duplicate"]
_ANALYSED = ANN_KIND["analysed"]
_LEN_FROM_FRAME, _SNAP_CUT = WARNING["IP_LENGTH_EXCEEDS_FRAME"], WARNING["SNAPLEN_TRUNCATED"]
_MAX_WSCALE = 14  # RFC 7323 §2.3: a larger shift is used as 14
_OPT_MSS, _OPT_WSCALE, _OPT_SACK_PERM, _OPT_TS, _OPT_TFO = (
    OPTION["MSS"], OPTION["WSCALE"], OPTION["SACK_PERM"], OPTION["TIMESTAMP"], OPTION["TFO"])
_EST, _FW2, _CW, _CLOSED, _TW, _CLOSING, _SYN_SENT = (
    int(State.ESTABLISHED), int(State.FIN_WAIT_2), int(State.CLOSE_WAIT), int(State.CLOSED),
    int(State.TIME_WAIT), int(State.CLOSING), int(State.SYN_SENT))
_SYNC = frozenset(int(s) for s in SYNCHRONIZED)
_DONE = frozenset({_CLOSED, _TW})
_FIN_ACK_MISSED = "infer.fin_ack_not_captured"
_INFERRED = Confidence.INFERRED
# Steady modes: 0 = every row matters; 1 = both ESTABLISHED; 2 / 3 = half-closed with the
# client / server in FIN-WAIT-2 (then only its payload rows matter: data after its FIN).
_HOT, _STEADY, _STEADY_C_FW2, _STEADY_S_FW2 = 0, 1, 2, 3
# The rows a steady connection skips still confirm assumed receives (`Endpoint.confirm_ack`):
# they are applied in bulk (_confirm_run). What a side's row must carry to confirm one:
# nothing (ANY_SEGMENT, below every row's key), an ACK at least this high, or no row does
# (_NO_WATCH: no assumption).
_NO_WATCH = np.iinfo(np.int64).max
_NO_ACK = ANY_SEGMENT + 1   # the key of a row that acknowledges nothing (no ACK bit / not analysed)

# Columns of the per-row matrix handed to Python.
(_C_FRAME, _C_TS, _C_FS, _C_FL, _C_LEN, _C_SEQ, _C_ACK, _C_NEXT, _C_KIND, _C_AF, _C_IRTT,
 _C_RG, _C_ROW, _C_OPT, _C_MSS, _C_WS, _C_GAP) = range(17)
_NCOLS = 17


@dataclass
class LifecycleBatch:
    """What `LifecycleTracker.feed` returns for one batch (parallel to its rows)."""

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
            "transitions": [
                {"frame": t.frame, "ts": t.ts_ns / 1e9, "side": t.side, "old": t.old.name,
                 "new": t.new.name, "reason": t.reason, "sentence": t.sentence,
                 "confidence": t.confidence, "event": t.event}
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
    iv = [x for x in intervals]
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


class _Life:
    """Per-connection bookkeeping beside its ConnectionStates."""

    __slots__ = (
        "stream", "cs", "steady", "guessed", "client_id", "first_ts", "first_frame", "syn_ts",
        "server_syn_ts", "synack_ts", "opts", "ecn", "rejected", "rejected_by", "data_on_syn",
        "synack_acked_data", "handshake_done", "fins", "first_fin_side", "first_fin_by_fin",
        "fin_acked", "half_close", "closing", "rst_side", "rst_before_close", "closed_emitted",
        "irtt", "stale", "teardown_inferred",
    )

    def __init__(self, stream: int, cs: ConnectionStates, first_ts: int, first_frame: int) -> None:
        self.stream = stream
        self.cs = cs
        self.steady = _HOT
        self.guessed = False
        self.client_id: tuple[bytes, int] | None = None
        self.first_ts = first_ts
        self.first_frame = first_frame
        self.syn_ts: list[int] = []
        self.server_syn_ts: list[int] = []
        self.synack_ts: list[int] = []
        self.opts: list[SideOptions | None] = [None, None]
        self.ecn = 0
        self.rejected = False
        self.rejected_by: str | None = None
        self.data_on_syn = False
        self.synack_acked_data = False
        self.handshake_done = False
        self.fins = [False, False]
        self.first_fin_side = -1
        self.first_fin_by_fin: bool | None = None  # the first FIN's first ACK came on a FIN
        self.fin_acked = [False, False]
        self.half_close = False
        self.closing = False
        self.rst_side = -1
        self.rst_before_close = False
        self.closed_emitted = False
        self.irtt = -1
        self.stale = False  # rows skipped since its endpoints' max_end was last brought up to date
        self.teardown_inferred: str | None = None


def _grow(a: np.ndarray, n: int, fill: Any, dummy: Any) -> np.ndarray:
    """Room for streams 0..n-1 plus the last slot, which non-TCP rows (stream -1) index."""
    if a.shape[0] > n:
        return a
    cap = max(n + 1, 2 * a.shape[0], 1024)
    b = np.full((cap,) + a.shape[1:], fill, dtype=a.dtype)
    if a.shape[0]:
        b[: a.shape[0] - 1] = a[:-1]
    b[-1] = dummy
    return b


class LifecycleTracker:
    """Both endpoints' states and the lifecycle of every connection, batch by batch.

    Args:
        keep_transitions: keep every `Transition` and `StateAnomaly` for
            `lifecycles()` (the default); or only for the streams in a collection,
            or those a predicate ``f(stream) -> bool`` accepts, so that telling
            one connection of a big capture does not keep every connection's.
        summaries: count packets, bytes, times and analysis flags per connection
            for `lifecycles()` (the default). ``tcpscope packets`` turns both off:
            the per-row states and events need neither.
    """

    def __init__(self, *, keep_transitions: bool | Collection[int] | Callable[[int], bool] = True,
                 summaries: bool = True) -> None:
        self.keep_transitions = keep_transitions
        self.summaries = summaries
        self._lives: dict[int, _Life] = {}
        # Per stream, plus a last "dummy" slot: stream -1 (not TCP) indexes it.
        self._cs = np.zeros(1, np.uint8)         # current client state
        self._ss = np.zeros(1, np.uint8)
        self._steady = np.ones(1, np.int8)       # the dummy is steady: never Python
        # each way: the highest next_rel_seq of an analysed non-RST row (the machine's max_end)
        self._maxend = np.full((1, 2), -1, np.int64)
        # steady streams holding an assumed receive, and what confirms it, each way (_watch)
        self._watching = np.zeros(1, bool)
        self._confirm = np.full((1, 2), _NO_WATCH, np.int64)
        self._pkts = np.zeros((1, 2), np.int64)
        self._bytes = np.zeros((1, 2), np.int64)
        self._last_ts = np.zeros(1, np.int64)
        self._flag_counts = np.zeros((1, len(FLAG_NAMES)), np.int64)
        self._flips: list[tuple[int, int]] = []  # (stream, row) where roles swapped, this batch

    # ------------------------------------------------------------------

    def _reserve(self, n: int) -> None:
        if self._cs.shape[0] > n:
            return
        self._cs = _grow(self._cs, n, 0, 0)
        self._ss = _grow(self._ss, n, 0, 0)
        self._steady = _grow(self._steady, n, _HOT, _STEADY)
        self._maxend = _grow(self._maxend, n, -1, -1)
        self._watching = _grow(self._watching, n, False, False)
        self._confirm = _grow(self._confirm, n, _NO_WATCH, _NO_WATCH)
        self._pkts = _grow(self._pkts, n, 0, 0)
        self._bytes = _grow(self._bytes, n, 0, 0)
        self._last_ts = _grow(self._last_ts, n, np.iinfo(np.int64).min, 0)
        self._flag_counts = _grow(self._flag_counts, n, 0, 0)

    def feed(self, records: np.ndarray, annotations: np.ndarray,
             ts_ns: np.ndarray) -> LifecycleBatch:
        """The next batch, in capture order: the states after each row and the events it caused."""
        n = int(annotations.shape[0])
        events: dict[int, tuple[str, ...]] = {}
        if n == 0:
            return LifecycleBatch(np.zeros(0, np.uint8), np.zeros(0, np.uint8), events)
        s = annotations["stream"]
        self._reserve(int(s.max()) + 1)
        ts_all = np.asarray(ts_ns, dtype=np.int64)
        plen = _seglen(records)
        fl = records["tcp_flags"]
        af = annotations["flags"]
        tcp = s >= 0

        # Rows that may change a state or the machine's memory; connections that need Python
        # for this batch.
        cand = ((fl & (_FIN | _SYN | _RST)) != 0) & tcp
        if af.any():
            cand |= (af & _ACK_LOST) != 0
        fs_row = annotations["from_server"]
        steady = self._steady[s]
        half = steady >= _STEADY_C_FW2
        if half.any():
            # half-closed: payload from the FIN-WAIT-2 side is data after its FIN
            fw2_side = (steady == _STEADY_S_FW2).astype(np.uint8)
            cand |= half & (fs_row == fw2_side) & (plen > 0)
        if af.any():
            cand &= (af & _CAPDUP) == 0
        hot = cand | (steady == _HOT)
        watching = self._watching[s]
        if watching.any():
            # a row that confirms its sender's assumed receive: not a row for Python, but
            # its connection's walk applies it (_confirm_run)
            w = np.flatnonzero(watching)
            hot[w] |= _confirms(fl[w], af[w], annotations[w],
                                self._confirm.reshape(-1)[s[w] * 2 + fs_row[w]])
        need_stream = np.zeros(self._steady.shape[0], bool)
        need_stream[s[hot]] = True
        need_stream[-1] = False
        need = need_stream[s]

        # Everything else keeps its connection's current states (non-TCP rows: the dummy, 0).
        client = self._cs[s]
        server = self._ss[s]
        ni = np.flatnonzero(need)
        self._flips = []
        if ni.size:
            # The walk makes many small objects, none in a reference cycle; the cyclic
            # collector would only rescan every connection's objects again and again.
            paused = gc.isenabled()
            gc.disable()
            try:
                self._walk(records, annotations, ts_all, s, cand, ni, client, server, events, plen)
            finally:
                if paused:
                    gc.enable()

        fs = annotations["from_server"].astype(np.int64)
        for stream, row in self._flips:
            # Rows before the engine swapped the roles count for the other side.
            fs[:row][s[:row] == stream] ^= 1
        key = s * 2 + fs                       # stream -1 lands on the dummy slot
        # what on_segment counts in max_end: every analysed row but a RST's
        counted = (annotations["kind"] == _ANALYSED) & ((fl & _RST) == 0)
        if counted.any():
            np.maximum.at(self._maxend.reshape(-1), key[counted],
                          annotations["next_rel_seq"][counted])
        if self.summaries:
            width = 2 * self._pkts.shape[0]       # every key is below it (-1 -> the dummy slot)
            key_nn = np.where(tcp, key, key + width)
            self._pkts.reshape(-1)[:] += np.bincount(key_nn, minlength=width)
            # float weights are exact here: a batch's bytes stay far below 2**53
            self._bytes.reshape(-1)[:] += np.bincount(key_nn, weights=plen,
                                                      minlength=width).astype(np.int64)
            last = np.full(self._last_ts.shape[0], -1, np.int64)   # each stream's last row
            np.maximum.at(last, s, np.arange(n, dtype=np.int64))
            hit = np.flatnonzero(last >= 0)
            self._last_ts[hit] = ts_all[last[hit]]
            nz = np.flatnonzero(af)
            if nz.size:
                bits = (af[nz].astype(np.int64)[:, None] >> np.arange(len(FLAG_NAMES))) & 1
                r, c = np.nonzero(bits)
                width = len(FLAG_NAMES)
                np.add.at(self._flag_counts.reshape(-1), s[nz][r] * width + c, 1)
        return LifecycleBatch(client, server, events)

    def _walk(self, records, annotations, ts_all, s, cand, ni, client, server, events,
              plen) -> None:
        """Rows of connections that need Python, connection by connection, in capture order."""
        o = ni[np.argsort(s[ni], kind="stable")]
        m = np.empty((o.size, _NCOLS), np.int64)
        m[:, _C_FRAME] = annotations["frame"][o]
        m[:, _C_TS] = ts_all[o]
        m[:, _C_FS] = annotations["from_server"][o]
        m[:, _C_FL] = records["tcp_flags"][o]
        m[:, _C_LEN] = plen[o]
        m[:, _C_SEQ] = annotations["rel_seq"][o]
        m[:, _C_ACK] = annotations["rel_ack"][o]
        m[:, _C_NEXT] = annotations["next_rel_seq"][o]
        m[:, _C_KIND] = annotations["kind"][o]
        m[:, _C_AF] = annotations["flags"][o]
        m[:, _C_IRTT] = annotations["irtt_ns"][o]
        m[:, _C_RG] = annotations["role_guessed"][o]
        m[:, _C_ROW] = o
        m[:, _C_OPT] = records["opt_present"][o]
        m[:, _C_MSS] = records["mss"][o]
        m[:, _C_WS] = records["wscale"][o]
        m[:, _C_GAP] = annotations["ip_id_gap"][o]
        so = s[o]
        fs_o, len_o = m[:, _C_FS], m[:, _C_LEN]
        # for _confirm_run: each row's ACK key, and each side's rows (walk positions)
        real = (m[:, _C_AF] & _CAPDUP) == 0
        acks = real & ((m[:, _C_FL] & _ACK) != 0) & (m[:, _C_KIND] == _ANALYSED)
        key_o = np.where(acks, m[:, _C_ACK], _NO_ACK)
        by_side = (np.flatnonzero(real & (fs_o == 0)), np.flatnonzero(real & (fs_o == 1)))
        # what each row adds to its sender's max_end (-1: nothing), as on_segment counts it
        end_o = np.where((m[:, _C_KIND] == _ANALYSED) & ((m[:, _C_FL] & _RST) == 0),
                         m[:, _C_NEXT], -1)
        bounds = np.flatnonzero(so[1:] != so[:-1]) + 1
        starts = [0] + bounds.tolist()
        ends = bounds.tolist() + [int(o.size)]
        streams = so[starts].tolist()
        cpos = np.flatnonzero(cand[o]).tolist()   # candidate rows, in walk order
        lives = self._lives
        keep = self.keep_transitions
        if not isinstance(keep, bool) and not callable(keep):
            keep = frozenset(keep).__contains__
        row_fn = self._row
        out_rows: list[int] = []
        out_c: list[int] = []
        out_s: list[int] = []
        for a, b, stream in zip(starts, ends, streams):
            lc = lives.get(stream)
            if lc is None:
                first = m[a].tolist()
                keeps = keep if isinstance(keep, bool) else bool(keep(stream))
                lc = _Life(stream, ConnectionStates.for_first_segment(first[_C_FL], keep=keeps),
                           first[_C_TS], first[_C_FRAME])
                if first[_C_RG]:
                    lc.guessed = True
                    lc.client_id = self._identity(records, first[_C_ROW], first[_C_FS])
                lives[stream] = lc
            cs = lc.cs
            if lc.steady:
                lc.stale = True     # its rows in earlier batches were skipped
            swapped = a         # rows before this walk index name the roles the other way
            k = a
            while k < b:
                mode = lc.steady
                if mode:
                    p = bisect.bisect_left(cpos, k)
                    j = cpos[p] if p < len(cpos) and cpos[p] < b else b
                    if mode != _STEADY and j > k:
                        # half-closed: payload from the FIN-WAIT-2 side is data after its FIN
                        side = 0 if mode == _STEADY_C_FW2 else 1
                        hit = np.flatnonzero((fs_o[k:j] == side) & (len_o[k:j] > 0))
                        if hit.size:
                            j = k + int(hit[0])
                    if j > k:
                        r = o[k:j]
                        client[r] = cs.client.state
                        server[r] = cs.server.state
                        lc.stale = True
                        if cs.client.pending is not None or cs.server.pending is not None:
                            _confirm_run(cs, k, j, by_side, fs_o, key_o)
                        k = j
                        continue
                v = m[k].tolist()
                if not v[_C_AF] & _CAPDUP:   # a copy of a packet already seen changes nothing
                    if lc.stale and cs.reads_max_end(v[_C_FS], v[_C_FL], v[_C_KIND] == _ANALYSED,
                                                     bool(v[_C_AF] & _ACK_LOST), v[_C_GAP]):
                        fs_prev = fs_o[a:k]
                        if swapped > a:
                            fs_prev = fs_prev.copy()
                            fs_prev[: swapped - a] ^= 1
                        self._refresh_max_end(lc, stream, fs_prev, end_o[a:k])
                    if lc.guessed:
                        flips = len(self._flips)
                        ev = row_fn(lc, v, records)
                        if len(self._flips) != flips:
                            swapped = k     # the engine swapped the roles at this row
                    else:
                        ev = row_fn(lc, v, records)
                    if ev:
                        events[v[_C_ROW]] = ev
                    cs = lc.cs
                out_rows.append(v[_C_ROW])
                out_c.append(cs.client.state)
                out_s.append(cs.server.state)
                k += 1
            self._cs[stream] = cs.client.state
            self._ss[stream] = cs.server.state
            self._steady[stream] = lc.steady
            wc, ws = _watch(cs.client), _watch(cs.server)
            self._watching[stream] = bool(lc.steady) and (wc != _NO_WATCH or ws != _NO_WATCH)
            self._confirm[stream] = (wc, ws)
        if out_rows:
            client[out_rows] = out_c
            server[out_rows] = out_s

    def _refresh_max_end(self, lc: _Life, stream: int, fs_prev: np.ndarray,
                         end_prev: np.ndarray) -> None:
        """Both endpoints' highest sequence numbers so far, rows skipped by numpy included:
        earlier batches' (`_maxend`) and this batch's rows before the current one."""
        for ep in (lc.cs.client, lc.cs.server):
            best = int(self._maxend[stream, ep.index])
            if end_prev.size:
                mine = end_prev[fs_prev == ep.index]
                if mine.size:
                    best = max(best, int(mine.max()))
            if best > ep.max_end:
                ep.max_end = best
        lc.stale = False

    @staticmethod
    def _identity(records: np.ndarray, row: int, from_server: int) -> tuple[bytes, int]:
        """(address, port) of the client, as the row's direction says."""
        r = records[row]
        if from_server:
            return bytes(r["dst"]), int(r["dport"])
        return bytes(r["src"]), int(r["sport"])

    def _check_roles(self, lc: _Life, v: list[int], records: np.ndarray) -> None:
        """The engine fixes guessed roles when a handshake appears: follow it."""
        lc.guessed = False
        ident = self._identity(records, v[_C_ROW], v[_C_FS])
        if lc.client_id is not None and ident != lc.client_id:
            lc.cs.swap_roles()
            st = lc.stream
            for arr in (self._pkts, self._bytes, self._maxend):
                arr[st] = arr[st][::-1].copy()
            self._flips.append((st, v[_C_ROW]))
        lc.client_id = None

    # ------------------------------------------------------------------
    # One row that may change something
    # ------------------------------------------------------------------

    def _row(self, lc: _Life, v: list[int], records: np.ndarray) -> tuple[str, ...] | None:
        frame, ts, fs, fl, plen, rseq, rack, nxt, kind, af, irtt, rg, row, opt, mss, ws, gap = v
        if lc.guessed and not rg:
            self._check_roles(lc, v, records)
        cs = lc.cs
        analysed = kind == _ANALYSED
        if fs:
            xe, ye = cs.server, cs.client
        else:
            xe, ye = cs.client, cs.server
        ev: list[str] = []
        control = fl & 7
        rejected = False
        if control:
            if fl & _RST:
                # A RST that answers a SYN from a side that never answered otherwise.
                rejected = ye.state == _SYN_SENT and not xe.sent_synack
            elif fl & _SYN:
                self._on_syn(lc, v, analysed, ev)
        x_before = xe.state
        cs.on_segment(frame, ts, fs, fl, plen, rseq, rack, nxt, analysed, bool(af & _ACK_LOST),
                      gap)
        changes = cs.changes
        if lc.irtt < 0 and irtt >= 0:
            lc.irtt = irtt
        if not (changes or control or ye.fin_next is not None or cs.anomaly_count):
            return tuple(ev) if ev else None    # nothing that could make an event

        yi = 1 - fs
        if control & _RST:
            if rejected:
                ev.append("rejected")
                lc.rejected = True
                lc.rejected_by = xe.side
            elif changes:
                ev.append("connection_reset")
            if changes and lc.rst_side < 0:
                lc.rst_side = xe.index
                lc.rst_before_close = not (lc.fin_acked[0] and lc.fin_acked[1])
        inferred = False
        fin_ack_missed = False
        for side, old, new, conf, reason in changes:
            if conf == _INFERRED:
                inferred = True
                if reason == "infer.fin_not_captured" and side == yi:
                    self._saw_fin(lc, yi, ev)
                elif reason == _FIN_ACK_MISSED:
                    fin_ack_missed = True
            if new == _CLOSING:
                if not lc.closing:
                    lc.closing = True
                    ev.append("simultaneous_close")
            elif new == _TW:
                ev.append("time_wait_entered")
        if control & _FIN and not control & _RST:
            self._saw_fin(lc, fs, ev)
        if fl & _ACK and analysed and not control & (_RST | _SYN) and ye.fin_next is not None \
                and rack >= ye.fin_next:
            if not lc.fin_acked[yi]:
                lc.fin_acked[yi] = True
                ev.append("fin_acked")
                if yi == lc.first_fin_side and lc.first_fin_by_fin is None:
                    # a FIN/ACK merged, unless its first ACK came in a packet the capture missed
                    lc.first_fin_by_fin = bool(fl & _FIN) and not fin_ack_missed
                    if fin_ack_missed and fl & _FIN:
                        lc.teardown_inferred = _FIN_ACK_MISSED   # "4way" rests on it
            if plen and not lc.half_close and x_before == _CW:
                lc.half_close = True
                ev.append("half_close")
        c, s_ = cs.client.state, cs.server.state
        if not lc.handshake_done and (lc.syn_ts or lc.server_syn_ts) and c in _SYNC and s_ in _SYNC:
            lc.handshake_done = True
            ev.append("handshake_complete")
        if changes and not lc.closed_emitted and c in _DONE and s_ in _DONE:
            lc.closed_emitted = True
            ev.append("connection_closed")
        if inferred:
            ev.append("state_inferred")
        if cs.anomaly_count:
            ev.append("state_anomaly")

        # Steady: an ordinary row (no SYN, FIN, RST, no ACK of unseen data) changes no state
        # and records no anomaly. Not so while a side in ESTABLISHED or CLOSE-WAIT has sent a
        # FIN (only an anomaly lets it): the peer's ACK of it is an anomaly there.
        cf, sf = cs.client.fin_next is None, cs.server.fin_next is None
        if c == _EST and s_ == _EST and cf and sf:
            lc.steady = _STEADY
        elif lc.half_close and c == _FW2 and s_ == _CW and sf:
            lc.steady = _STEADY_C_FW2
        elif lc.half_close and c == _CW and s_ == _FW2 and cf:
            lc.steady = _STEADY_S_FW2
        else:
            lc.steady = _HOT
        if not ev:
            return None
        if len(ev) > 1:
            ev.sort(key=_EVENT_ORDER.__getitem__)
        return tuple(ev)

    @staticmethod
    def _on_syn(lc: _Life, v: list[int], analysed: bool, ev: list[str]) -> None:
        """Handshake bookkeeping of a SYN or SYN-ACK row."""
        ts, fs, fl, plen, rack = v[_C_TS], v[_C_FS], v[_C_FL], v[_C_LEN], v[_C_ACK]
        if fl & _ACK:
            if fs:
                lc.synack_ts.append(ts)
                if len(lc.synack_ts) > 1:
                    ev.append("synack_retransmit")
                if analysed and rack > 1:
                    lc.synack_acked_data = True
        else:
            times = lc.server_syn_ts if fs else lc.syn_ts
            times.append(ts)
            if len(times) > 1:
                ev.append("syn_retransmit")
            elif len(lc.syn_ts) + len(lc.server_syn_ts) == 1:
                ev.append("handshake_started")
            if plen:
                if not lc.data_on_syn:
                    ev.append("data_on_syn")
                lc.data_on_syn = True
        if lc.opts[fs] is None:
            lc.opts[fs] = _options(v[_C_OPT], v[_C_MSS], v[_C_WS], fl)

    @staticmethod
    def _saw_fin(lc: _Life, side: int, ev: list[str]) -> None:
        if lc.fins[side]:
            return
        lc.fins[side] = True
        if lc.first_fin_side < 0:
            lc.first_fin_side = side
            ev.append("teardown_started")

    # ------------------------------------------------------------------
    # Summaries
    # ------------------------------------------------------------------

    def lifecycles(self) -> dict[int, Lifecycle]:
        """One `Lifecycle` per stream seen so far (at any time; later batches update them)."""
        if not self.summaries:
            raise ValueError("LifecycleTracker(summaries=False) keeps no per-connection counts; "
                             "lifecycles() needs summaries=True")
        return {st: self._lifecycle(lc) for st, lc in sorted(self._lives.items())}

    def _lifecycle(self, lc: _Life) -> Lifecycle:
        st = lc.stream
        cs = lc.cs
        syn_iv = _intervals(lc.syn_ts)
        synack_iv = _intervals(lc.synack_ts)
        copt = lc.opts[0] or SideOptions()
        sopt = lc.opts[1] or SideOptions()
        both = lc.opts[0] is not None and lc.opts[1] is not None
        negotiated = {
            "mss": (copt.mss, sopt.mss),
            "wscale": (copt.wscale, sopt.wscale) if both and copt.wscale is not None
            and sopt.wscale is not None else None,
            "sack": both and copt.sack_permitted and sopt.sack_permitted,
            "timestamps": both and copt.timestamps and sopt.timestamps,
            "ecn": both and copt.ecn and sopt.ecn,
            "tfo": (copt.tfo and sopt.tfo) or (lc.data_on_syn and lc.synack_acked_data),
        }
        c_final, s_final = State(cs.client.state), State(cs.server.state)
        tw = [c_final == State.TIME_WAIT, s_final == State.TIME_WAIT]
        first = lc.first_ts
        last = int(self._last_ts[st])
        counts = self._flag_counts[st]
        return Lifecycle(
            stream=st,
            handshake=self._handshake_kind(lc),
            handshake_complete=lc.handshake_done,
            syn_retries=max(len(lc.syn_ts) - 1, 0),
            syn_intervals=syn_iv,
            syn_backoff=backoff_verdict(syn_iv),
            synack_retries=max(len(lc.synack_ts) - 1, 0),
            synack_intervals=synack_iv,
            synack_backoff=backoff_verdict(synack_iv),
            data_on_syn=lc.data_on_syn,
            client_options=copt,
            server_options=sopt,
            negotiated=negotiated,
            teardown=self._teardown_kind(lc),
            teardown_complete=(lc.rst_side >= 0) or (lc.fin_acked[0] and lc.fin_acked[1]),
            time_wait_side=("both" if all(tw) else "client" if tw[0]
                            else "server" if tw[1] else None),
            client_final=c_final,
            server_final=s_final,
            first_ts=first / 1e9,
            last_ts=last / 1e9,
            duration=(last - first) / 1e9,
            packets=(int(self._pkts[st, 0]), int(self._pkts[st, 1])),
            bytes=(int(self._bytes[st, 0]), int(self._bytes[st, 1])),
            handshake_rtt=lc.irtt / 1e9 if lc.irtt >= 0 and lc.handshake_done else None,
            anomalies={FLAG_NAMES[b]: int(c) for b, c in enumerate(counts) if c},
            role_guessed=lc.guessed,
            transitions=list(cs.transitions),
            state_anomalies=list(cs.anomalies),
            first_frame=lc.first_frame,
            rejected_by=lc.rejected_by,
            teardown_inferred=lc.teardown_inferred if lc.teardown_inferred
            and self._teardown_kind(lc) == "4way" else None,
        )

    @staticmethod
    def _handshake_kind(lc: _Life) -> str:
        if not lc.syn_ts:
            return "midstream"
        if lc.server_syn_ts:
            return "simultaneous"
        if not lc.synack_ts:
            return "rejected" if lc.rejected else "unanswered"
        if len(lc.syn_ts) > 1 or len(lc.synack_ts) > 1:
            return "3way+retries"
        return "3way"

    @staticmethod
    def _teardown_kind(lc: _Life) -> str:
        if lc.rst_side >= 0 and lc.rst_before_close:
            return "rst_server" if lc.rst_side else "rst_client"
        if lc.first_fin_side < 0:
            return {1: "rst_server", 0: "rst_client"}.get(lc.rst_side, "none")
        if lc.closing:
            return "simultaneous"
        if lc.half_close or not (lc.fins[0] and lc.fins[1]):
            return "half_close"
        if lc.first_fin_by_fin:
            return "3way"
        return "4way"


_EVENT_ORDER = {name: i for i, name in enumerate(LIFECYCLE_EVENTS)}


def _watch(ep) -> int:
    """The lowest row key from this endpoint that confirms its assumed receive:
    `ANY_SEGMENT` (its next segment does), an ACK value, or `_NO_WATCH`."""
    c = ep.confirm_ack
    return _NO_WATCH if c is None else c


def _confirms(fl: np.ndarray, af: np.ndarray, ann: np.ndarray,
              watch: np.ndarray) -> np.ndarray:
    """Rows that confirm their sender's assumed receive: an ACK at least its `_watch`, or any
    row if that is ANY_SEGMENT (a capture duplicate is not a segment of its own)."""
    acks = ((fl & _ACK) != 0) & (ann["kind"] == _ANALYSED)
    key = np.where(acks, ann["rel_ack"], _NO_ACK)
    return (key >= watch) & ((af & _CAPDUP) == 0)


def _confirm_run(cs: ConnectionStates, k: int, j: int, by_side: tuple[np.ndarray, np.ndarray],
                 fs_o: np.ndarray, key_o: np.ndarray) -> None:
    """Walk positions k..j-1 of a steady connection were skipped: a row among them that
    confirms its sender's assumed receive does so, as `on_segment` would have (in a steady
    state that is all an ordinary row does besides max_end, which is brought up to date
    when it is read, and `sent_any`, which is read only in SYN-RECEIVED: a state a side
    reaches again only by a segment of its own)."""
    for ep in (cs.client, cs.server):
        w = ep.confirm_ack
        if w is None:
            continue
        if w == ANY_SEGMENT:       # any row of its
            pos = by_side[ep.index]
            p = int(pos.searchsorted(k))
            hit = p < pos.size and pos[p] < j
        else:                      # an ACK at least w
            hit = bool(((fs_o[k:j] == ep.index) & (key_o[k:j] >= w)).any())
        if hit:
            ep.confirm()


def _options(present: int, mss: int, wscale: int, fl: int) -> SideOptions:
    """A SYN's (or SYN-ACK's) offer, from its record's option summary."""
    synack = bool(fl & _ACK)
    return SideOptions(
        mss=mss if present & _OPT_MSS else None,
        wscale=min(wscale, _MAX_WSCALE) if present & _OPT_WSCALE else None,
        sack_permitted=bool(present & _OPT_SACK_PERM),
        timestamps=bool(present & _OPT_TS),
        tfo=bool(present & _OPT_TFO),
        ecn=bool(fl & _ECE) and (not (fl & _CWR) if synack else bool(fl & _CWR)),
    )


def _seglen(records: np.ndarray) -> np.ndarray:
    """Each row's TCP payload length, as the engine counts it: the IP length's, except when
    the IP length claims more than the frame holds (not by the snap length), where the
    segment ends with the frame, as in Wireshark."""
    plen = records["payload_len"]
    warn = records["warnings"]
    odd = (warn & _LEN_FROM_FRAME) != 0
    if not odd.any():
        return plen
    odd &= (warn & _SNAP_CUT) == 0
    return np.where(odd, records["payload_cap"], plen)


def _intervals(times: list[int]) -> tuple[float, ...]:
    return tuple((b - a) / 1e9 for a, b in zip(times, times[1:]))
