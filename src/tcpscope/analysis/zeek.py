"""Zeek compatibility: conn.log's ``conn_state``, ``history`` and counters for TCP.

Sans-IO, fed with the same batches as the engine::

    z = ZeekTracker()
    for batch, records, ann in iter_file(path):
        z.feed(records, ann, batch.ts_ns)
    z.fields()      # {stream: ZeekConn}: the Zeek connection each tcp.stream starts
    z.rows()        # every Zeek connection, as Zeek would log them (see "Splits")

What is modelled, and why it matches Zeek (docs/conns.md has the long form):

- Zeek's TCP analyzer per connection: two endpoints with Zeek's seven states
  (INACTIVE, SYN_SENT, SYN_ACK_SENT, PARTIAL, ESTABLISHED, CLOSED, RESET), their
  start / last / ack sequence numbers with 32-bit wrap counting, the history
  letters with Zeek's exact rules (S H A D F R once-per-kind or on a new
  sequence number, I and Q, C G T W on the 1st, 10th, 100th ... occurrence), the
  roles (originator = sender of the first packet; flipped with ``^`` by the
  likely-server-port heuristic or a SYN / SYN-ACK reversal), the payload sizes
  from sequence space (``orig_bytes`` / ``resp_bytes``), and the content gaps of
  its reassembler (``G`` / ``g``, ``missed_bytes``) - including the rule that a
  payload Zeek did not fully capture (snap length) never reaches the
  reassembler, so its acknowledgement is a gap.
- ConnSize's packet and IP-byte counts, and ``duration`` (last - first packet,
  where time stops once both sides closed).
- ``conn_state`` from the endpoint pair, as base/protocols/conn/main.zeek.
- Zeek's default options: checksums are verified (a bad or offloaded TCP checksum
  drops the packet after a ``C``; a bad IPv4 header checksum drops it before a
  connection exists) unless ``ignore_checksums`` (``zeek -C``); Zeek's default
  ``likely_server_ports``; ``report_gaps_for_partial = F``; reassembly on.

Splits: Zeek forgets a connection when one of its timers fires (5 s after an
unanswered SYN, 5 s after both sides closed or one reset, 60 s / 5 min of
inactivity) or when a SYN arrives for a closed or reused connection; a later
packet then starts a *new* Zeek connection, with a new uid. tcp.stream does not
split there. `rows()` lists every Zeek connection (that is what ``--format zeek``
writes); `fields()` gives, per stream, the first one, and its ``zeek_rows`` says
how many Zeek connections the stream spans.

Speed: the model is literal, one pass of Python per TCP row (a few us a row). With
``vectorize`` (the default) each stream's rows of a batch are taken in their own order
(connections are independent) and runs of *ordinary* rows - no SYN/FIN/RST, nothing that
could add a letter or change a state or timer - are applied with numpy: for them the
model only adds counts and moves running maxima (highest sequence number sent and
acknowledged, the reassembler's delivery and trim points). A run stops exactly at the
first row the model must see (first D / A of a side, the 1st / 10th / 100th ... C, W, T
or G, an idle time a timer would notice, a hole or block the in-order reassembler
cannot take), which then goes through `_process`. A reassembler with only a few payload
events Zeek would reassemble (holes, crossings of blocks) runs the model's own
`_data_sent` / `_ack_received` for each, with the ACK runs between them in bulk (`_sim`).
tests/test_zeek_vectorized.py checks both paths give identical results; docs/conns.md
has the measurements.
"""
from __future__ import annotations

import functools
import hashlib
import ipaddress
import socket
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..wire.record import CSUM, KIND, REASON
from .annotation import ANN_KIND

__all__ = [
    "ZeekTracker",
    "ZeekConn",
    "STATE_NAMES",
    "LIKELY_SERVER_PORTS",
    "conn_state",
    "is_local",
]

# --- Zeek's constants (scripts/base/init-bare.zeek defaults) -------------------------------

NS = 1_000_000_000
TCP_ATTEMPT_DELAY = 5 * NS  # tcp_attempt_delay
TCP_CLOSE_DELAY = 5 * NS  # tcp_close_delay
TCP_RESET_DELAY = 5 * NS  # tcp_reset_delay
TCP_CONNECTION_LINGER = 5 * NS  # tcp_connection_linger
TCP_INACTIVITY_TIMEOUT = 300 * NS  # tcp_inactivity_timeout (5 min)
UDP_INACTIVITY_TIMEOUT = 60 * NS  # what a TCP connection starts with, until its handshake ends
TCP_MAX_INITIAL_WINDOW = 16384
TCP_MAX_ABOVE_HOLE_WITHOUT_ANY_ACKS = 16384
TCP_EXCESSIVE_DATA_WITHOUT_FURTHER_ACKS = 10 * 1024 * 1024
TOO_LARGE_SEQ_DELTA = 1048576
HISTORY_SCALE = 10  # ScaledHistoryEntry's base: letters at the 1st, 10th, 100th, ...

M32 = 0xFFFFFFFF
M64 = 0xFFFFFFFFFFFFFFFF

# Endpoint states (TCP_Endpoint.h), in Zeek's numbering.
INACTIVE, SYN_SENT, SYN_ACK_SENT, PARTIAL, ESTABLISHED, CLOSED, RESET = range(7)
STATE_NAMES = ("INACTIVE", "SYN_SENT", "SYN_ACK_SENT", "PARTIAL", "ESTABLISHED", "CLOSED", "RESET")
_HANDSHAKE = (INACTIVE, SYN_SENT, SYN_ACK_SENT)

# History masks (TCP_Endpoint::HistoryMasks); the responder's are shifted by 16.
H_SYN, H_FIN, H_RST, H_FIN_RST, H_DATA, H_ACK, H_MULTI, H_CORRUPT = (
    0x1, 0x2, 0x4, 0x8, 0x10, 0x20, 0x40, 0x80)

# TCP flag bits (record.h)
F_FIN, F_SYN, F_RST, F_PSH, F_ACK = 0x1, 0x2, 0x4, 0x8, 0x10

#: Ports Zeek treats as likely servers when a connection starts without a SYN (or with a
#: SYN-ACK): the TCP ports its default scripts register (``likely_server_ports``, built by
#: each base/protocols/*/main.zeek). With ``zeek -b`` and no protocol script it is empty.
LIKELY_SERVER_PORTS: frozenset[int] = frozenset({
    21, 2811,  # ftp
    22,  # ssh
    25, 587,  # smtp
    53,  # dns
    80, 81, 631, 1080, 3128, 8000, 8080, 8888,  # http (1080 also socks)
    88, 750,  # krb_tcp
    110,  # pop3
    135,  # dce_rpc
    139, 445,  # smb
    143,  # imap
    389, 3268,  # ldap
    443, 563, 585, 614, 636, 989, 990, 992, 993, 995, 5223,  # ssl
    502,  # modbus
    1434, 3306,  # mysql
    1883,  # mqtt
    3389,  # rdp
    5222, 5269,  # xmpp
    5432,  # postgresql
    6379,  # redis
    6666, 6667, 6668, 6669,  # irc
    20000,  # dnp3
})

# Site::private_address_space: what local_orig / local_resp test (private_address_space_is_local).
_PRIVATE = tuple(ipaddress.ip_network(n) for n in (
    "0.0.0.0/8", "10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16", "172.16.0.0/12",
    "192.0.0.0/24", "192.0.2.0/24", "192.168.0.0/16", "198.18.0.0/15", "198.51.100.0/24",
    "203.0.113.0/24", "224.0.0.0/24", "239.0.0.0/8", "240.0.0.0/4", "255.255.255.255/32",
    "2002::/24", "2002:a00::/24", "2002:6440::/26", "2002:7f00::/24", "2002:a9fe::/32",
    "2002:ac10::/28", "2002:c000::/40", "2002:c000:200::/40", "2002:c0a8::/32",
    "2002:c612::/31", "2002:c633:6400::/40", "2002:cb00:7100::/40", "2002:e000::/40",
    "2002:ef00::/24", "2002:f000::/20", "2002:ffff:ffff::/48", "::/128", "::1/128",
    "64:ff9b:1::/48", "100::/64", "2001::/23", "2001:2::/48", "2001:db8::/32", "fc00::/7",
    "fe80::/10", "fec0::/10",
))


@functools.lru_cache(maxsize=65536)
def is_local(addr: str) -> bool:
    """Zeek's Site::is_local_addr with the default local_nets (the private address space)."""
    a = ipaddress.ip_address(addr)
    return any(a.version == n.version and a in n for n in _PRIVATE)


def _s32(x: int) -> int:
    """seq_delta: a 32-bit difference as a signed int32."""
    x &= M32
    return x - 0x100000000 if x & 0x80000000 else x


# --- the result ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ZeekConn:
    """One Zeek conn.log row (TCP), with what tcpscope adds to it."""

    stream: int
    uid: str
    ts_ns: int  #: first packet (the one that made Zeek create the connection)
    orig_h: str
    orig_p: int
    resp_h: str
    resp_p: int
    duration_ns: int | None  #: None where Zeek leaves it unset (duration 0)
    orig_bytes: int | None
    resp_bytes: int | None
    conn_state: str
    local_orig: bool
    local_resp: bool
    missed_bytes: int
    history: str
    orig_pkts: int
    orig_ip_bytes: int
    resp_pkts: int
    resp_ip_bytes: int
    orig_state: str  #: Zeek's endpoint states at the end (c$orig$state)
    resp_state: str
    orig_size: int  #: c$orig$size (what orig_bytes logs when the duration is not 0)
    resp_size: int
    first_frame: int
    last_frame: int
    part: int = 0  #: 0 = the Zeek connection the stream starts with, 1.. = later splits
    split_reason: str | None = None  #: why Zeek started this one (None for part 0)
    zeek_rows: int = 1  #: Zeek connections this stream spans (set on part 0 by fields())

    @property
    def duration(self) -> float | None:
        return None if self.duration_ns is None else self.duration_ns / 1e9

    def as_dict(self) -> dict[str, Any]:
        return {
            "ts": self.ts_ns / 1e9, "uid": self.uid, "id.orig_h": self.orig_h,
            "id.orig_p": self.orig_p, "id.resp_h": self.resp_h, "id.resp_p": self.resp_p,
            "proto": "tcp", "duration": self.duration, "orig_bytes": self.orig_bytes,
            "resp_bytes": self.resp_bytes, "conn_state": self.conn_state,
            "local_orig": self.local_orig, "local_resp": self.local_resp,
            "missed_bytes": self.missed_bytes, "history": self.history,
            "orig_pkts": self.orig_pkts, "orig_ip_bytes": self.orig_ip_bytes,
            "resp_pkts": self.resp_pkts, "resp_ip_bytes": self.resp_ip_bytes,
        }


_RSTOS0_BODY = frozenset("HAFGIQ")


def _rstos0(history: str) -> bool:
    """``/\\^?S[^HAFGIQ]*R.*/ == history`` (a whole-string match)."""
    h = history[1:] if history.startswith("^") else history
    if not h.startswith("S"):
        return False
    for ch in h[1:]:
        if ch == "R":
            return True
        if ch in _RSTOS0_BODY:
            return False
    return False


def conn_state(os_: int, rs: int, orig_size: int, resp_size: int, history: str) -> str:
    """conn_state() of base/protocols/conn/main.zeek for TCP, from the endpoint states."""
    o_inactive = os_ in (INACTIVE, PARTIAL)
    r_inactive = rs in (INACTIVE, PARTIAL)
    if rs == RESET:
        if os_ in (SYN_SENT, SYN_ACK_SENT) or (os_ == RESET and orig_size == 0 and resp_size == 0):
            return "REJ"
        return "RSTRH" if o_inactive else "RSTR"
    if os_ == RESET:
        if r_inactive:
            return "RSTOS0" if _rstos0(history) else "OTH"
        return "RSTO"
    if rs == CLOSED and os_ == CLOSED:
        return "SF"
    if os_ == CLOSED:
        return "SH" if r_inactive else "S2"
    if rs == CLOSED:
        return "SHR" if o_inactive else "S3"
    if os_ == SYN_SENT and rs == INACTIVE:
        return "S0"
    if os_ == ESTABLISHED and rs == ESTABLISHED:
        return "S1"
    return "OTH"


# --- the model: one Zeek TCP connection ----------------------------------------------------


class _Reasm:
    """The parts of Zeek's TCP_Reassembler that decide gaps and close deferral.

    Sequence numbers are Zeek's relative ones (1 = first data byte). Blocks are
    kept as disjoint sorted [lo, hi) intervals (Zeek splits overlaps the same way,
    so their total size is the same).
    """

    __slots__ = ("last", "trim", "blocks", "skip", "did_eof")

    def __init__(self) -> None:
        self.last = 1  # last_reassem_seq
        self.trim = 1  # trim_seq
        self.blocks: list[list[int]] = []
        self.skip = False  # skip_deliveries
        self.did_eof = False

    def size(self) -> int:
        return sum(hi - lo for lo, hi in self.blocks)

    def clone(self) -> "_Reasm":
        out = _Reasm()
        out.last, out.trim, out.skip, out.did_eof = self.last, self.trim, self.skip, self.did_eof
        out.blocks = [b[:] for b in self.blocks]
        return out

    def undelivered(self) -> bool:
        return bool(self.blocks) and self.blocks[-1][1] > self.last

    def insert(self, lo: int, hi: int) -> None:
        out: list[list[int]] = []
        placed = False
        for b in self.blocks:
            if b[1] < lo:
                out.append(b)
            elif b[0] > hi:
                if not placed:
                    out.append([lo, hi])
                    placed = True
                out.append(b)
            else:
                lo, hi = min(lo, b[0]), max(hi, b[1])
        if not placed:
            out.append([lo, hi])
        self.blocks = out

    def deliver(self) -> None:
        """BlockInserted's loop: move last_reassem_seq over contiguous blocks."""
        for lo, hi in self.blocks:
            if lo > self.last:
                break
            if hi > self.last:
                self.last = hi

    def trim_to(self, seq: int) -> None:
        self.blocks = [b for b in self.blocks if b[1] > seq]
        self.trim = seq


class _Endpoint:
    __slots__ = (
        "is_orig", "state", "prev_state", "start", "last_seq", "ack_seq", "seq_wraps",
        "ack_wraps", "h_syn", "h_fin", "h_rst", "fin_cnt", "rst_cnt", "fin_seq", "did_close",
        "chk", "chk_t", "rxmt", "rxmt_t", "win0", "win0_t", "gap", "gap_t", "r", "pkts",
        "ip_bytes", "peer",
    )

    def __init__(self, is_orig: bool) -> None:
        self.is_orig = is_orig
        self.state = self.prev_state = INACTIVE
        self.start = self.last_seq = self.ack_seq = 0
        self.seq_wraps = self.ack_wraps = 0
        self.h_syn = self.h_fin = self.h_rst = 0
        self.fin_cnt = self.rst_cnt = 0
        self.fin_seq = 0
        self.did_close = False
        self.chk = self.rxmt = self.win0 = self.gap = 0
        self.chk_t = self.rxmt_t = self.win0_t = self.gap_t = 1
        self.r = _Reasm()
        self.pkts = self.ip_bytes = 0
        self.peer: _Endpoint = self

    def clone(self) -> "_Endpoint":
        """A copy to try things on (its own reassembler; the same peer)."""
        out = _Endpoint.__new__(_Endpoint)
        for name in _Endpoint.__slots__:
            setattr(out, name, getattr(self, name))
        out.r = self.r.clone()
        return out

    # sequence space helpers (TCP_Endpoint.h)
    def rel(self, seq: int, wraps: int) -> int:  # ToRelativeSeqSpace
        return ((wraps << 32) + seq - self.start) & M64

    def ack_rel(self) -> int:
        return self.rel(self.ack_seq, self.ack_wraps)

    def no_data_acked(self) -> bool:
        ack = (self.ack_wraps << 32) + self.ack_seq
        return ack == self.start or ack == self.start + 1

    def size(self) -> int:
        if (self.prev_state == SYN_SENT and self.state == RESET and self.peer.state == INACTIVE
                and not self.no_data_acked()):
            return 0
        last = (self.seq_wraps << 32) + self.last_seq
        ack = (self.ack_wraps << 32) + self.ack_seq
        size = ((last if last > ack else ack) - self.start) & M64
        if size:
            size -= 1
        if self.fin_cnt > 0 and size:
            size -= 1
        return size

    def update_last_seq(self, seq: int) -> None:
        if seq < self.last_seq:
            self.seq_wraps += 1
        self.last_seq = seq

    def update_ack_seq(self, seq: int) -> None:
        if seq < self.ack_seq:
            self.ack_wraps += 1
        self.ack_seq = seq

    def init_seqs(self, start: int, last: int) -> None:
        self.start = start
        self.ack_seq = start
        self.last_seq = last


class _Conn:
    """One Zeek connection (Connection + TCPSessionAdapter + ConnSize)."""

    __slots__ = (
        "stream", "part", "split_reason", "orig", "resp", "orig_c", "hist", "hist_seen",
        "start_ns", "last_ns", "first_frame", "last_frame", "is_partial", "first_seen",
        "is_active", "close_deferred", "deferred_gen", "attempt_at", "delete_at",
        "inactivity", "missed", "addr_row", "removed_reason", "c0", "reset_at",
    )

    def __init__(self, stream: int, part: int, reason: str | None, orig_c: int, ts: int,
                 frame: int, addr_row: tuple) -> None:
        self.stream = stream
        self.part = part
        self.split_reason = reason
        self.orig = _Endpoint(True)
        self.resp = _Endpoint(False)
        self.orig.peer, self.resp.peer = self.resp, self.orig
        self.orig_c = orig_c  # canonical direction bit of the originator's packets
        self.hist: list[str] = []
        self.hist_seen = 0
        self.start_ns = self.last_ns = ts
        self.first_frame = self.last_frame = frame
        self.is_partial = False
        self.first_seen = 0  # 1 orig, 2 resp
        self.is_active = True
        self.close_deferred = False
        self.deferred_gen = False
        self.attempt_at: int | None = None
        self.delete_at: int | None = None
        self.inactivity = UDP_INACTIVITY_TIMEOUT
        self.missed = 0
        self.addr_row = addr_row  # (src, sport, dst, dport) of the first packet
        self.c0 = orig_c  # direction bit of the first packet
        self.removed_reason: str | None = None
        self.reset_at: int | None = None

    # history (Session::CheckHistory / AddHistory, TCP_Endpoint's case rule)
    def check_hist(self, ep: _Endpoint, mask: int, code: str) -> bool:
        if not ep.is_orig:
            mask <<= 16
            code = code.lower()
        if self.hist_seen & mask:
            return True
        self.hist_seen |= mask
        self.hist.append(code)
        return False

    def add_hist(self, ep: _Endpoint, code: str) -> None:
        self.hist.append(code if ep.is_orig else code.lower())

    def scaled(self, ep: _Endpoint, kind: str) -> None:
        """ScaledHistoryEntry for C, T, W, G."""
        if kind == "T":
            ep.rxmt += 1
            if ep.rxmt == ep.rxmt_t:
                self.add_hist(ep, "T")
                ep.rxmt_t *= HISTORY_SCALE
        elif kind == "W":
            ep.win0 += 1
            if ep.win0 == ep.win0_t:
                self.add_hist(ep, "W")
                ep.win0_t *= HISTORY_SCALE
        elif kind == "G":
            ep.gap += 1
            if ep.gap == ep.gap_t:
                self.add_hist(ep, "G")
                ep.gap_t *= HISTORY_SCALE
        else:
            ep.chk += 1
            if ep.chk == ep.chk_t:
                self.add_hist(ep, "C")
                ep.chk_t *= HISTORY_SCALE

    def set_state(self, ep: _Endpoint, new: int) -> None:
        if new != ep.state:
            if new not in _HANDSHAKE and ep.state in _HANDSHAKE and ep.peer.state in _HANDSHAKE:
                self.inactivity = TCP_INACTIVITY_TIMEOUT
            ep.prev_state = ep.state
            ep.state = new

    def flip(self) -> None:
        """Connection::FlipRoles: swap roles (and ConnSize's counters), add '^'."""
        self.orig, self.resp = self.resp, self.orig
        self.orig.is_orig, self.resp.is_orig = True, False
        self.orig_c ^= 1
        fs = self.first_seen
        self.first_seen = (2 if fs & 1 else 0) | (1 if fs & 2 else 0)
        self.is_partial = False
        self.hist.append("^")

    def flip_after_synack(self) -> None:
        """The flip of a connection that began with a SYN-ACK, on the first ACK or data after it.

        Zeek (since 5.1, zeek#2191) then swaps the roles as if it had flipped from the
        start: the history so far changes case behind a leading '^', and the
        history masks change sides with it.
        """
        self.orig, self.resp = self.resp, self.orig
        self.orig.is_orig, self.resp.is_orig = True, False
        self.orig_c ^= 1
        fs = self.first_seen
        self.first_seen = (2 if fs & 1 else 0) | (1 if fs & 2 else 0)
        self.is_partial = False
        self.hist = ["^"] + [h.swapcase() for h in self.hist]
        hs = self.hist_seen
        self.hist_seen = ((hs & 0xFFFF) << 16) | (hs >> 16)

    def both_closed(self) -> bool:
        return self.orig.did_close and self.resp.did_close


class ZeekTracker:
    """Zeek's view of every TCP connection, fed batch by batch (sans-IO).

    Args:
        ignore_checksums: as ``zeek -C``: accept packets whose checksum is bad.
        likely_server_ports: the ports of Zeek's role-flip heuristic (default:
            what Zeek's default scripts register; ``frozenset()`` for ``zeek -b``).
        report_gaps_for_partial: Zeek's option of that name (counts gaps of
            connections not cleanly established in ``missed_bytes``).
        excessive_data_without_further_acks: Zeek's option of that name (0 = off).
        vectorize: take runs of ordinary rows with numpy (same results, 5-15x faster
            on bulk transfers); False runs every row through the per-packet model (the
            reference the fast path is tested against).
    """

    def __init__(self, *, ignore_checksums: bool = False,
                 likely_server_ports: frozenset[int] | set[int] = LIKELY_SERVER_PORTS,
                 report_gaps_for_partial: bool = False,
                 excessive_data_without_further_acks: int = TCP_EXCESSIVE_DATA_WITHOUT_FURTHER_ACKS,
                 vectorize: bool = True) -> None:
        self.ignore_checksums = ignore_checksums
        self.excessive = excessive_data_without_further_acks
        self.likely = frozenset(likely_server_ports)
        self.report_gaps_for_partial = report_gaps_for_partial
        self.vectorize = vectorize
        self._conns: dict[int, _Conn] = {}
        self._done: list[ZeekConn] = []
        self._parts: dict[int, int] = {}
        self.offloaded = 0  #: packets dropped for an offloaded (partial) checksum
        self.bad_checksums = 0  #: packets dropped for a bad checksum
        self.fast_rows = 0  #: rows the numpy fast path applied (the rest went row by row)
        self._chunk: dict[int, int] = {}  # per stream: rows its next fast attempt may take

    # -- feeding -------------------------------------------------------------------------

    def feed(self, records: np.ndarray, annotations: np.ndarray, ts_ns: np.ndarray) -> None:
        """Consume one batch (the records, the engine's annotations for them, timestamps)."""
        n = len(records)
        if n == 0:
            return
        ts = np.asarray(ts_ns, dtype=np.int64)
        stream = annotations["stream"]
        ok = (stream >= 0) & (records["kind"] == KIND["TCP"])
        if not self.ignore_checksums:
            # Zeek's IP analyzer drops a bad IPv4 header checksum before any connection exists.
            ok &= records["ip_csum_status"] != CSUM["BAD"]
        idx = np.flatnonzero(ok)
        if idx.size == 0:
            return
        every = idx.size == n

        def rec(name: str) -> np.ndarray:  # one field of the kept rows (no copy of whole rows)
            return records[name] if every else records[name][idx]

        def ann(name: str) -> np.ndarray:
            return annotations[name] if every else annotations[name][idx]

        # Direction-free bit per row: 1 when (src, sport) > (dst, dport).
        src = np.ascontiguousarray(rec("src")).view(">u8").reshape(-1, 2)
        dst = np.ascontiguousarray(rec("dst")).view(">u8").reshape(-1, 2)
        sp, dp = rec("sport"), rec("dport")
        gt = (src[:, 0] > dst[:, 0]) | ((src[:, 0] == dst[:, 0]) & (
            (src[:, 1] > dst[:, 1]) | ((src[:, 1] == dst[:, 1]) & (sp > dp))))
        # Zeek drops a TCP header it cannot read whole (after the connection exists).
        hdr_ok = (ann("kind") == ANN_KIND["analysed"]) & (
            rec("stop_reason") != REASON["TRUNCATED_TCP_OPTIONS"])
        csum = rec("tcp_csum_status")
        bad = np.zeros(len(idx), dtype=bool)
        if not self.ignore_checksums:
            bad = (csum == CSUM["BAD"]) | (csum == CSUM["OFFLOAD"])
            self.offloaded += int(np.count_nonzero(hdr_ok & (csum == CSUM["OFFLOAD"])))
            self.bad_checksums += int(np.count_nonzero(hdr_ok & (csum == CSUM["BAD"])))
        cols = _Cols(
            stream=ann("stream"), c=gt.astype(np.int8), ts=ts[idx], frame=ann("frame"),
            flags=rec("tcp_flags"), seq=rec("seq"), ack=rec("ack"), plen=rec("payload_len"),
            pcap=rec("payload_cap"), win=rec("win"), ip_len=rec("ip_len"), hdr_ok=hdr_ok,
            bad=bad, sport=sp, dport=dp, row=idx,
        )
        if self.vectorize:
            self._feed_vectorized(cols, records)
        else:
            self._feed_rows(cols, records, None)

    def _feed_rows(self, cols: "_Cols", rec: np.ndarray, idx: np.ndarray | None) -> None:
        """The per-packet model over rows `idx` of the batch (all of them for None), in order."""
        def col(a: np.ndarray) -> list:
            return (a if idx is None else a[idx]).tolist()

        stream_l = col(cols.stream)
        c_l = col(cols.c)
        ts_l = col(cols.ts)
        frame_l = col(cols.frame)
        flags_l = col(cols.flags)
        seq_l = col(cols.seq)
        ack_l = col(cols.ack)
        plen_l = col(cols.plen)
        pcap_l = col(cols.pcap)
        win_l = col(cols.win)
        ipl_l = col(cols.ip_len)
        hdr_l = col(cols.hdr_ok)
        bad_l = col(cols.bad)
        sp_l = col(cols.sport)
        dp_l = col(cols.dport)
        rec_i = col(cols.row)  # where each row is in the batch's records
        conns = self._conns
        for i in range(len(stream_l)):
            s = stream_l[i]
            t = ts_l[i]
            flags = flags_l[i]
            conn = conns.get(s)
            if conn is not None:
                reason = self._expired(conn, t)
                if reason is None and flags & F_SYN and hdr_l[i]:
                    reason = self._reuse(conn, flags, seq_l[i])
                if reason is not None:
                    conn.removed_reason = reason
                    self._finish(conn)
                    conn = None
            if conn is None:
                conn = self._new_conn(s, c_l[i], t, frame_l[i], flags, sp_l[i], dp_l[i], rec,
                                      rec_i[i])
                conns[s] = conn
            is_orig = c_l[i] == conn.orig_c
            conn.last_frame = frame_l[i]
            if not hdr_l[i]:
                continue
            if bad_l[i]:
                conn.scaled(conn.orig if is_orig else conn.resp, "C")
                continue
            if (conn.orig.state == SYN_ACK_SENT and conn.resp.state == INACTIVE
                    and not flags & (F_SYN | F_RST) and (flags & F_ACK or plen_l[i])):
                conn.flip_after_synack()
                is_orig = not is_orig
            self._process(conn, is_orig, t, flags, seq_l[i], ack_l[i], plen_l[i],
                          pcap_l[i] >= plen_l[i], win_l[i], ipl_l[i])

    # -- the numpy fast path ----------------------------------------------------------------
    #
    # Most rows of a long connection are "ordinary": no SYN, FIN or RST, both endpoints
    # already past the handshake, no letter to add. For those the model only moves counters
    # and frontiers that are running maxima (the highest sequence number sent, the highest
    # acknowledged, the reassembler's delivery and trim points), so a run of them is applied
    # with numpy in one step. The run ends, exactly, at the first row the per-packet model
    # must see: one that adds a letter (first D / A of a direction; the 1st, 10th, 100th ...
    # C, W, T or G), could change a state or a timer, or touches reassembler state that is
    # not a plain frontier. Connections are independent, so each stream's rows are taken in
    # their own order; every row still has exactly the effect the per-packet model gives it
    # (tests/test_zeek_vectorized.py checks the two paths agree row for row).

    #: Streams with fewer rows in a batch go through the per-packet model whole.
    min_group = 64
    #: A run of ordinary rows shorter than this is not worth numpy's overhead (nor is an
    #: attempt that took fewer rows than this: the next one waits, see `_walk`).
    min_run = 64
    #: Fewest and most rows the per-packet model takes before the next attempt, when the
    #: connection was not ready or an attempt was not worth it (doubling in between).
    min_backoff = 16
    max_backoff = 1024
    #: Rows a stream's first fast attempt may take, and the least any attempt may.
    first_chunk = 4096
    min_chunk = 256
    #: A run with at most this many payload events Zeek reassembles may have holes: those
    #: events go through the model's reassembler one by one (_sim).
    sim_max = 64

    def _feed_vectorized(self, cols: "_Cols", rec: np.ndarray) -> None:
        n = len(cols.stream)
        flags = cols.flags.astype(np.int64)
        sfr = (flags & (F_SYN | F_FIN | F_RST)) != 0
        # 0: header Zeek cannot read (only the timers and last_frame see it); 1: bad checksum
        # (a C and nothing else); 2: ordinary candidate; 3: always the per-packet model.
        cls = np.full(n, _SLOW, dtype=np.int8)
        hdr = cols.hdr_ok
        cls[~hdr] = _NOP
        cls[hdr & cols.bad & ~sfr] = _BAD
        cls[hdr & ~cols.bad & ~sfr & ~(((flags & F_ACK) != 0) & (cols.ack == 0))] = _GOOD
        order = np.argsort(cols.stream, kind="stable")
        ss = cols.stream[order]
        starts = np.flatnonzero(np.r_[True, ss[1:] != ss[:-1]])
        ends = np.r_[starts[1:], n]
        big = (ends - starts) >= self.min_group
        if not big.any():
            self._feed_rows(cols, rec, None)
            return
        if not big.all():
            small = np.repeat(~big, ends - starts)
            self._feed_rows(cols, rec, np.sort(order[small]))
        g = _Group(cols, cls, flags)
        for a, b in zip(starts[big].tolist(), ends[big].tolist()):
            self._walk(cols, rec, g, order[a:b])

    def _fast_ready(self, conn: _Conn | None) -> bool:
        """Can a run of ordinary rows of `conn` start now (nothing but counters can change)?"""
        if conn is None or conn.delete_at is not None or conn.reset_at is not None:
            return False
        o, r = conn.orig, conn.resp
        return (o.state in _FAST_STATES and r.state in _FAST_STATES
                and not (o.state == INACTIVE and r.state == INACTIVE)
                and not (o.fin_cnt or r.fin_cnt or o.did_close or r.did_close
                         or conn.close_deferred))

    def _walk(self, cols: "_Cols", rec: np.ndarray, g: "_Group", gidx: np.ndarray) -> None:
        """One stream's rows of a batch, in order: runs of ordinary rows in bulk, the rest
        through the per-packet model."""
        v = g.take(gidx)
        m = len(gidx)
        cls_l = v.cls.tolist()
        slow_at = np.flatnonzero(v.cls == _SLOW)
        s = int(cols.stream[gidx[0]])
        chunk = self._chunk.get(s, self.first_chunk)
        pos = 0
        backoff = self.min_backoff
        while pos < m:
            if cls_l[pos] == _SLOW:
                q = pos + 1
                while q < m and cls_l[q] == _SLOW:
                    q += 1
                self._feed_rows(cols, rec, gidx[pos:q])
                pos = q
                continue
            k = int(np.searchsorted(slow_at, pos))
            end = int(slow_at[k]) if k < len(slow_at) else m
            if end - pos < self.min_run:
                self._feed_rows(cols, rec, gidx[pos:end])
                pos = end
                continue
            if self._fast_ready(self._conns.get(s)):
                # At most `chunk` rows at a time: it grows while runs go through whole and
                # shrinks to about what went through when one stops early, so a stream
                # that keeps stopping does not pay numpy for rows it will not take.
                hi = min(end, pos + chunk)
                brk = self._fast(self._conns[s], v, pos, hi)
                done, pos = brk - pos, brk
                if pos == hi:
                    backoff = self.min_backoff
                    chunk = min(2 * chunk, 1 << 24)
                    continue
                chunk = max(self.min_chunk, 2 * done)
                if done >= self.min_run:
                    # a row that adds a letter or needs the model: that row alone
                    backoff = self.min_backoff
                    self._feed_rows(cols, rec, gidx[pos:pos + 1])
                    pos += 1
                    continue
            # Not ready, or the attempt was not worth it: the per-packet model for a while,
            # for longer each time in a row this happens (an attempt costs about as much as
            # a few dozen rows of the model, so this bounds what failed attempts cost).
            q = min(end, pos + backoff)
            self._feed_rows(cols, rec, gidx[pos:q])
            pos = q
            backoff = min(2 * backoff, self.max_backoff)
        self._chunk[s] = chunk

    def _fast(self, conn: _Conn, v: "_Group", lo: int, hi: int) -> int:
        """Apply rows [lo, hi) of one stream (`v`) as ordinary rows, up to the first one
        the per-packet model must see; return that row's index (`hi` when none).

        Every test below is on a prefix (a row's verdict depends only on the rows before it
        and the state at `lo`), so the first row any of them stops at is where the model
        takes over, and the rows before it are applied exactly.
        """
        sl = slice(lo, hi)
        n = hi - lo
        cls = v.cls[sl]
        good = cls == _GOOD
        ts = v.ts[sl]
        # Zeek's timers: only inactivity can fire here, measured from the last row that
        # moved last_ns (header and checksum failures do not).
        last_good = np.maximum.accumulate(np.where(good, np.arange(n), -1))
        prev = np.empty(n, dtype=np.int64)
        prev[0] = -1
        prev[1:] = last_good[:-1]
        since = np.where(prev >= 0, ts[np.maximum(prev, 0)], conn.last_ns)
        brk = _first(ts >= since + conn.inactivity, n)
        o, r = conn.orig, conn.resp
        clean = o.state == ESTABLISHED and r.state == ESTABLISHED
        c_orig = v.c[sl] == conn.orig_c
        # What each side's rows do to that side: counters, letters, the highest sequence
        # number sent (a running maximum), T, W, C.
        sends: dict[bool, tuple] = {}
        for ep, mine in ((o, c_orig), (r, ~c_orig)):
            shift = 0 if ep.is_orig else 16
            bi = np.flatnonzero(mine & (cls == _BAD))
            brk = min(brk, _kth(bi, None, ep.chk_t - ep.chk, n))
            gi = np.flatnonzero(mine & good)
            gi = gi[:np.searchsorted(gi, brk)]
            if gi.size and (ep.state == INACTIVE
                            or not conn.first_seen & (1 if ep.is_orig else 2)):
                brk = min(brk, int(gi[0]))  # a state change
                gi = gi[:0]
            if not gi.size:
                sends[ep.is_orig] = (bi, gi, None)
                continue
            rows = gi + lo
            plen = v.plen[rows]
            ackf = v.ackf[rows]
            data = plen > 0
            if not conn.hist_seen & (H_DATA << shift):
                brk = min(brk, _first_of(gi, data, n))
            if not conn.hist_seen & (H_ACK << shift):
                brk = min(brk, _first_of(gi, ~data & ackf, n))
            zero = v.win0[rows]
            brk = min(brk, _kth(gi, zero, ep.win0_t - ep.win0, n))
            last0 = (ep.seq_wraps << 32) + ep.last_seq
            u = _unwrap(v.end[rows], ep.last_seq, last0)
            brk = min(brk, _first_of(gi, np.abs(u - last0) >= _WINDOW, n))
            rxmt = data & (u <= _before(u, last0))
            brk = min(brk, _kth(gi, rxmt, ep.rxmt_t - ep.rxmt, n))
            sends[ep.is_orig] = (bi, gi, (rows, plen, ackf, data, u, rxmt, zero))
        # Each side's reassembler and acknowledged frontier: its own payload (when Zeek
        # would reassemble it) and the peer's ACKs, merged in row order.
        reasm = []
        for ep in (o, r):
            pr = ep.r
            _, pgi, pplan = sends[not ep.is_orig]
            if pplan is not None:
                ai = pgi[pplan[2]]
                av = v.ack[pplan[0][pplan[2]]]
            else:
                ai = av = np.zeros(0, dtype=np.int64)
            if ep.state == INACTIVE:  # the acknowledged side never sent (it has no rows here)
                reasm.append((ep, ai, av, None))
                continue
            a0 = (ep.ack_wraps << 32) + ep.ack_seq
            ua = a = av
            if ai.size:
                ua = _unwrap(av, ep.ack_seq, a0)
                a = ua - ep.start
                odd = (np.abs(ua - a0) >= _WINDOW) | (a < 0) | ((ua < 1 << 32) & (a >= 1 << 31))
                if conn.is_partial:
                    odd |= a <= 2
                brk = min(brk, _first_of(ai, odd, n))
            _, gi, plan = sends[ep.is_orig]
            di = gi[:0]
            s = ln = sent = None
            if plan is not None and not pr.skip:
                rows, plen, _, data, u, _, _ = plan
                full = data & v.full[rows]
                if full.any():
                    di = gi[full]
                    ln = plen[full]
                    s = u[full] - ep.start - ln
                    odd = (s < 0) | ((s + ep.start < 1 << 32) & (s >= 1 << 31))
                    brk = min(brk, _first_of(di, odd, n))
            if plan is not None:
                sent = (gi, np.maximum.accumulate(plan[4]))
            if di.size:
                pos = np.concatenate((di, ai))
                k = np.argsort(pos, kind="stable")
                pos = pos[k]
                isdata = np.zeros(len(pos), dtype=bool)
                isdata[:len(di)] = True
                isdata = isdata[k]
                start = np.concatenate((s, a))[k]  # payload: its first byte; ACK: the ACK
                val = np.concatenate((s + ln, a))[k]  # payload: its end; ACK: the ACK
            else:
                pos, isdata, start, val = ai, np.zeros(len(ai), dtype=bool), a, a
            ack_rel0 = a0 - ep.start
            p = self._plan_in_order(ep, ack_rel0, pos, isdata, start, val, n, clean)
            if p is not None and not (p[3] and di.size <= self.sim_max):
                rb, front, gap, _ = p
                brk = min(brk, rb)
                reasm.append((ep, ai, av, (ua, pos, _IN_ORDER, (val, isdata, front, gap,
                                                                ack_rel0))))
            elif di.size <= self.sim_max:
                # Few payload events (a hole, sporadic payload Zeek reassembles, ACKs that
                # reach blocks): the model's own reassembler for each of them, the ACKs
                # between them in bulk.
                ev = _Events(pos, isdata, start, ln, ai, ua, a0, sent, (ep.seq_wraps << 32)
                             + ep.last_seq)
                brk = min(brk, self._sim(_Scratch(conn), ep.clone(), ev, brk, clean))
                reasm.append((ep, ai, av, (ua, pos, _SIMULATED, ev)))
            else:  # many payload events and a block list: up to the first event that matters
                brk = min(brk, _first_of(pos, isdata | (start > pr.trim), n))
                reasm.append((ep, ai, av, (ua, pos, _OTHER, None)))
        if brk == 0:
            return lo
        # Apply rows [lo, lo + brk).
        for ep, ai, av, plan in reasm:
            na = int(np.searchsorted(ai, brk))
            if plan is None:
                if na:  # the acknowledged side never sent: each ACK sets its start again
                    ep.start = ep.ack_seq = ep.last_seq = (int(av[na - 1]) - 1) & M32
                continue
            ua, pos, mode, detail = plan
            k = int(np.searchsorted(pos, brk))
            if mode == _SIMULATED and k:
                self._sim(conn, ep, detail, brk, clean)
            if na:
                top = int(ua[:na].max())
                if top > (ep.ack_wraps << 32) + ep.ack_seq:
                    ep.ack_wraps, ep.ack_seq = top >> 32, top & M32
            if not k or mode != _IN_ORDER:
                continue
            val, isdata, front, gap, ack_rel0 = detail
            pr = ep.r
            val, isdata, front, gap = val[:k], isdata[:k], front[:k], gap[:k]
            if not pr.skip:
                if gap.any():
                    if clean:
                        ep.gap += int(np.count_nonzero(gap))
                    if clean or self.report_gaps_for_partial:
                        conn.missed += int((val[gap] - front[gap]).sum())
                _settle_blocks(pr, val, isdata, front, ack_rel0)
            last = max(pr.last, int(val.max()))
            acks = val[~isdata]
            if acks.size and int(acks.max()) > pr.trim:
                pr.trim = int(acks.max())
            pr.last = last
            if pr.blocks:
                pr.blocks[0][1] = last
        for is_orig, (bi, gi, plan) in sends.items():
            ep = o if is_orig else r
            ep.chk += int(np.searchsorted(bi, brk))
            ng = int(np.searchsorted(gi, brk))
            if not ng:
                continue
            rows, _, _, _, u, rxmt, zero = plan
            ep.pkts += ng
            ep.ip_bytes += int(v.ip_len[rows[:ng]].sum())
            top = int(u[:ng].max())
            if top > (ep.seq_wraps << 32) + ep.last_seq:
                ep.seq_wraps, ep.last_seq = top >> 32, top & M32
            ep.rxmt += int(np.count_nonzero(rxmt[:ng]))
            ep.win0 += int(np.count_nonzero(zero[:ng]))
        lg = int(last_good[brk - 1])
        if lg >= 0:
            conn.last_ns = int(ts[lg])
        conn.last_frame = int(v.frame[lo + brk - 1])
        self.fast_rows += brk
        return lo + brk

    def _plan_in_order(self, ep: _Endpoint, ack_rel0: int, pos: np.ndarray, isdata: np.ndarray,
                       start: np.ndarray, val: np.ndarray, n: int,
                       clean: bool) -> tuple | None:
        """The vectorised plan for a reassembler whose data is all delivered (at most one
        block, ending at last_reassem_seq) and stays so: payload in order, ACKs anywhere.

        Returns None when the reassembler is not in that state, else (the first row it
        cannot take, last_reassem_seq before each event, which ACKs are gaps, whether
        that row is one the event-by-event path would take: a hole, Zeek's
        initial-window or excessive-data rules).
        """
        pr = ep.r
        blocks = pr.blocks
        if pr.skip:
            if pr.trim > pr.last:
                return None
        elif not (0 <= ack_rel0 <= pr.last and (
                (not blocks and pr.trim == pr.last)
                or (len(blocks) == 1 and blocks[0][1] == pr.last
                    and blocks[0][0] <= pr.trim < pr.last))):
            return None
        front = _before(val, pr.last)  # last_reassem_seq before each event
        gap = ~isdata & (val > front)
        rb, exact = n, False
        if isdata.any():
            if ep.no_data_acked():
                rb = _first_of(pos, isdata, n)
            else:
                rb = _first_of(pos, isdata & (start > front), n)  # a hole
                if self.excessive:
                    bmin = blocks[0][0] if blocks else pr.last  # the block never starts lower
                    big = isdata & (np.maximum(front, val) - bmin > self.excessive)
                    rb = min(rb, _first_of(pos, big, n))
            exact = rb < n
        if clean and not pr.skip:
            rb = min(rb, _kth(pos, gap, ep.gap_t - ep.gap, n))
        return rb, front, gap, exact

    def _sim(self, conn: Any, ep: _Endpoint, ev: "_Events", stop: int, clean: bool) -> int:
        """One reassembler's events before row `stop`, exactly as the per-packet model does
        them: payload and ACKs that reach a block through the model's own code, runs of
        ACKs below every block in bulk. On a stand-in (`_Scratch`, a clone) it finds the
        row whose gap would add a G (returned; else `stop`); on the real connection it is
        only run up to a row before that.
        """
        r = ep.r
        nev = int(np.searchsorted(ev.pos, stop))
        i = 0
        while i < nev:
            if ev.isdata[i]:
                row = int(ev.pos[i])
                ev.set_state(ep, row)
                self._data_sent(conn, ep, int(ev.start[i]), int(ev.ln[ev.nth[i]]))
                i += 1
                continue
            j = min(int(ev.next_data[i]), nev)
            while i < j:
                above = [b[0] for b in r.blocks if b[1] > r.last]
                if r.trim <= r.last and all(x > r.last for x in above):
                    k = i + _first(ev.start[i:j] >= min(above, default=_INF), j - i)
                    if k > i:
                        hit = self._ack_run(conn, ep, ev, i, k, clean)
                        if hit is not None:
                            return hit
                        i = k
                        continue
                row = int(ev.pos[i])
                ev.set_state(ep, row)
                self._ack_received(conn, ep, int(ev.start[i]))
                if ep.gap >= ep.gap_t:
                    return row
                i += 1
        ev.set_state(ep, stop - 1)
        return stop

    def _ack_run(self, conn: Any, ep: _Endpoint, ev: "_Events", i: int, k: int,
                 clean: bool) -> int | None:
        """ACK events [i, k) that stay below every block not yet delivered (and trim_seq is
        not above last_reassem_seq): each only moves the frontier (a gap when it passes
        last_reassem_seq) and the trim point. Returns the row of the gap that would add a
        G, without applying anything, if there is one."""
        r = ep.r
        a = ev.start[i:k]
        amax = int(a.max())
        if amax <= r.trim:
            return None  # all at or below trim_seq: nothing happens
        if not r.skip:
            gap = a > _before(a, r.last)
            cnt = int(np.count_nonzero(gap))
            if cnt:
                if clean:
                    need = ep.gap_t - ep.gap
                    if cnt >= need:
                        return int(ev.pos[i + int(np.flatnonzero(gap)[need - 1])])
                    ep.gap += cnt
                if clean or self.report_gaps_for_partial:
                    conn.missed += max(r.last, amax) - r.last
        if amax > r.last:
            r.last = amax
        r.trim = amax
        r.blocks = [b for b in r.blocks if b[1] > amax]
        return None

    # -- connections: creation, splits, end -------------------------------------------------

    def _new_conn(self, s: int, c: int, t: int, frame: int, flags: int, sport: int, dport: int,
                  rec: np.ndarray, i: int) -> _Conn:
        part = self._parts.get(s, -1) + 1
        self._parts[s] = part
        prev = self._conns.get(s)
        reason = prev.removed_reason if prev is not None else None
        v = int(rec["ip_version"][i])
        addr = (_addr(rec["src"][i], v), sport, _addr(rec["dst"][i], v), dport)
        conn = _Conn(s, part, reason if part else None, c, t, frame, addr)
        # TCPAnalyzer::WantConnection: a connection that starts without a SYN, or with a
        # SYN-ACK, is flipped when its source port looks like a server's.
        if (not flags & F_SYN or flags & F_ACK) and sport in self.likely:
            if dport in self.likely:
                flip = not flags & F_SYN and sport < dport
            else:
                flip = True
            if flip:
                conn.flip()
        return conn

    def _expired(self, conn: _Conn, t: int) -> str | None:
        """Would one of Zeek's timers have removed `conn` before a packet at time `t`?"""
        if conn.delete_at is not None and t >= conn.delete_at:
            return "closed"
        if conn.reset_at is not None and t >= conn.reset_at and conn.is_active:
            return "reset"
        if (conn.attempt_at is not None and t >= conn.attempt_at and conn.is_active
                and conn.orig.state in (SYN_SENT, SYN_ACK_SENT) and conn.resp.state == INACTIVE):
            return "attempt_timeout"
        if t >= conn.last_ns + conn.inactivity:
            return "inactivity_timeout"
        if (conn.is_active and conn.orig.state == INACTIVE and conn.resp.state == INACTIVE
                and t > conn.last_ns + TCP_CONNECTION_LINGER):
            return "expired"
        return None

    def _reuse(self, conn: _Conn, flags: int, seq: int) -> str | None:
        """TCPSessionAdapter::IsReuse for a SYN on an existing connection."""
        orig, resp = conn.orig, conn.resp
        conn_orig = orig
        if flags & F_ACK:
            if orig.state != INACTIVE:
                return None
            conn_orig = resp
        if not (orig.did_close or resp.did_close):
            if seq == conn_orig.start & M32:
                return None
            if (not flags & F_ACK and conn_orig.state == SYN_ACK_SENT and resp.state == INACTIVE
                    and seq == resp.start & M32):
                return None
        return "reuse"

    def _finish(self, conn: _Conn) -> None:
        self._done.append(_result(conn, self))

    # -- the per-packet model (TCPAnalyzer::DeliverPacket + TCPSessionAdapter::Process) ------

    def _process(self, conn: _Conn, is_orig: bool, t: int, flags: int, seq: int, ack: int,
                 length: int, full: bool, win: int, ip_len: int) -> None:
        ep = conn.orig if is_orig else conn.resp
        peer = ep.peer
        syn, fin, rst, ackf = flags & F_SYN, flags & F_FIN, flags & F_RST, flags & F_ACK
        # SetPartialStatus
        if is_orig:
            if not conn.first_seen & 1:
                conn.is_partial = (not syn) or bool(ackf)
        elif not conn.first_seen & 2 and not conn.is_partial:
            conn.is_partial = not syn
        seg_len = length + (1 if syn else 0) + (1 if fin else 0) - (length if rst else 0)
        end = (seq + seg_len) & M32
        # init_endpoint
        st = ep.state
        if st == INACTIVE:
            if syn:
                ep.start = ep.ack_seq = seq
                ep.last_seq = end
            else:
                ep.start = ep.ack_seq = (seq - 1) & M32
                ep.last_seq = seq
        elif st in (SYN_SENT, SYN_ACK_SENT):
            if syn and seq != ep.start & M32:
                ep.init_seqs(seq, end)
        elif st in (ESTABLISHED, PARTIAL):
            if syn:
                ep.init_seqs(seq, end)
        elif st == RESET:
            if syn and ep.prev_state == INACTIVE:
                ep.init_seqs(seq, end)
        rel_seq, underflow = _relative(ep, seq, ep.last_seq, ep.seq_wraps)
        # update_history
        nbits = (1 if syn else 0) + (1 if fin else 0) + (1 if rst else 0)
        if nbits > 1:
            if fin and rst:
                conn.check_hist(ep, H_FIN_RST, "I")
            else:
                conn.check_hist(ep, H_MULTI, "Q")
        elif nbits == 1:
            if syn:
                code = "H" if ackf else "S"
                if conn.check_hist(ep, H_SYN, code) and rel_seq != ep.h_syn:
                    conn.add_hist(ep, code)
                ep.h_syn = rel_seq
            elif fin:
                if conn.check_hist(ep, H_FIN, "F") and (rel_seq + length) & M64 != ep.h_fin:
                    conn.add_hist(ep, "F")
                ep.h_fin = (rel_seq + length) & M64
            else:
                if conn.check_hist(ep, H_RST, "R") and rel_seq != ep.h_rst:
                    conn.add_hist(ep, "R")
                ep.h_rst = rel_seq
        elif length:
            conn.check_hist(ep, H_DATA, "D")
        elif ackf:
            conn.check_hist(ep, H_ACK, "A")
        # update_window: a zero window (scaling a zero keeps it zero)
        if win == 0 and not rst and peer.state != CLOSED and ep.state != RESET:
            conn.scaled(ep, "W")
        if not conn.both_closed():
            conn.last_ns = t
        if fin:
            ep.fin_cnt += 1
            ep.fin_seq = (rel_seq + seg_len) & M64
        if rst:
            ep.rst_cnt += 1
        rel_ack = 0
        if ackf:
            if peer.state == INACTIVE:
                rel_ack = 1
                peer.start = peer.ack_seq = peer.last_seq = (ack - 1) & M32
            else:
                rel_ack, aunder = _relative(peer, ack, peer.ack_seq, peer.ack_wraps)
                if aunder:
                    rel_ack = 0
                elif not rst:
                    delta_ack = _s32(ack - peer.ack_seq)
                    if not (ack == 0 and delta_ack > TOO_LARGE_SEQ_DELTA) and delta_ack > 0:
                        peer.update_ack_seq(ack)
        # update_last_seq
        delta_last = _s32(end - ep.last_seq)
        if (syn or rst) and (delta_last > TOO_LARGE_SEQ_DELTA or delta_last < -TOO_LARGE_SEQ_DELTA):
            pass
        elif fin and ep.last_seq == (ep.start + 1) & M32:
            ep.update_last_seq(end)
        elif ep.state == RESET:
            pass
        elif delta_last > 0:
            ep.update_last_seq(end)
        elif length > 0:
            conn.scaled(ep, "T")
        do_close, gen_event = self._state_machine(conn, ep, peer, t, seq, ack, length, delta_last,
                                                  is_orig, flags)
        if ackf:
            self._ack_received(conn, peer, rel_ack)
        if length > 0 and not rst and not underflow:
            rel_data = (rel_seq + 1) & M64 if syn else rel_seq
            if full:
                self._data_sent(conn, ep, rel_data, length)
        self._check_eof(conn, ep)
        if do_close:
            self._closed(conn, ep, ep.peer, gen_event)
        # ConnSize: the sender's counters (they follow the roles through any flip, zeek#5047).
        ep.pkts += 1
        ep.ip_bytes += ip_len

    def _state_machine(self, conn: _Conn, ep: _Endpoint, peer: _Endpoint, t: int, seq: int,
                       ack: int, length: int, delta_last: int, is_orig: bool,
                       flags: int) -> tuple[bool, bool]:
        syn, fin, rst, ackf = flags & F_SYN, flags & F_FIN, flags & F_RST, flags & F_ACK
        do_close = gen_event = False
        st = ep.state
        if st == INACTIVE:
            if syn:
                if is_orig:
                    conn.set_state(ep, SYN_ACK_SENT if ackf else SYN_SENT)
                    conn.attempt_at = t + TCP_ATTEMPT_DELAY
                else:
                    if ackf:
                        pass
                    elif peer.state == SYN_ACK_SENT and seq == ep.start & M32:
                        # a SYN / SYN-ACK reversal: flip the roles, establish
                        conn.is_partial = False
                        conn.flip()
                        conn.set_state(peer, ESTABLISHED)
                        conn.first_seen |= 1
                    if peer.state == SYN_SENT:
                        conn.set_state(peer, ESTABLISHED)
                    conn.set_state(ep, ESTABLISHED)
            if fin:
                conn.set_state(ep, CLOSED)
                do_close = gen_event = True
            if rst:
                conn.set_state(ep, RESET)
                is_reject = False
                if is_orig:
                    if peer.state == ESTABLISHED:
                        is_reject = True
                elif peer.state in (SYN_SENT, SYN_ACK_SENT):
                    is_reject = True
                do_close = True
                gen_event = not is_reject
            if ep.state == INACTIVE:
                if not is_orig and length == 0 and conn.orig.state == SYN_SENT:
                    pass
                elif ackf and peer.state == ESTABLISHED:
                    conn.set_state(ep, ESTABLISHED)
                    conn.is_partial = False
                    conn.first_seen |= 1 if is_orig else 2
                else:
                    conn.set_state(ep, PARTIAL)
        elif st in (SYN_SENT, SYN_ACK_SENT):
            if fin:
                conn.set_state(ep, CLOSED)
                do_close = gen_event = True
            if rst:
                conn.set_state(ep, RESET)
                conn.is_active = False  # ConnectionReset
                do_close = True
        elif st in (ESTABLISHED, PARTIAL):
            if syn and st == PARTIAL and peer.state == INACTIVE and not ackf:
                conn.set_state(ep, SYN_SENT)
            if fin and not rst:
                conn.set_state(ep, CLOSED)
                if peer.state == RESET and peer.prev_state == CLOSED:
                    conn.set_state(peer, CLOSED)
                do_close = gen_event = True
            if rst:
                conn.set_state(ep, RESET)
                do_close = True
                if peer.state != RESET or peer.prev_state != ESTABLISHED:
                    conn.is_active = False
        elif st == CLOSED:
            if rst and peer.state != CLOSED:
                conn.set_state(ep, RESET)
                if not ep.did_close:
                    do_close = True
                conn.reset_at = t + TCP_RESET_DELAY
        # RESET: nothing changes
        # CheckPIA_FirstPacket (with the direction the packet arrived with)
        conn.first_seen |= 1 if is_orig else 2
        return do_close, gen_event

    # -- reassembly (gaps) and closing --------------------------------------------------------

    def _clean(self, ep: _Endpoint) -> bool:
        def c(a: _Endpoint) -> bool:
            return a.state == ESTABLISHED or (a.state == CLOSED and a.prev_state == ESTABLISHED)
        return c(ep) and c(ep.peer)

    def _gap(self, conn: _Conn, ep: _Endpoint, length: int) -> None:
        clean = self._clean(ep)
        if clean:
            conn.scaled(ep, "G")
        if clean or self.report_gaps_for_partial:
            conn.missed += length

    def _ack_received(self, conn: _Conn, ep: _Endpoint, seq: int) -> None:
        """TCP_Reassembler::AckReceived on the endpoint whose data `seq` acknowledges."""
        r = ep.r
        if ep.fin_cnt > 0 and seq >= ep.fin_seq:
            seq = (ep.fin_seq - 1) & M64
        if seq <= r.trim:
            return
        if seq > r.last:
            self._undelivered(conn, ep, seq)
        r.trim_to(seq)
        if r.blocks and r.blocks[0][0] == r.last:
            # DataBlockList::Trim: a block the skipped data made deliverable is delivered.
            self._block_inserted(ep)
        self._check_eof(conn, ep)

    def _block_inserted(self, ep: _Endpoint) -> None:
        """Reassembler::BlockInserted for a block that starts at last_reassem_seq."""
        r = ep.r
        r.deliver()
        if ep.no_data_acked() and ep.size() > TCP_MAX_INITIAL_WINDOW and r.last > r.trim:
            r.trim_to(r.last)

    def _undelivered(self, conn: _Conn, ep: _Endpoint, up_to: int) -> None:
        r = ep.r
        if up_to <= 2 and conn.is_partial:
            return
        if not r.skip:
            for lo, hi in r.blocks:
                if hi <= r.last or lo < r.last:
                    continue
                if lo >= up_to:
                    break
                self._gap(conn, ep, lo - r.last)
                r.last = lo
                self._block_inserted(ep)
            if up_to > r.last:
                self._gap(conn, ep, up_to - r.last)
        if up_to > r.last:
            r.last = up_to

    def _data_sent(self, conn: _Conn, ep: _Endpoint, seq: int, length: int) -> None:
        r = ep.r
        if r.skip:
            return
        ack = ep.ack_rel()
        upper = seq + length
        if seq < ack:
            if upper <= ack:
                return
            seq = ack
        if upper <= r.trim:
            return
        if seq < r.trim:
            seq = r.trim
        r.insert(seq, upper)
        if seq <= r.last < upper:
            self._block_inserted(ep)
        if ep.no_data_acked() and r.blocks and r.blocks[-1][1] - r.last > \
                TCP_MAX_ABOVE_HOLE_WITHOUT_ANY_ACKS:
            r.blocks = []
            r.skip = True
        if self.excessive and r.size() > self.excessive:
            r.blocks = []
            r.skip = True

    def _data_pending(self, ep: _Endpoint) -> bool:
        r = ep.r
        if r.skip:
            return False
        delivered = ep.start + r.last
        last = (ep.seq_wraps << 32) + ep.last_seq
        if last < delivered:
            return False
        if delivered != last - 1 and delivered != last:
            return True
        if ep.state != RESET and ep.peer.r.undelivered():
            return True
        return False

    def _check_eof(self, conn: _Conn, ep: _Endpoint) -> None:
        r = ep.r
        if (not r.did_eof and (ep.fin_cnt > 0 or ep.state in (CLOSED, RESET))
                and not self._data_pending(ep)):
            r.did_eof = True
            if conn.close_deferred:
                self._closed(conn, ep, ep.peer, conn.deferred_gen)
                conn.close_deferred = False

    def _closed(self, conn: _Conn, ep: _Endpoint, peer: _Endpoint, gen_event: bool) -> None:
        """TCPSessionAdapter::ConnectionClosed."""
        if self._data_pending(ep):
            conn.close_deferred = True
            if not conn.deferred_gen:
                conn.deferred_gen = gen_event
            return
        conn.close_deferred = False
        if ep.did_close:
            return
        ep.did_close = True
        if ep.state == RESET or peer.did_close or peer.state == INACTIVE:
            if ep.prev_state != INACTIVE or peer.state != INACTIVE:
                if conn.deferred_gen:
                    gen_event = True
                    conn.deferred_gen = False
                if gen_event:
                    conn.is_active = False  # ConnectionFinished
            conn.attempt_at = None  # CancelTimers
            at = conn.last_ns + TCP_CLOSE_DELAY
            if conn.delete_at is None or at < conn.delete_at:
                conn.delete_at = at

    # -- results -------------------------------------------------------------------------

    def rows(self) -> list[ZeekConn]:
        """Every Zeek connection so far (the open ones as they stand), in stream order."""
        out = self._done + [_result(c, self) for c in self._conns.values()]
        out.sort(key=lambda z: (z.stream, z.part))
        return out

    def fields(self) -> dict[int, ZeekConn]:
        """Per tcp.stream, the Zeek connection its first packet started (``zeek_rows`` set)."""
        rows = self.rows()
        counts: dict[int, int] = {}
        for z in rows:
            counts[z.stream] = counts.get(z.stream, 0) + 1
        out: dict[int, ZeekConn] = {}
        for z in rows:
            if z.part == 0:
                out[z.stream] = _replace(z, zeek_rows=counts[z.stream])
        return out


@dataclass(slots=True)
class _Cols:
    stream: np.ndarray
    c: np.ndarray
    ts: np.ndarray
    frame: np.ndarray
    flags: np.ndarray
    seq: np.ndarray
    ack: np.ndarray
    plen: np.ndarray
    pcap: np.ndarray
    win: np.ndarray
    ip_len: np.ndarray
    hdr_ok: np.ndarray
    bad: np.ndarray
    sport: np.ndarray
    dport: np.ndarray
    row: np.ndarray  #: index of each row in the batch's records (rows Zeek never sees are left out)



# --- the fast path's helpers ---------------------------------------------------------------

_NOP, _BAD, _GOOD, _SLOW = 0, 1, 2, 3  # row classes of the fast path (_feed_vectorized)
_IN_ORDER, _SIMULATED, _OTHER = range(3)  # how the fast path takes a reassembler's events
_INF = 1 << 70
_FAST_STATES = (INACTIVE, PARTIAL, ESTABLISHED)
#: A run's sequence numbers must stay this close to where the endpoint is, so that numpy's
#: unwrapping (each number against the previous) is Zeek's (each against the running maximum).
_WINDOW = 1 << 30


class _Group:
    """The columns the fast path reads, for a batch or (`take`) one stream's rows of it."""

    __slots__ = ("cls", "c", "ts", "frame", "plen", "full", "ackf", "ack", "end", "win0",
                 "ip_len")

    def __init__(self, cols: _Cols | None = None, cls: np.ndarray | None = None,
                 flags: np.ndarray | None = None) -> None:
        if cols is None:
            return
        plen = cols.plen.astype(np.int64)
        self.cls = cls
        self.c = cols.c
        self.ts = cols.ts
        self.frame = cols.frame
        self.plen = plen
        self.full = cols.pcap >= cols.plen
        self.ackf = (flags & F_ACK) != 0
        self.ack = cols.ack.astype(np.int64)
        self.end = (cols.seq.astype(np.int64) + plen) & M32
        self.win0 = cols.win == 0
        self.ip_len = cols.ip_len.astype(np.int64)

    def take(self, idx: np.ndarray) -> "_Group":
        out = _Group()
        for name in self.__slots__:
            setattr(out, name, getattr(self, name)[idx])
        return out


class _Scratch:
    """A connection stand-in for planning a run on cloned endpoints: it counts gaps and
    missed bytes, adds no history."""

    __slots__ = ("is_partial", "missed", "close_deferred", "deferred_gen")

    def __init__(self, conn: _Conn) -> None:
        self.is_partial = conn.is_partial
        self.missed = 0
        self.close_deferred = self.deferred_gen = False

    def scaled(self, ep: _Endpoint, kind: str) -> None:
        if kind == "G":
            ep.gap += 1


class _Events:
    """One reassembler's events in a run, in row order (for _sim): payload of its side
    (first byte, length) and the peer's ACKs (relative), with what it takes to put the
    endpoint's acknowledged and sent frontiers where they are at any row."""

    __slots__ = ("pos", "isdata", "start", "ln", "nth", "next_data", "ack_rows", "ack_top",
                 "a0", "snd_rows", "snd_top", "l0")

    def __init__(self, pos: np.ndarray, isdata: np.ndarray, start: np.ndarray,
                 ln: np.ndarray | None, ack_rows: np.ndarray, ua: np.ndarray, a0: int,
                 sent: tuple | None, l0: int) -> None:
        self.pos, self.isdata, self.start, self.ln = pos, isdata, start, ln
        self.nth = np.cumsum(isdata) - 1  # which payload event (index into ln)
        at = np.flatnonzero(isdata)
        k = np.searchsorted(at, np.arange(len(pos)))
        self.next_data = np.append(at, len(pos))[k]  # the next payload event (or the end)
        self.ack_rows = ack_rows
        self.ack_top = np.maximum.accumulate(ua) if len(ua) else ua
        self.a0 = a0
        empty = np.zeros(0, dtype=np.int64)
        self.snd_rows, self.snd_top = sent if sent is not None else (empty, empty)
        self.l0 = l0

    def set_state(self, ep: _Endpoint, row: int) -> None:
        """ep's highest acknowledged and highest sent numbers as they are after `row`."""
        k = int(np.searchsorted(self.ack_rows, row, "right"))
        top = max(self.a0, int(self.ack_top[k - 1])) if k else self.a0
        ep.ack_wraps, ep.ack_seq = top >> 32, top & M32
        k = int(np.searchsorted(self.snd_rows, row, "right"))
        top = max(self.l0, int(self.snd_top[k - 1])) if k else self.l0
        ep.seq_wraps, ep.last_seq = top >> 32, top & M32


def _s32v(x: np.ndarray) -> np.ndarray:
    """_s32 for an int64 array."""
    return ((x + 0x80000000) & M32) - 0x80000000


def _unwrap(vals: np.ndarray, last32: int, last64: int) -> np.ndarray:
    """32-bit numbers as 64-bit ones: the first against (last32, last64), each next one
    against the one before (the nearest unwrapping, as TCP_Endpoint's wrap counting)."""
    out = np.empty(len(vals), dtype=np.int64)
    out[0] = last64 + int(_s32(int(vals[0]) - last32))
    if len(vals) > 1:
        np.cumsum(_s32v(np.diff(vals)), out=out[1:])
        out[1:] += out[0]
    return out


def _before(vals: np.ndarray, start: int) -> np.ndarray:
    """The running maximum before each element: max(start, vals[:i])."""
    out = np.empty(len(vals), dtype=np.int64)
    if len(vals):
        out[0] = start
        np.maximum(np.maximum.accumulate(vals[:-1]), start, out=out[1:])
    return out


def _settle_blocks(r: _Reasm, val: np.ndarray, isdata: np.ndarray, front: np.ndarray,
                   ack_rel0: int) -> None:
    """The block list after a run of in-order events (the fast path's "simple" reassembler:
    at most one block, everything delivered, so it always ends at last_reassem_seq).

    An ACK at or past the frontier removes the block; the first payload that is then
    inserted (its end beyond the acknowledged point and the trim point) starts a new one at
    the frontier. The caller sets the block's end.
    """
    ack = ~isdata
    acked = np.where(ack, val, -1)
    trim = _before(acked, r.trim)  # trim_seq before each event
    emptied = np.flatnonzero(ack & (val > trim) & (val >= front))
    after = int(emptied[-1]) + 1 if emptied.size else 0
    clamp = np.maximum(trim, _before(acked, ack_rel0))  # max(ack_rel, trim_seq) before each
    ins = np.flatnonzero(isdata[after:] & (val[after:] > clamp[after:]))
    if ins.size:
        if emptied.size or not r.blocks:
            r.blocks = [[int(front[after + int(ins[0])]), 0]]
    elif emptied.size:
        r.blocks = []


def _first(mask: np.ndarray, default: int) -> int:
    k = int(mask.argmax()) if len(mask) else 0
    return k if len(mask) and mask[k] else default


def _first_of(idx: np.ndarray, mask: np.ndarray, default: int) -> int:
    """The position (from `idx`) of the first row where `mask` holds, else `default`."""
    k = _first(mask, -1)
    return default if k < 0 else int(idx[k])


def _kth(idx: np.ndarray, mask: np.ndarray | None, k: int, default: int) -> int:
    """The position (from `idx`) of the k-th row (1-based) where `mask` holds, else `default`."""
    hits = idx if mask is None else idx[mask]
    return int(hits[k - 1]) if len(hits) >= k else default


def _relative(ep: _Endpoint, cur: int, last: int, wraps: int) -> tuple[int, bool]:
    """get_relative_seq: (relative number as Zeek's uint64, underflow)."""
    delta = _s32(cur - last)
    if delta < 0:
        if wraps and cur > last:
            wraps -= 1
    elif delta > 0:
        if cur < last:
            wraps += 1
    if wraps == 0:
        d = _s32(cur - ep.start)
        return d & M64, d < 0
    return ep.rel(cur, wraps), False


def _addr(raw: np.ndarray, version: int) -> str:
    b = bytes(raw)
    return socket.inet_ntoa(b[:4]) if version == 4 else str(ipaddress.IPv6Address(b))


def _uid(stream: int, part: int, ts: int, addr: tuple) -> str:
    """A deterministic Zeek-style uid: 'C' + base62 of a hash of the connection's identity."""
    h = hashlib.blake2b(f"{stream}/{part}/{ts}/{addr}".encode(), digest_size=12).digest()
    n = int.from_bytes(h, "big")
    alphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
    out = []
    while n:
        n, r = divmod(n, 62)
        out.append(alphabet[r])
    return "C" + "".join(reversed(out))


def _result(conn: _Conn, tracker: ZeekTracker) -> ZeekConn:
    o, r = conn.orig, conn.resp
    a = conn.addr_row  # first packet's (src, sport, dst, dport)
    first_is_orig = conn.orig_c == conn.c0
    if first_is_orig:
        oh, op, rh, rp = a
    else:
        rh, rp, oh, op = a
    history = "".join(conn.hist)
    osz, rsz = o.size(), r.size()
    dur = conn.last_ns - conn.start_ns
    return ZeekConn(
        stream=conn.stream, uid=_uid(conn.stream, conn.part, conn.start_ns, a),
        ts_ns=conn.start_ns, orig_h=oh, orig_p=op, resp_h=rh, resp_p=rp,
        duration_ns=dur if dur > 0 else None, orig_bytes=osz if dur > 0 else None,
        resp_bytes=rsz if dur > 0 else None,
        conn_state=conn_state(o.state, r.state, osz, rsz, history),
        local_orig=is_local(oh), local_resp=is_local(rh), missed_bytes=conn.missed,
        history=history, orig_pkts=o.pkts, orig_ip_bytes=o.ip_bytes, resp_pkts=r.pkts,
        resp_ip_bytes=r.ip_bytes, orig_state=STATE_NAMES[o.state],
        resp_state=STATE_NAMES[r.state], orig_size=osz, resp_size=rsz,
        first_frame=conn.first_frame,
        last_frame=conn.last_frame, part=conn.part, split_reason=conn.split_reason,
    )


def _replace(z: ZeekConn, **kw: Any) -> ZeekConn:
    import dataclasses

    return dataclasses.replace(z, **kw)
