"""Connection attempts: what each stream's opening shows, from the packets alone.

One row per TCP stream (the engine's ``stream``), holding the facts a handshake
leaves on the wire: the client's SYNs (times, ISN, options), the server's
SYN-ACKs (how many, how many the engine calls retransmissions, options, TSval),
the first frame of the client's ACK of the SYN-ACK, of each side's RST, data and
FIN, an ICMP unreachable quoting the SYN. From those, `outcomes` says what the
attempt was, without assuming anything a later packet could contradict:

- *answered*: a SYN-ACK came back;
- *completed*: the client acknowledged that SYN-ACK (an ACK, not a SYN or RST,
  acknowledging the server's ISN + 1 or more, after the SYN-ACK) — only this makes
  the connection open; a SYN-ACK alone leaves a half-open request;
- *half-open*: answered, never completed; the listener *kept state* for it when
  its SYN-ACK was retransmitted (a request socket's timer), and kept none when it
  was never retransmitted although the capture went on past Linux's first SYN-ACK
  retransmission (1 s, RFC 6298 §2.1): a stateless answer, a SYN cookie;
- *refused*: an RST from the responder before any SYN-ACK; *unreachable*: an
  ICMP destination unreachable quoting the SYN; *unanswered*: SYNs and nothing;
- probes: a stream whose first packet is a lone FIN, no flags (NULL), FIN+PSH+URG
  (Xmas) or a bare ACK, answered with an RST or not at all.

The table is a ring of `capacity` rows indexed by ``stream % capacity``: a
stream keeps its row until a stream ``capacity`` newer takes the slot, or the
input ends; then the row is *retired* and handed to the detectors. Memory is
``capacity * ATTEMPT_DTYPE.itemsize`` whatever the capture holds (the default,
65,536 rows of 264 bytes, is 16.5 MiB). A stream still sending when its slot is
taken is no longer followed (`untracked_rows` counts its later packets).
"""
from __future__ import annotations

import struct
from dataclasses import dataclass, field
from enum import IntEnum

import numpy as np

from ...wire.record import ACK, CWR, ECE, FIN, KIND, OPTION, PSH, RST, SYN, URG
from ..annotation import FLAG
from .keys import host_keys, mix

__all__ = [
    "ATTEMPT_DTYPE", "First", "Outcome", "AttemptTable", "outcomes", "TIME_WAIT_NS",
    "SYNACK_RTO_NS", "syn_intervals",
]

#: Linux's TIME_WAIT length, TCP_TIMEWAIT_LEN (include/net/tcp.h): 60 s.
TIME_WAIT_NS = 60 * 10**9
#: A SYN-ACK not repeated this long after it was sent was not going to be: Linux's first
#: SYN-ACK retransmission comes after TCP_TIMEOUT_INIT = 1 s (RFC 6298 §2.1), plus 1 s slack.
SYNACK_RTO_NS = 2 * 10**9
#: SYN times kept per attempt (the first, then this many more as offsets).
MAX_SYN_TIMES = 8

# Option bits of syn_opt / synack_opt.
O_SACK, O_WS, O_TS, O_ECN = 1, 2, 4, 8

ATTEMPT_DTYPE = np.dtype([
    ("sid", np.int64), ("tuple", np.uint64), ("ckey", np.uint64), ("skey", np.uint64),
    ("caddr", np.uint8, 16), ("saddr", np.uint8, 16),
    ("first_ts", np.int64), ("first_frame", np.int64),
    ("syn_ts", np.int64), ("syn_frame", np.int64), ("synack_ts", np.int64),
    ("synack_frame", np.int64), ("done_frame", np.int64), ("crst_frame", np.int64),
    ("srst_frame", np.int64), ("cdata_frame", np.int64), ("sdata_frame", np.int64),
    ("cfin_frame", np.int64), ("sfin_frame", np.int64), ("cfin_ts", np.int64),
    ("sfin_ts", np.int64), ("icmp_frame", np.int64),
    ("syn_dt_ms", np.uint32, MAX_SYN_TIMES - 1),
    ("cpkts", np.uint32), ("spkts", np.uint32),
    ("syn_isn", np.uint32), ("synack_isn", np.uint32), ("synack_tsval", np.uint32),
    ("reuse_gap_ms", np.int32),
    ("cport", np.uint16), ("sport", np.uint16), ("syn_n", np.uint16), ("synack_n", np.uint16),
    ("synack_retx", np.uint16), ("syn_mss", np.uint16),
    ("ver", np.uint8), ("first", np.uint8), ("syn_opt", np.uint8), ("syn_ws", np.uint8),
    ("synack_opt", np.uint8), ("icmp_code", np.uint8),
    ("reuse_holder", np.uint8),   # 0 none; 1 the client, 2 the server was in TIME_WAIT
    ("rst_counted", np.uint8),
])


class First(IntEnum):
    """What the stream's first packet was."""

    SYN = 1      #: a SYN (a connection attempt)
    SYNACK = 2   #: a SYN-ACK (the capture missed the SYN)
    FIN = 3      #: a lone FIN: FIN-scan probe
    NULL = 4     #: no flag at all: NULL-scan probe
    XMAS = 5     #: FIN+PSH+URG: Xmas-scan probe
    ACK = 6      #: a bare ACK without payload: ACK-scan probe, or a capture started mid-stream
    OTHER = 7    #: anything else (mid-stream)


class Outcome(IntEnum):
    """What an attempt came to (`outcomes`)."""

    UNANSWERED = 1       #: SYNs, nothing back
    REFUSED = 2          #: an RST from the responder before any SYN-ACK
    UNREACHABLE = 3      #: an ICMP destination unreachable quoting the SYN
    HALF_OPEN = 4        #: a SYN-ACK the client never acknowledged, nor reset
    RESET_HALF_OPEN = 5  #: a SYN-ACK the client answered with an RST (a SYN scan's mark)
    COMPLETED = 6        #: the client acknowledged the SYN-ACK: the connection opened
    PROBE_RST = 7        #: a FIN / NULL / Xmas / ACK probe answered with an RST
    PROBE_SILENT = 8     #: ... not answered
    PROBE_UNREACHABLE = 9  #: ... answered with an ICMP unreachable
    MIDSTREAM = 10       #: no SYN and not a probe: the capture began inside the connection


_PROBES = {First.FIN, First.NULL, First.XMAS, First.ACK}
_RETX = FLAG["retransmission"] | FLAG["fast_retransmission"] | FLAG["spurious_retransmission"]
_CAPDUP = FLAG["capture_duplicate"]
_REUSED = FLAG["reused_ports"]
_OPT_SACK, _OPT_WS, _OPT_TS = OPTION["SACK_PERM"], OPTION["WSCALE"], OPTION["TIMESTAMP"]
_ICMP, _ICMP6 = KIND["ICMP"], KIND["ICMP6"]


def _first_kind(flags: np.ndarray, plen: np.ndarray, from_server: np.ndarray) -> np.ndarray:
    f = flags & 0x1FF
    out = np.full(len(f), First.OTHER, dtype=np.uint8)
    out[(f & (SYN | ACK | RST)) == SYN] = First.SYN
    out[(f & (SYN | ACK | RST)) == (SYN | ACK)] = First.SYNACK
    client = from_server == 0
    out[client & (f == FIN)] = First.FIN
    out[client & (f == 0)] = First.NULL
    out[client & (f == (FIN | PSH | URG))] = First.XMAS
    out[client & (f == ACK) & (plen == 0)] = First.ACK
    return out


def _opts(opt_present: np.ndarray, flags: np.ndarray, ecn_bits: int) -> np.ndarray:
    o = np.zeros(len(opt_present), dtype=np.uint8)
    o[(opt_present & _OPT_SACK) != 0] |= O_SACK
    o[(opt_present & _OPT_WS) != 0] |= O_WS
    o[(opt_present & _OPT_TS) != 0] |= O_TS
    o[(flags & ecn_bits) == ecn_bits] |= O_ECN
    return o


def _set_first(col: np.ndarray, slots: np.ndarray, values: np.ndarray) -> None:
    """col[slot] = the first value of each slot (rows in capture order) where still 0."""
    if not len(slots):
        return
    u, first = np.unique(slots, return_index=True)
    empty = col[u] == 0
    col[u[empty]] = values[first[empty]]


def _count(col: np.ndarray, slots: np.ndarray) -> None:
    """col[slot] += the number of times each slot appears (saturating at the dtype's max)."""
    if not len(slots):
        return
    u, n = np.unique(slots, return_counts=True)
    top = np.iinfo(col.dtype).max
    col[u] = np.minimum(col[u].astype(np.int64) + n, top)


def _rank(slots: np.ndarray) -> np.ndarray:
    """Each row's position among the rows of its slot (0 for the first), in row order."""
    order = np.argsort(slots, kind="stable")
    s = slots[order]
    start = np.r_[0, np.flatnonzero(s[1:] != s[:-1]) + 1]
    lengths = np.diff(np.r_[start, len(s)])
    r = np.arange(len(s)) - np.repeat(start, lengths)
    out = np.empty(len(s), dtype=np.int64)
    out[order] = r
    return out


@dataclass
class IsnEvents:
    """Initial sequence numbers as they appear: the first SYN or SYN-ACK of each stream."""

    host: np.ndarray      #: uint64 key of the host that chose the ISN
    tuple: np.ndarray     #: uint64 key of the 4-tuple
    ts: np.ndarray        #: int64 ns
    isn: np.ndarray       #: uint32
    frame: np.ndarray     #: int64
    addr: np.ndarray      #: (n, 16) uint8
    ver: np.ndarray       #: uint8


@dataclass
class Feed:
    """What one chunk produced: attempts retired to make room, and ISNs seen."""

    retired: np.ndarray   #: ATTEMPT_DTYPE rows
    isn: IsnEvents
    rows: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))  #: chunk rows tracked
    slots: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))  #: their slots


class AttemptTable:
    """The ring of attempts. `feed` a pipeline chunk; `drain` at the end."""

    def __init__(self, capacity: int = 1 << 16) -> None:
        self.capacity = capacity
        self.ring = np.zeros(capacity, dtype=ATTEMPT_DTYPE)
        self.ring["sid"] = -1
        self.untracked_rows = 0
        self.now_ns = 0
        self.first_ns: int | None = None

    @property
    def nbytes(self) -> int:
        return int(self.ring.nbytes)

    def feed(self, chunk) -> Feed:
        rec, ann = chunk.records, chunk.annotations
        ts_all = chunk.ts_ns
        if len(ts_all):
            self.now_ns = max(self.now_ns, int(ts_all.max()))
            if self.first_ns is None:
                self.first_ns = int(ts_all.min())
        idx = np.flatnonzero(ann["stream"] >= 0)
        retired, isn_parts, rows_parts, slot_parts = [], [], [], []
        step = self.capacity // 2
        for lo in range(0, len(idx), step):
            part = idx[lo:lo + step]
            r, i, slots, kept = self._feed_rows(rec, ann, ts_all, chunk.batch.frame_numbers, part)
            retired.append(r)
            isn_parts.append(i)
            rows_parts.append(part[kept])
            slot_parts.append(slots)
        retired.append(self._icmp(chunk))
        isn = _cat_isn(isn_parts)
        return Feed(np.concatenate(retired) if retired else self.ring[:0].copy(), isn,
                    np.concatenate(rows_parts) if rows_parts else np.zeros(0, np.int64),
                    np.concatenate(slot_parts) if slot_parts else np.zeros(0, np.int64))

    def drain(self) -> np.ndarray:
        """Retire every attempt still held (the input has ended)."""
        live = np.flatnonzero(self.ring["sid"] >= 0)
        out = self.ring[live].copy()
        self.ring["sid"][live] = -1
        return out

    # -- one slice of rows ---------------------------------------------------

    def _feed_rows(self, rec, ann, ts_all, frames_all, idx):
        ring, cap = self.ring, self.capacity
        stream = ann["stream"][idx]
        slots = stream % cap
        # Make room for streams newer than what their slot holds; retire the old rows.
        newer = ring["sid"][slots] < stream
        retired = ring[:0].copy()
        if newer.any():
            u = np.unique(stream[newer])
            us = u % cap
            old = us[ring["sid"][us] >= 0]
            if len(old):
                old = np.unique(old)
                retired = ring[old].copy()
            ring[us] = np.zeros(1, dtype=ATTEMPT_DTYPE)
            ring["sid"][us] = u                      # two new streams in one slot: the later wins
        kept = ring["sid"][slots] == stream
        self.untracked_rows += int((~kept).sum())
        idx, stream, slots = idx[kept], stream[kept], slots[kept]
        if not len(idx):
            return retired, None, slots, kept
        def col(name: str, rows: np.ndarray) -> np.ndarray:
            """A record column at these rows of the slice (only the rows that need it)."""
            return rec[name][idx[rows]]

        flags = rec["tcp_flags"][idx].astype(np.int64)
        fs = ann["from_server"][idx]
        frame = frames_all[idx]
        ts = ts_all[idx]
        plen = rec["payload_len"][idx]
        af = ann["flags"][idx]
        client = fs == 0

        # First packet of a new stream: addresses, ports, first kind.
        fresh = ring["first_frame"][slots] == 0
        if fresh.any():
            fu, fi = np.unique(slots[fresh], return_index=True)
            rows = np.flatnonzero(fresh)[fi]
            c_is_src = client[rows]
            src, dst = col("src", rows), col("dst", rows)
            caddr = np.where(c_is_src[:, None], src, dst)
            saddr = np.where(c_is_src[:, None], dst, src)
            sp, dp = col("sport", rows), col("dport", rows)
            cport = np.where(c_is_src, sp, dp)
            sport = np.where(c_is_src, dp, sp)
            ver = col("ip_version", rows)
            ring["caddr"][fu], ring["saddr"][fu] = caddr, saddr
            ring["cport"][fu], ring["sport"][fu], ring["ver"][fu] = cport, sport, ver
            ck, sk = host_keys(caddr, ver), host_keys(saddr, ver)
            ring["ckey"][fu], ring["skey"][fu] = ck, sk
            ring["tuple"][fu] = mix(ck, sk, cport, sport)
            ring["first_frame"][fu] = frame[rows]
            ring["first_ts"][fu] = ts[rows]
            ring["first"][fu] = _first_kind(flags[rows], plen[rows], fs[rows])
        ring["cpkts"] += np.bincount(slots[client], minlength=self.capacity).astype(np.uint32)
        ring["spkts"] += np.bincount(slots[~client], minlength=self.capacity).astype(np.uint32)

        ctl = flags & (SYN | ACK | RST)
        isn_parts = []
        reuse = None
        # The client's SYNs: times, ISN and options of the first.
        m = np.flatnonzero(client & (ctl == SYN))
        if len(m):
            s = slots[m]
            pos = ring["syn_n"][s].astype(np.int64) + _rank(s)
            first = pos == 0
            f = m[first]
            fsl = s[first]
            ring["syn_ts"][fsl], ring["syn_frame"][fsl] = ts[f], frame[f]
            seq = col("seq", f)
            ring["syn_isn"][fsl] = seq
            ring["syn_opt"][fsl] = _opts(col("opt_present", f), flags[f], ECE | CWR)
            ring["syn_ws"][fsl], ring["syn_mss"][fsl] = col("wscale", f), col("mss", f)
            later = (pos >= 1) & (pos < MAX_SYN_TIMES)
            if later.any():
                ls = s[later]
                dt = (ts[m[later]] - ring["syn_ts"][ls]) // 1_000_000
                ring["syn_dt_ms"][ls, pos[later] - 1] = np.clip(dt, 0, 2**32 - 1)
            _count(ring["syn_n"], s)
            isn_parts.append((ring["ckey"][fsl], ring["tuple"][fsl], ts[f], seq, frame[f],
                              ring["caddr"][fsl], ring["ver"][fsl]))
            reuse = (m[first], fsl)
        # The server's SYN-ACKs.
        m = np.flatnonzero(~client & (ctl == (SYN | ACK)))
        if len(m):
            s = slots[m]
            pos = ring["synack_n"][s].astype(np.int64) + _rank(s)
            first = pos == 0
            f, fsl = m[first], s[first]
            ring["synack_ts"][fsl], ring["synack_frame"][fsl] = ts[f], frame[f]
            seq = col("seq", f)
            ring["synack_isn"][fsl], ring["synack_tsval"][fsl] = seq, col("ts_val", f)
            ring["synack_opt"][fsl] = _opts(col("opt_present", f), flags[f], ECE)
            _count(ring["synack_n"], s)
            retx = ((af[m] & _RETX) != 0) & ((af[m] & _CAPDUP) == 0) & ~first
            _count(ring["synack_retx"], s[retx])
            isn_parts.append((ring["skey"][fsl], ring["tuple"][fsl], ts[f], seq, frame[f],
                              ring["saddr"][fsl], ring["ver"][fsl]))
        # The client's acknowledgement of the SYN-ACK: an ACK (no SYN, no RST) covering the
        # server's ISN + 1, after the SYN-ACK.
        m = np.flatnonzero(client & (ctl == ACK))
        m = m[(ring["done_frame"][slots[m]] == 0) & (ring["synack_frame"][slots[m]] > 0)]
        if len(m):
            s = slots[m]
            ok = (ann["rel_ack"][idx[m]] >= 1) & (frame[m] > ring["synack_frame"][s])
            _set_first(ring["done_frame"], s[ok], frame[m[ok]])
        rst = (flags & RST) != 0
        data = plen > 0
        for side, what, column in ((client, rst, "crst_frame"), (~client, rst, "srst_frame"),
                                   (client, data, "cdata_frame"), (~client, data, "sdata_frame")):
            m = np.flatnonzero(side & what)
            m = m[ring[column][slots[m]] == 0]     # only slots still without it
            _set_first(ring[column], slots[m], frame[m])
        fin = ((flags & FIN) != 0) & ((flags & (SYN | RST)) == 0)
        for side, col, tcol in ((client, "cfin_frame", "cfin_ts"), (~client, "sfin_frame", "sfin_ts")):
            m = np.flatnonzero(side & fin)
            if len(m):
                s = slots[m]
                new = ring[col][s] == 0
                _set_first(ring[tcol], s[new], ts[m[new]])
                _set_first(ring[col], s[new], frame[m[new]])
        if reuse is not None:   # last: the earlier connection's FINs may be in this slice
            self._reuse(*reuse, af, ts)
        return retired, _cat_isn_tuples(isn_parts), slots, kept

    def _reuse(self, rows: np.ndarray, slots: np.ndarray, af: np.ndarray, ts: np.ndarray) -> None:
        """A SYN that reuses a 4-tuple (the engine's reused_ports): was the earlier
        connection on it still in TIME_WAIT (both FINs seen, less than 60 s before)?"""
        ring = self.ring
        hit = (af[rows] & _REUSED) != 0
        if not hit.any():
            return
        live = np.flatnonzero(ring["sid"] >= 0)
        order = live[np.argsort(ring["tuple"][live], kind="stable")]
        tuples = ring["tuple"][order]
        for row, slot in zip(rows[hit].tolist(), slots[hit].tolist()):
            sid = int(ring["sid"][slot])
            lo, hi = np.searchsorted(tuples, ring["tuple"][slot], side="left"), \
                np.searchsorted(tuples, ring["tuple"][slot], side="right")
            same = order[lo:hi]
            same = same[ring["sid"][same] < sid]
            if not len(same):
                continue
            prev = ring[same[np.argmax(ring["sid"][same])]]
            if not (prev["cfin_frame"] and prev["sfin_frame"]):
                continue
            entered = max(int(prev["cfin_ts"]), int(prev["sfin_ts"]))
            gap = int(ts[row]) - entered
            last_fin = max(int(prev["cfin_frame"]), int(prev["sfin_frame"]))
            reset = max(int(prev["crst_frame"]), int(prev["srst_frame"])) > last_fin
            if not 0 <= gap < TIME_WAIT_NS or reset:
                continue
            holder_key = prev["ckey"] if prev["cfin_frame"] < prev["sfin_frame"] else prev["skey"]
            ring["reuse_gap_ms"][slot] = gap // 1_000_000
            ring["reuse_holder"][slot] = 1 if holder_key == ring["ckey"][slot] else 2

    # -- ICMP unreachables quoting a SYN ----------------------------------------

    def _icmp(self, chunk) -> np.ndarray:
        rec = chunk.records
        kind = rec["kind"]
        m = np.flatnonzero(((kind == _ICMP) & (rec["sport"] == 3))
                           | ((kind == _ICMP6) & (rec["sport"] == 1)))
        if not len(m):
            return self.ring[:0].copy()
        ring = self.ring
        live = np.flatnonzero(ring["sid"] >= 0)
        where = dict(zip(ring["tuple"][live].tolist(), live.tolist()))
        batch = chunk.batch
        for row in m.tolist():
            quoted = _quoted_tcp(batch.frame_bytes(row), int(rec["l4_off"][row]),
                                 int(rec["kind"][row]) == _ICMP6)
            if quoted is None:
                continue
            src, dst, sp, dp, ver = quoted
            a = np.zeros((2, 16), dtype=np.uint8)
            a[0, :len(src)], a[1, :len(dst)] = np.frombuffer(src, np.uint8), np.frombuffer(dst, np.uint8)
            k = host_keys(a, np.array([ver, ver], np.uint8))
            t = int(mix(k[:1], k[1:], np.array([sp]), np.array([dp]))[0])
            slot = where.get(t)
            if slot is not None and ring["icmp_frame"][slot] == 0:
                ring["icmp_frame"][slot] = int(batch.frame_numbers[row])
                ring["icmp_code"][slot] = int(rec["dport"][row])
        return self.ring[:0].copy()


def _quoted_tcp(frame: bytes, l4_off: int, v6: bool):
    """(src, dst, sport, dport, version) of the TCP header an ICMP error quotes, or None."""
    q = l4_off + 8
    if v6:
        if len(frame) < q + 44 or frame[q + 6] != 6:
            return None
        src, dst, t = frame[q + 8:q + 24], frame[q + 24:q + 40], q + 40
        ver = 6
    else:
        if len(frame) < q + 20:
            return None
        ihl = (frame[q] & 0x0F) * 4
        if frame[q] >> 4 != 4 or frame[q + 9] != 6 or len(frame) < q + ihl + 4:
            return None
        src, dst, t = frame[q + 12:q + 16], frame[q + 16:q + 20], q + ihl
        ver = 4
    sp, dp = struct.unpack_from(">HH", frame, t)
    return src, dst, sp, dp, ver


def _cat_isn_tuples(parts: list[tuple]) -> IsnEvents | None:
    if not parts:
        return None
    cols = list(zip(*parts))
    return IsnEvents(*(np.concatenate(c) for c in cols))


def _cat_isn(parts: list[IsnEvents | None]) -> IsnEvents:
    parts = [p for p in parts if p is not None]
    if not parts:
        return IsnEvents(np.zeros(0, np.uint64), np.zeros(0, np.uint64), np.zeros(0, np.int64),
                         np.zeros(0, np.uint32), np.zeros(0, np.int64),
                         np.zeros((0, 16), np.uint8), np.zeros(0, np.uint8))
    return IsnEvents(*(np.concatenate([getattr(p, f) for p in parts])
                       for f in ("host", "tuple", "ts", "isn", "frame", "addr", "ver")))


def outcomes(att: np.ndarray) -> np.ndarray:
    """The `Outcome` of each attempt (uint8; 0 for a stream that began with a SYN-ACK)."""
    n = len(att)
    out = np.zeros(n, dtype=np.uint8)
    first = att["first"]
    syn = att["syn_frame"] > 0
    sa = att["synack_frame"]
    answered = syn & (sa > 0)
    srst = att["srst_frame"]
    refused = syn & (srst > 0) & ((sa == 0) | (srst < sa))
    unreachable = syn & ~answered & ~refused & (att["icmp_frame"] > 0)
    completed = answered & ~refused & (att["done_frame"] > sa)
    half = answered & ~refused & ~completed
    reset_half = half & (att["crst_frame"] > sa)
    out[syn] = Outcome.UNANSWERED
    out[unreachable] = Outcome.UNREACHABLE
    out[refused] = Outcome.REFUSED
    out[half] = Outcome.HALF_OPEN
    out[reset_half] = Outcome.RESET_HALF_OPEN
    out[completed] = Outcome.COMPLETED
    probe = np.isin(first, [int(k) for k in _PROBES]) & ~syn & (att["cpkts"] <= 1) \
        & (att["cdata_frame"] == 0) & (att["sdata_frame"] == 0) & (att["spkts"] <= 1)
    out[probe] = Outcome.PROBE_SILENT
    out[probe & (srst > 0)] = Outcome.PROBE_RST
    out[probe & (srst == 0) & (att["icmp_frame"] > 0)] = Outcome.PROBE_UNREACHABLE
    out[(out == 0) & (first != First.SYNACK)] = Outcome.MIDSTREAM
    return out


def synack_stateless(att: np.ndarray, now_ns: int) -> np.ndarray:
    """Half-open attempts whose SYN-ACK was never repeated although the capture went on
    `SYNACK_RTO_NS` past it: the listener kept no request for them."""
    return (att["synack_frame"] > 0) & (att["synack_retx"] == 0) & (att["crst_frame"] == 0) \
        & (att["done_frame"] == 0) & (now_ns - att["synack_ts"] >= SYNACK_RTO_NS)


def syn_intervals(att: np.ndarray) -> np.ndarray:
    """Seconds between each attempt's consecutive SYNs (up to MAX_SYN_TIMES SYNs): one row
    of MAX_SYN_TIMES - 1 per attempt, NaN past its last SYN."""
    times = np.zeros((len(att), MAX_SYN_TIMES), dtype=np.float64)
    times[:, 1:] = att["syn_dt_ms"] / 1000
    iv = np.diff(times, axis=1)
    n = np.minimum(att["syn_n"].astype(np.int64), MAX_SYN_TIMES)
    iv[np.arange(MAX_SYN_TIMES - 1)[None, :] >= (n - 1)[:, None]] = np.nan
    return iv
