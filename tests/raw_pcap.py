"""A pcap reader for the ground-truth tests, deliberately independent of tcpscope's reader
and dissector and of the fixture makers' code: every IPv4/TCP frame of an Ethernet pcap
(µs or ns timestamps, either byte order), straight from the raw bytes.

test_ground_truth.py (the relay's truth logs) and test_kernel_states.py (the `ss`
sidecars) hold the captures and tcpscope to what these raw fields say.
"""
from __future__ import annotations

import hashlib
import socket
import struct
from dataclasses import dataclass
from pathlib import Path

__all__ = ["MOD", "Pkt", "read_pcap"]

MOD = 1 << 32


@dataclass(frozen=True)
class Pkt:
    frame: int
    ts: float  #: seconds, as the pcap has them (sec + frac * 1e-6 or 1e-9)
    ts_ns: int  #: the same time in whole nanoseconds
    src: str
    sport: int
    dst: str
    dport: int
    seq: int
    ack: int
    flags: int
    ip_id: int
    length: int  # TCP payload bytes
    options: bytes
    digest: str  # sha256 of the frame's bytes, 16 hex digits (as in the relay's truth log)

    @property
    def is_syn(self) -> bool:
        return self.flags & 0x12 == 0x02

    @property
    def is_synack(self) -> bool:
        return self.flags & 0x12 == 0x12

    def covers(self, seq: int) -> bool:
        return (seq - self.seq) % MOD < self.length

    @property
    def letters(self) -> str:
        """tcpdump's notation: S, S., P., F., R., ."""
        f = self.flags
        s = "".join(c for bit, c in ((0x02, "S"), (0x01, "F"), (0x04, "R"), (0x08, "P")) if f & bit)
        return s + ("." if f & 0x10 else "")

    def option_kinds(self) -> list[int]:
        kinds, i, o = [], 0, self.options
        while i < len(o) and o[i] != 0:
            if o[i] == 1:
                i += 1
                continue
            kinds.append(o[i])
            i += max(o[i + 1], 2) if i + 1 < len(o) else len(o)
        return kinds


def read_pcap(path: Path) -> list[Pkt]:
    """Every IPv4/TCP frame of an Ethernet pcap (µs or ns, either byte order)."""
    data = path.read_bytes()
    magic = data[:4]
    endian = "<" if magic in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1") else ">"
    nano = magic in (b"\x4d\x3c\xb2\xa1", b"\xa1\xb2\x3c\x4d")
    scale = 1e-9 if nano else 1e-6
    assert struct.unpack_from(endian + "I", data, 20)[0] == 1, "Ethernet captures only"
    out, pos, frame = [], 24, 0
    while pos + 16 <= len(data):
        sec, frac, caplen, _ = struct.unpack_from(endian + "IIII", data, pos)
        raw = data[pos + 16: pos + 16 + caplen]
        pos += 16 + caplen
        frame += 1
        if raw[12:14] != b"\x08\x00" or raw[14 + 9] != 6:
            continue
        ihl = (raw[14] & 0x0F) * 4
        total, ip_id = struct.unpack_from("!HH", raw, 16)
        t = 14 + ihl
        sport, dport, seq, ack = struct.unpack_from("!HHII", raw, t)
        doff = (raw[t + 12] >> 4) * 4
        out.append(Pkt(frame, sec + frac * scale,
                       sec * 1_000_000_000 + (frac if nano else frac * 1000),
                       socket.inet_ntoa(raw[26:30]), sport, socket.inet_ntoa(raw[30:34]), dport,
                       seq, ack, raw[t + 13], ip_id, total - ihl - doff, raw[t + 20: t + doff],
                       hashlib.sha256(raw).hexdigest()[:16]))
    return out
