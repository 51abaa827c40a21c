"""Helpers for the analysis tests: records from keywords, and scripted connections.

`tcp_record(**kw)` makes one RECORD_DTYPE row directly (fast; for hypothesis).
`Script` writes a conversation segment by segment with relative numbers on top
of ISNs near the 2^32 wrap, builds real frames with wire.builder, dissects
them, and can write a pcap for tshark (tests/test_analysis_wireshark.py runs
every scenario through tshark too)::

    s = Script()
    s.c("S", 0, 0, opts=(Mss(1460), WindowScale(7)))
    s.s("S.", 0, 1, opts=(Mss(1460), WindowScale(7)), ms=10)
    s.c(".", 1, 1, ms=10)
    ann = s.run()                   # one annotation per frame
"""
from __future__ import annotations

import ipaddress
import struct
from pathlib import Path

import numpy as np

from tcpscope.analysis.annotation import FLAG_BIT, flag_names
from tcpscope.analysis.engine import Analyzer
from tcpscope.wire import dissect_frames
from tcpscope.wire.builder import IPv4, IPv6, TCP, Ether, Frame, tcp_flags
from tcpscope.wire.record import KIND, OPTION, RECORD_DTYPE

ISN_C = 0xFFFF_FF00  # near the wrap: relative numbers must not care
ISN_S = 0xFFFF_FFF0


def tcp_record(
    *,
    src: str = "10.0.0.1",
    dst: str = "10.0.0.2",
    sport: int = 40000,
    dport: int = 80,
    seq: int = 0,
    ack: int = 0,
    flags: int | str = ".",
    win: int = 65535,
    length: int = 0,
    mss: int | None = None,
    wscale: int | None = None,
    sack_perm: bool = False,
    sack: tuple[tuple[int, int], ...] = (),
    timestamps: bool = False,
) -> np.ndarray:
    """One TCP record (a 1-element RECORD_DTYPE array), as wire/ would dissect it."""
    r = np.zeros(1, dtype=RECORD_DTYPE)
    a, b = ipaddress.ip_address(src), ipaddress.ip_address(dst)
    r["ip_version"] = a.version
    r["src"][0, : len(a.packed)] = np.frombuffer(a.packed, np.uint8)
    r["dst"][0, : len(b.packed)] = np.frombuffer(b.packed, np.uint8)
    r["kind"] = KIND["TCP"]
    r["ip_proto"] = 6
    r["sport"], r["dport"] = sport, dport
    r["seq"], r["ack"] = seq & 0xFFFFFFFF, ack & 0xFFFFFFFF
    r["tcp_flags"] = tcp_flags(flags)
    r["win"] = win
    r["payload_len"] = r["payload_cap"] = length
    r["tcp_hlen"] = 20
    present = 0
    if mss is not None:
        r["mss"] = mss
        present |= OPTION["MSS"]
    if wscale is not None:
        r["wscale"] = wscale
        present |= OPTION["WSCALE"]
    if sack_perm:
        present |= OPTION["SACK_PERM"]
    if timestamps:
        present |= OPTION["TIMESTAMP"]
    if sack:
        present |= OPTION["SACK"]
        r["sack_count"] = len(sack)
        for i, (left, right) in enumerate(sack[:4]):
            r["sack"][0, 2 * i] = left & 0xFFFFFFFF
            r["sack"][0, 2 * i + 1] = right & 0xFFFFFFFF
    r["opt_present"] = present
    return r


def feed_records(records: list[np.ndarray], times_ns: list[int], mode: str = "wireshark",
                 analyzer: Analyzer | None = None) -> np.ndarray:
    recs = np.concatenate(records) if records else np.zeros(0, RECORD_DTYPE)
    an = analyzer or Analyzer(mode)
    frames = np.arange(1, len(recs) + 1, dtype=np.int64)
    return an.feed(recs, np.asarray(times_ns, np.int64), frames)


def feed_in_batches(an: Analyzer, recs: np.ndarray, times: np.ndarray, frames: np.ndarray,
                    cuts: list[int]) -> np.ndarray:
    """Feed `recs` to `an` in batches of the sizes in `cuts` (cycled); the annotations joined."""
    parts, i, k = [], 0, 0
    while i < len(recs):
        n = cuts[k % len(cuts)]
        parts.append(an.feed(recs[i:i + n], times[i:i + n], frames[i:i + n]))
        i += n
        k += 1
    return np.concatenate(parts)


def flags_of(ann_row) -> set[str]:
    return set(flag_names(int(ann_row["flags"])))


def has(ann_row, flag: str) -> bool:
    return bool(int(ann_row["flags"]) & (1 << FLAG_BIT[flag]))


def evidence(ann_row, flag: str) -> list[int]:
    bit = FLAG_BIT[flag]
    n = int(ann_row["n_evidence"])
    return [int(ann_row["evidence_frame"][i]) for i in range(n) if ann_row["evidence_flag"][i] == bit]


def write_pcap(path: Path, frames: list[tuple[int, bytes]], linktype: int = 1) -> None:
    """A nanosecond pcap (tests do not depend on capture/ for this)."""
    with open(path, "wb") as f:
        f.write(struct.pack("<IHHiIII", 0xA1B23C4D, 2, 4, 0, 0, 262144, linktype))
        for ts, data in frames:
            f.write(struct.pack("<IIII", ts // 10**9, ts % 10**9, len(data), len(data)) + data)


class Script:
    """A scripted conversation between a client C and a server S."""

    def __init__(self, *, c: str = "10.0.0.1", s: str = "10.0.0.2", cport: int = 40000,
                 sport: int = 80, isn_c: int = ISN_C, isn_s: int = ISN_S, start_ns: int = 1_700_000_000_000_000_000):
        v = ipaddress.ip_address(c).version
        self.ip_c = IPv4(src=c, dst=s) if v == 4 else IPv6(src=c, dst=s)
        self.ip_s = IPv4(src=s, dst=c) if v == 4 else IPv6(src=s, dst=c)
        self.cport, self.sport = cport, sport
        self.isn_c, self.isn_s = isn_c, isn_s
        self.t = start_ns
        self.frames: list[tuple[int, bytes]] = []

    def _add(self, from_client: bool, flags: str, seq: int, ack: int, length: int, win: int,
             opts: tuple, ms: float, abs_seq: bool) -> int:
        self.t += int(ms * 1_000_000)
        if from_client:
            ip, sp, dp, isn, pisn = self.ip_c, self.cport, self.sport, self.isn_c, self.isn_s
        else:
            ip, sp, dp, isn, pisn = self.ip_s, self.sport, self.cport, self.isn_s, self.isn_c
        raw_seq = seq if abs_seq else isn + seq
        acks = "." in flags or "A" in flags
        raw_ack = ack if abs_seq or not acks else pisn + ack
        tcp = TCP(sport=sp, dport=dp, seq=raw_seq & 0xFFFFFFFF, ack=raw_ack & 0xFFFFFFFF,
                  flags=flags, win=win, options=tuple(opts))
        data = Frame(Ether(), ip, tcp, payload=b"x" * length).build()
        self.frames.append((self.t, data))
        return len(self.frames)

    def c(self, flags: str, seq: int, ack: int, *, length: int = 0, win: int = 1000, opts: tuple = (),
          ms: float = 1, abs_seq: bool = False) -> int:
        """Client -> server, relative seq/ack (on ISN_C / ISN_S); returns the frame number."""
        return self._add(True, flags, seq, ack, length, win, opts, ms, abs_seq)

    def s(self, flags: str, seq: int, ack: int, *, length: int = 0, win: int = 1000, opts: tuple = (),
          ms: float = 1, abs_seq: bool = False) -> int:
        """Server -> client."""
        return self._add(False, flags, seq, ack, length, win, opts, ms, abs_seq)

    def records(self) -> np.ndarray:
        return dissect_frames([d for _, d in self.frames], 1)

    def run(self, mode: str = "wireshark", analyzer: Analyzer | None = None) -> np.ndarray:
        an = analyzer or Analyzer(mode)
        recs = self.records()
        frames = np.arange(1, len(recs) + 1, dtype=np.int64)
        return an.feed(recs, np.array([t for t, _ in self.frames], np.int64), frames)

    def pcap(self, path: Path) -> Path:
        write_pcap(path, self.frames)
        return path
