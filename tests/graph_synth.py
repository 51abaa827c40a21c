"""A synthetic bulk transfer of any length, as a pcap, for the graph tests and measurements.

One connection, captured at the sender: a handshake (MSS 1448, window scale 7,
SACK permitted), then `segments` data segments of 1448 bytes sent every
`gap_us` µs; the receiver's ACKs arrive `rtt_us` later, one per two segments.
Every `loss_every`-th segment is lost after the capture point: the receiver
answers each later segment with a duplicate ACK carrying one SACK block, and the
sender retransmits the hole on the third. Every `ce_every`-th segment carries
ECN CE: the receiver's next ACK has ECE, the sender's next segment CWR. FIN
exchange at the end.

The header of every frame is the packet builder's (wire/builder.py), built once;
the fields that change (seq, ack, flags, window, the option, IP length and
checksum) are written with numpy, so a million packets take a few seconds.
Frames keep 66 bytes (Ethernet, IPv4, TCP with 12 bytes of options: timestamps or
one SACK block) and give the payload's length as the original length, as a
capture with a short snapshot length does.
"""
from __future__ import annotations

import heapq
import struct
from pathlib import Path

import numpy as np

from tcpscope.wire.builder import IPv4, TCP, Ether, Frame
from tcpscope.wire.options import Nop, Timestamp

MSS = 1448
CLIENT, SERVER = "10.1.0.1", "10.1.0.2"
ISN_C, ISN_S = 0xFFFF_0000, 0x1000_0000   # the client's seq wraps after 64 KiB
_F = {"S": 0x02, "A": 0x10, "P": 0x08, "F": 0x01, "E": 0x40, "W": 0x80}


def _events(segments: int, gap_us: int, rtt_us: int, loss_every: int, ce_every: int):
    """(t_us, from_client, seq, ack, flags, len, sack_lo, sack_hi, ce) in capture order,
    seq/ack relative (1 = the first byte after the SYN)."""
    ev = [(0, True, 0, 0, "S", 0, 0, 0, False), (rtt_us, False, 0, 1, "SA", 0, 0, 0, False),
          (rtt_us + 1, True, 1, 1, "A", 0, 0, 0, False)]
    start = rtt_us + 10
    arrivals: list = []           # (t at the sender, seq, len, is_ce) of what reaches the receiver
    lost: set[int] = set()
    for i in range(segments):
        t = start + i * gap_us
        seq = 1 + i * MSS
        ce = ce_every > 0 and i % ce_every == ce_every // 2
        ev.append((t, True, seq, 1, "A", MSS, 0, 0, ce))
        if loss_every > 0 and i % loss_every == loss_every // 2:
            lost.add(seq)
        else:
            heapq.heappush(arrivals, (t + rtt_us, seq, MSS, ce))
    # the receiver, as the sender's capture sees its ACKs
    # one hole at a time: losses are far apart compared with the segments in flight
    rcv_nxt, above, n_since, block_lo = 1, {}, 0, 0
    dupacks: dict[int, int] = {}
    ece = False
    out_acks = []
    while arrivals:
        t, seq, ln, ce = heapq.heappop(arrivals)
        ece |= ce
        if seq == rcv_nxt:
            filled = bool(above)
            rcv_nxt += ln
            while rcv_nxt in above:
                rcv_nxt = above.pop(rcv_nxt)
            n_since += 1
            if n_since >= 2 or filled or not arrivals:
                out_acks.append((t, rcv_nxt, 0, 0, ece))
                ece = False
                n_since = 0
        elif seq > rcv_nxt:
            if not above:
                block_lo = seq
            above[seq] = seq + ln
            out_acks.append((t, rcv_nxt, block_lo, seq + ln, ece))
            ece = False
            dupacks[rcv_nxt] = dupacks.get(rcv_nxt, 0) + 1
            if dupacks[rcv_nxt] == 3 and rcv_nxt in lost:   # fast retransmit of the hole
                lost.discard(rcv_nxt)
                ev.append((t + 1, True, rcv_nxt, 1, "A", MSS, 0, 0, False))
                heapq.heappush(arrivals, (t + 1 + rtt_us, rcv_nxt, MSS, False))
    for t, ack, lo, hi, e in out_acks:
        ev.append((t, False, 1, ack, "AE" if e else "A", 0, lo, hi, False))
    ev.sort(key=lambda e: e[0])
    # the sender's first segment after an ECE carries CWR (RFC 3168 §6.1.2)
    cwr = False
    for i, e in enumerate(ev):
        if not e[1] and "E" in e[4]:
            cwr = True
        elif cwr and e[1] and e[5] > 0:
            ev[i] = (*e[:4], "AW", *e[5:])
            cwr = False
    end = max(e[0] for e in ev) + 10
    last = 1 + segments * MSS
    ev += [(end, True, last, 1, "FA", 0, 0, 0, False),
           (end + rtt_us, False, 1, last + 1, "FA", 0, 0, 0, False),
           (end + rtt_us + 1, True, last + 1, 2, "A", 0, 0, 0, False)]
    ev.sort(key=lambda e: e[0])
    return ev


def _sum16(cols: np.ndarray) -> np.ndarray:
    w = cols.astype(np.int64).reshape(len(cols), -1, 2)
    return (w[:, :, 0] << 8 | w[:, :, 1]).sum(axis=1)


def _fold(s: np.ndarray) -> np.ndarray:
    while (s >> 16).any():
        s = (s & 0xFFFF) + (s >> 16)
    return s


def bulk_pcap(path: Path, segments: int, *, gap_us: int = 10, rtt_us: int = 1000,
              loss_every: int = 0, ce_every: int = 0) -> Path:
    """Write the transfer to `path` (nanosecond pcap, Ethernet); returns the path."""
    ev = _events(segments, gap_us, rtt_us, loss_every, ce_every)
    n = len(ev)
    cols = list(zip(*ev))
    t_us = np.array(cols[0], np.int64)
    from_c = np.array(cols[1], bool)
    seq = np.array(cols[2], np.int64)
    ack = np.array(cols[3], np.int64)
    flags = np.array([sum(_F[c] for c in f) for f in cols[4]], np.uint16)
    length = np.array(cols[5], np.int64)
    sack_lo, sack_hi = np.array(cols[6], np.int64), np.array(cols[7], np.int64)
    ce = np.array(cols[8], bool)

    tmpl = Frame(Ether(), IPv4(src=CLIENT, dst=SERVER),
                 TCP(sport=40000, dport=5001, options=(Nop(), Nop(), Timestamp(1, 0)))).build()
    assert len(tmpl) == 66
    hdr = np.frombuffer(tmpl, np.uint8)
    frames = np.tile(hdr, (n, 1))
    frames[~from_c, :34] = np.frombuffer(Frame(Ether(), IPv4(src=SERVER, dst=CLIENT), TCP()).build()[:34],
                                         np.uint8)                                  # Ethernet + IPv4 addresses of the server
    frames[~from_c, 34:36] = np.frombuffer(struct.pack("!H", 5001), np.uint8)
    frames[~from_c, 36:38] = np.frombuffer(struct.pack("!H", 40000), np.uint8)

    def put32(col: int, v: np.ndarray) -> None:
        frames[:, col:col + 4] = (v.astype(np.uint32).astype(">u4")).view(np.uint8).reshape(n, 4)

    def put16(col: int, v: np.ndarray) -> None:
        frames[:, col:col + 2] = (v.astype(np.uint16).astype(">u2")).view(np.uint8).reshape(n, 2)

    isn = np.where(from_c, ISN_C, ISN_S)
    pisn = np.where(from_c, ISN_S, ISN_C)
    put32(38, (isn + seq) & 0xFFFFFFFF)
    put32(42, np.where((flags & 0x10) != 0, (pisn + ack) & 0xFFFFFFFF, 0))
    frames[:, 47] = flags & 0xFF
    frames[:, 46] = (8 << 4) | ((flags >> 8) & 1)
    put16(48, np.where(from_c, 512, 65535))                   # raw windows; scale 7 after the SYNs
    put16(16, 20 + 32 + length)                               # IP total length
    frames[:, 15] = np.where(ce, 3, 2)                        # ECN: ECT(0), or CE
    put16(18, np.arange(n) & 0xFFFF)                          # IP ID
    # options: SYNs carry MSS, SACK-permitted, window scale; SACK blocks; else timestamps
    syn = (flags & 0x02) != 0
    opt_syn = np.frombuffer(bytes([2, 4, MSS >> 8, MSS & 0xFF, 4, 2, 3, 3, 7, 1, 1, 1]), np.uint8)
    frames[syn, 54:66] = opt_syn
    has_sack = sack_hi > 0
    frames[has_sack, 54:58] = np.frombuffer(bytes([1, 1, 5, 10]), np.uint8)
    lo = ((ISN_C + sack_lo) & 0xFFFFFFFF).astype(np.uint32).astype(">u4").view(np.uint8).reshape(n, 4)
    hi = ((ISN_C + sack_hi) & 0xFFFFFFFF).astype(np.uint32).astype(">u4").view(np.uint8).reshape(n, 4)
    frames[has_sack, 58:62] = lo[has_sack]
    frames[has_sack, 62:66] = hi[has_sack]
    ts = np.where(~syn & ~has_sack)[0]
    put_ts = (t_us // 1000 + 1).astype(np.uint32).astype(">u4").view(np.uint8).reshape(n, 4)
    frames[ts, 58:62] = put_ts[ts]
    # IPv4 header checksum
    frames[:, 24:26] = 0
    put16(24, ~_fold(_sum16(frames[:, 14:34])) & 0xFFFF)

    # TCP checksum over the pseudo-header and the 32-byte header (right for the frames
    # without payload; the others have uncaptured payload, which nobody can verify)
    frames[:, 50:52] = 0
    tcp_len = 32 + length
    s = _sum16(frames[:, 26:34]) + 6 + tcp_len + _sum16(frames[:, 34:66])
    put16(50, ~_fold(s) & 0xFFFF)
    # pcap: nanosecond magic, then per frame a 16-byte record header and 66 bytes
    t_ns = 1_700_000_000_000_000_000 + t_us * 1000
    rec = np.zeros((n, 16 + 66), np.uint8)
    rh = np.zeros((n, 4), "<u4")
    rh[:, 0], rh[:, 1] = t_ns // 10**9, t_ns % 10**9
    rh[:, 2], rh[:, 3] = 66, 66 + length
    rec[:, :16] = rh.view(np.uint8).reshape(n, 16)
    rec[:, 16:] = frames
    with open(path, "wb") as f:
        f.write(struct.pack("<IHHiIII", 0xA1B23C4D, 2, 4, 0, 0, 262144, 1))
        f.write(rec.tobytes())
    return path
