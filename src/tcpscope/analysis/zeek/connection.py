"""One Zeek TCP connection's state: Connection, its two Endpoints and their Reassemblers.

The parts of Zeek's Connection, TCPSessionAdapter, TCP_Endpoint, TCP_Reassembler and
ConnSize that decide what conn.log says: endpoint states and sequence numbers (with
32-bit wrap counting), the history letters with Zeek's rules (once per kind, or on a new
sequence number; C G T W on the 1st, 10th, 100th ... occurrence), roles and their
flips, timers, gaps and counters. model.py drives them packet by packet.
"""
from __future__ import annotations

from .conn_log import INACTIVE, RESET, SYN_ACK_SENT, SYN_SENT

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

# History masks (TCP_Endpoint::HistoryMasks); the responder's are shifted by 16.
H_SYN, H_FIN, H_RST, H_FIN_RST, H_DATA, H_ACK, H_MULTI, H_CORRUPT = (
    0x1, 0x2, 0x4, 0x8, 0x10, 0x20, 0x40, 0x80)

_HANDSHAKE = (INACTIVE, SYN_SENT, SYN_ACK_SENT)


class Reassembler:
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

    def clone(self) -> "Reassembler":
        out = Reassembler()
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


class Endpoint:
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
        self.r = Reassembler()
        self.pkts = self.ip_bytes = 0
        self.peer: Endpoint = self

    def clone(self) -> "Endpoint":
        """A copy to try things on (its own reassembler; the same peer)."""
        out = Endpoint.__new__(Endpoint)
        for name in Endpoint.__slots__:
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


class Connection:
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
        self.orig = Endpoint(True)
        self.resp = Endpoint(False)
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
    def check_hist(self, ep: Endpoint, mask: int, code: str) -> bool:
        if not ep.is_orig:
            mask <<= 16
            code = code.lower()
        if self.hist_seen & mask:
            return True
        self.hist_seen |= mask
        self.hist.append(code)
        return False

    def add_hist(self, ep: Endpoint, code: str) -> None:
        self.hist.append(code if ep.is_orig else code.lower())

    def scaled(self, ep: Endpoint, kind: str) -> None:
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

    def set_state(self, ep: Endpoint, new: int) -> None:
        if new != ep.state:
            if new not in _HANDSHAKE and ep.state in _HANDSHAKE and ep.peer.state in _HANDSHAKE:
                self.inactivity = TCP_INACTIVITY_TIMEOUT
            ep.prev_state = ep.state
            ep.state = new

    def _swap_roles(self) -> None:
        """Swap originator and responder (their ConnSize counters go with them)."""
        self.orig, self.resp = self.resp, self.orig
        self.orig.is_orig, self.resp.is_orig = True, False
        self.orig_c ^= 1
        fs = self.first_seen
        self.first_seen = (2 if fs & 1 else 0) | (1 if fs & 2 else 0)
        self.is_partial = False

    def flip(self) -> None:
        """Connection::FlipRoles: swap roles, add '^'."""
        self._swap_roles()
        self.hist.append("^")

    def flip_after_synack(self) -> None:
        """The flip of a connection that began with a SYN-ACK, on the first ACK or data after it.

        Zeek (since 5.1, zeek#2191) then swaps the roles as if it had flipped from the
        start: the history so far changes case behind a leading '^', and the
        history masks change sides with it.
        """
        self._swap_roles()
        self.hist = ["^"] + [h.swapcase() for h in self.hist]
        hs = self.hist_seen
        self.hist_seen = ((hs & 0xFFFF) << 16) | (hs >> 16)

    def both_closed(self) -> bool:
        return self.orig.did_close and self.resp.did_close
