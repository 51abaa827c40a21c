"""A slow, literal Python model of the Wireshark mode, for differential tests.

It follows tshark 4.0.17's dissect_tcp / tcp_analyze_sequence_number the plain
way: a newest-first list of unacked segments scanned whole on every ACK, 32-bit
arithmetic everywhere. The native engine keeps its segment lists sorted and
takes shortcuts; tests/test_analysis_hypothesis.py checks that both give the
same answer on random segment sequences. Only the fields tshark prints are
modelled (no evidence, no summaries).
"""
from __future__ import annotations

from dataclasses import dataclass, field

M32 = 0xFFFFFFFF
FIN, SYN, RST, PSH, ACK = 0x01, 0x02, 0x04, 0x08, 0x10
(RETX, LOST, ACKLOST, KA, DUP, ZW, ZWP, ZWPACK, KAACK, OOO, FAST, WUPD, WFULL, REUSED,
 SPUR) = (1 << i for i in range(15))


def sd(a: int, b: int) -> int:
    d = (a - b) & M32
    return d - (1 << 32) if d & 0x80000000 else d


def gt(a, b): return sd(a, b) > 0
def lt(a, b): return sd(a, b) < 0
def le(a, b): return sd(a, b) <= 0


@dataclass
class Seg:
    frame: int
    seq: int
    nextseq: int
    ts: int


@dataclass
class Flow:
    base_seq: int = 0
    base_set: bool = False
    win_scale: int = -1
    window: int = M32
    lastack: int = 0
    lastacktime: int = 0
    lastnondupack: int = 0
    dupacknum: int = 0
    nextseq: int = 0
    nextseqtime: int = 0
    maxseqtobeacked: int = 0
    lastsegmentflags: int = 0
    valid_bif: bool = True
    push_bytes_sent: int = 0
    push_set_last: bool = False
    is_first_ack: bool = False
    sacks: list = field(default_factory=list)
    segs: list = field(default_factory=list)  # newest first


@dataclass
class Conv:
    stream: int
    flows: tuple = field(default_factory=lambda: (Flow(), Flow()))
    mru_syn: int = 0
    first_rtt: int = 0


class Model:
    def __init__(self) -> None:
        self.convs: dict = {}
        self.n = 0

    def feed(self, frame: int, ts: int, src: bytes, sport: int, dst: bytes, dport: int, seq: int,
             ack: int, flags: int, win: int, seglen: int, wscale: int | None, sacks: list) -> dict:
        key = (min((src, sport), (dst, dport)), max((src, sport), (dst, dport)))
        d = 0 if (src, sport) > (dst, dport) else 1  # Wireshark's flow1 / flow2
        c = self.convs.get(key)
        if c is None:
            c = self.convs[key] = Conv(self.n)
            self.n += 1
        fwd, rev = c.flows[d], c.flows[d ^ 1]
        ta = 0
        has_ta = False
        if flags & (SYN | ACK) == SYN and fwd.base_set and seq != fwd.base_seq:
            c = self.convs[key] = Conv(self.n)
            self.n += 1
            fwd, rev = c.flows[d], c.flows[d ^ 1]
            ta |= REUSED
            has_ta = True
        if flags & (SYN | ACK) == SYN | ACK and fwd.base_set and seq != fwd.base_seq:
            fwd.base_seq = seq
            ta |= REUSED
            has_ta = True
        fwd.sacks = []
        out = {"stream": c.stream}
        res = self._analyze(c, fwd, rev, frame, ts, seq, ack, flags, win, seglen, ta, has_ta)
        ta, has_ta, dupnum, acked, rtt, bif, push = res
        out["seq"] = (seq - fwd.base_seq) & M32
        out["ack"] = (ack - rev.base_seq) & M32 if flags & ACK else ack
        out["window_size"] = win << fwd.win_scale if not flags & SYN and fwd.win_scale >= 0 else win
        if flags & SYN:
            if not flags & ACK:
                c.mru_syn = ts
            fwd.is_first_ack = True
        if flags & (SYN | ACK) == ACK and c.mru_syn and not c.first_rtt:
            c.first_rtt = ts - c.mru_syn
        if flags & (SYN | ACK) == ACK:
            fwd.is_first_ack = False
        if wscale is not None:
            fwd.win_scale = min(wscale, 14)
        fwd.sacks = list(sacks[:3])
        out["flags"] = ta
        if has_ta:
            if acked:
                out["acks_frame"] = acked
                if rtt:
                    out["ack_rtt"] = rtt
            if c.first_rtt:
                out["initial_rtt"] = c.first_rtt
            if bif:
                out["bytes_in_flight"] = bif
                out["push_bytes_sent"] = push
            if dupnum:
                out["duplicate_ack_num"] = dupnum
        if flags & SYN:
            if fwd.win_scale == -1:
                fwd.win_scale = rev.win_scale = -2
            elif flags & ACK and rev.win_scale == -2:
                fwd.win_scale = -2
        return out

    def _analyze(self, c, fwd, rev, frame, ts, seq, ack, flags, win, seglen, ta, has_ta):
        dupnum = 0
        if not fwd.base_set:
            fwd.base_seq = seq if flags & SYN else (seq - 1) & M32
            fwd.base_set = True
        if not rev.base_set and flags & ACK:
            rev.base_seq = (ack - 1) & M32
            rev.base_set = True
        if flags & ACK:
            rev.valid_bif = True
        nsfr = not flags & (SYN | FIN | RST)
        goto = False
        if seglen == 1 and seq == fwd.nextseq and rev.window == 0:
            ta |= ZWP
            goto = True
        if not goto:
            if win == 0 and nsfr:
                ta |= ZW
            if fwd.nextseq and gt(seq, fwd.nextseq) and not flags & RST:
                ta |= LOST
                fwd.valid_bif = False
            if seglen in (0, 1) and seq == (fwd.nextseq - 1) & M32 and nsfr:
                ta |= KA
            if seglen == 0 and win and win != fwd.window and seq == fwd.nextseq and ack == fwd.lastack and nsfr:
                ta |= WUPD
            if seglen > 0 and rev.win_scale != -1 and nsfr:
                sh = 0 if rev.is_first_ack else (0 if rev.win_scale == -2 else rev.win_scale)
                if (seq + seglen) & M32 == (rev.lastack + ((rev.window << sh) & M32)) & M32:
                    ta |= WFULL
            same = seglen == 0 and seq == fwd.nextseq and ack == fwd.lastack and nsfr
            if same and win and win == fwd.window and rev.lastsegmentflags & KA:
                ta |= KAACK
            elif same and win == 0 and fwd.window == 0 and rev.lastsegmentflags & ZWP:
                ta |= ZWPACK
            elif same and win and win == fwd.window:
                fwd.dupacknum = 1 if fwd.dupacknum == M32 else fwd.dupacknum + 1
                dupnum = fwd.dupacknum
                ta |= DUP
        if ta:
            has_ta = True
        if ack != fwd.lastack:
            fwd.lastnondupack = frame
            fwd.dupacknum = 0
        if rev.maxseqtobeacked and gt(ack, rev.maxseqtobeacked) and flags & ACK:
            has_ta = True
            if lt(rev.maxseqtobeacked, rev.nextseq):
                rev.maxseqtobeacked = rev.nextseq
                ta |= ACKLOST
            else:
                if rev.dupacknum == 0:
                    ta |= ACKLOST
                rev.dupacknum = M32
        if (seglen > 0 or flags & (SYN | FIN)) and not ta & KA:
            sna = bool(fwd.nextseq) and lt(seq, fwd.nextseq)
            if seglen > 1 and (fwd.nextseq - 1) & M32 == seq:
                sna = False
            if seglen > 0 and rev.lastack and le((seq + seglen) & M32, rev.lastack):
                ta |= SPUR | RETX
            else:
                t = (ts - rev.lastacktime) & 0xFFFFFFFFFFFFFFFF
                if sna and rev.dupacknum >= 2 and rev.lastack == seq and t < 20_000_000:
                    ta |= FAST | RETX
                else:
                    t = (ts - fwd.nextseqtime) & 0xFFFFFFFFFFFFFFFF
                    thr = c.first_rtt if c.first_rtt else 3_000_000
                    end = (seq + seglen + (1 if flags & (SYN | FIN) else 0)) & M32
                    if sna and t < thr and fwd.nextseq != end:
                        ta |= OOO
                    elif sna:
                        ta |= RETX
            if ta:
                has_ta = True
        nextseq = (seq + seglen) & M32
        if (seglen or flags & (SYN | FIN)) and len(fwd.segs) < 10000:
            if flags & (SYN | FIN):
                nextseq = (nextseq + 1) & M32
            fwd.segs.insert(0, Seg(frame, seq, nextseq, ts))
        if gt(nextseq, fwd.nextseq) or not fwd.nextseq:
            if not ta & ZWP:
                fwd.nextseq, fwd.nextseqtime = nextseq, ts
        if seq == fwd.maxseqtobeacked or not fwd.maxseqtobeacked:
            if not ta & ZWP:
                fwd.maxseqtobeacked = fwd.nextseq
        fwd.window, fwd.lastack, fwd.lastacktime, fwd.lastsegmentflags = win, ack, ts, ta
        acked = rtt = 0
        keep = []
        for s in rev.segs:  # newest first; the last match (the oldest) wins
            if ack == s.nextseq:
                acked, rtt = s.frame, ts - s.ts
                continue
            if gt(ack, s.seq) and le(ack, s.nextseq):
                s.seq = ack
                keep.append(s)
            elif gt(s.nextseq, ack):
                keep.append(s)
        rev.segs = keep
        if acked:
            has_ta = True
        bif = push = 0
        if seglen and fwd.segs and fwd.valid_bif:
            first = min((s.seq - fwd.base_seq) & M32 for s in fwd.segs)
            last = max((s.nextseq - fwd.base_seq) & M32 for s in fwd.segs)
            inflight = (last - first) & M32
            for le_, re_ in rev.sacks:
                inflight = (inflight - ((re_ - le_) & M32)) & M32
            if 0 < inflight < 2_000_000_000:
                bif = inflight - (1 if flags & (SYN | FIN) else 0)
            if flags & PSH:
                fwd.push_bytes_sent = seglen if fwd.push_set_last else fwd.push_bytes_sent + seglen
                fwd.push_set_last = True
            elif fwd.push_set_last:
                fwd.push_bytes_sent, fwd.push_set_last = seglen, False
            else:
                fwd.push_bytes_sent += seglen
            push = fwd.push_bytes_sent
            has_ta = True
        return ta, has_ta, dupnum, acked, rtt, bif, push
