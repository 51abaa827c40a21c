"""Connections as Python objects: one `Connection` per tcp.stream.

The native engine (analysis/_engine.c) tracks connections; it keys them by the
address/port pair like Wireshark's conversations (direction-free, no idle
split), numbers them in order of first appearance (tcp.stream), starts a new
one on the same 4-tuple when a SYN brings a new ISN (reused ports), and decides
the roles: the client is the SYN sender, or the SYN-ACK's receiver, or, when
neither was seen, the side that sent first (``role_guessed``). This module
turns its summary rows (``CONN_DTYPE``) into typed objects for people and
reports.
"""
from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..analysis.annotation import FLAG_NAMES, SIDE

__all__ = ["Side", "Connection", "connections_from_rows"]


@dataclass(frozen=True, slots=True)
class Side:
    """What one endpoint sent and offered."""

    addr: str
    port: int
    packets: int
    bytes: int  #: TCP payload bytes sent
    isn: int | None  #: from its SYN / SYN-ACK; None when no SYN was seen
    mss: int | None
    wscale: int | None  #: window scale shift offered on its SYN
    sack_permitted: bool
    timestamps: bool
    tfo: bool
    ecn_setup: bool
    saw_syn: bool  #: sent a SYN (without ACK)
    saw_synack: bool
    saw_fin: bool
    saw_rst: bool


@dataclass(frozen=True, slots=True)
class Connection:
    """One TCP connection (Wireshark's tcp.stream)."""

    stream: int
    client: Side
    server: Side
    role_guessed: bool  #: no SYN seen: the client is the side that sent first
    first_ts_ns: int
    last_ts_ns: int
    first_frame: int
    last_frame: int
    irtt_ns: int | None  #: SYN to the third handshake packet
    ecn_negotiated: bool  #: SYN with ECE+CWR and SYN-ACK with ECE (RFC 3168 §6.1.1)
    reused_ports: bool  #: began with a SYN on a 4-tuple already used
    prev_stream: int | None  #: the stream it replaced on that 4-tuple
    flag_counts: dict[str, int]  #: frames carrying each analysis flag

    @property
    def duration_ns(self) -> int:
        return self.last_ts_ns - self.first_ts_ns

    def as_dict(self) -> dict[str, Any]:
        from dataclasses import asdict

        return asdict(self)


def _addr(raw: np.ndarray, version: int) -> str:
    b = bytes(raw)
    return str(ipaddress.IPv4Address(b[:4]) if version == 4 else ipaddress.IPv6Address(b))


def _side(row: np.void, i: int, version: int) -> Side:
    bits = int(row["side_flags"][i])
    addr = row["client_addr"] if i == 0 else row["server_addr"]
    port = row["client_port"] if i == 0 else row["server_port"]
    return Side(
        addr=_addr(addr, version),
        port=int(port),
        packets=int(row["pkts"][i]),
        bytes=int(row["bytes"][i]),
        isn=int(row["isn"][i]) if row["isn_known"][i] else None,
        mss=int(row["mss"][i]) if bits & SIDE["mss_seen"] else None,
        wscale=int(row["wscale"][i]) if row["wscale"][i] >= 0 else None,
        sack_permitted=bool(bits & SIDE["sack_perm"]),
        timestamps=bool(bits & SIDE["timestamps"]),
        tfo=bool(bits & SIDE["tfo"]),
        ecn_setup=bool(bits & SIDE["ecn_setup"]),
        saw_syn=bool(bits & SIDE["saw_syn"]),
        saw_synack=bool(bits & SIDE["saw_synack"]),
        saw_fin=bool(bits & SIDE["saw_fin"]),
        saw_rst=bool(bits & SIDE["saw_rst"]),
    )


def connections_from_rows(rows: np.ndarray) -> list[Connection]:
    """`Connection` objects from the engine's ``CONN_DTYPE`` rows."""
    out = []
    for row in rows:
        v = int(row["ip_version"])
        out.append(
            Connection(
                stream=int(row["stream"]),
                client=_side(row, 0, v),
                server=_side(row, 1, v),
                role_guessed=bool(row["role_guessed"]),
                first_ts_ns=int(row["first_ts"]),
                last_ts_ns=int(row["last_ts"]),
                first_frame=int(row["first_frame"]),
                last_frame=int(row["last_frame"]),
                irtt_ns=int(row["irtt_ns"]) if row["irtt_ns"] >= 0 else None,
                ecn_negotiated=int(row["ecn_setup"]) == 3,
                reused_ports=bool(row["reused_ports"]),
                prev_stream=int(row["prev_stream"]) if row["prev_stream"] >= 0 else None,
                flag_counts={name: int(row["flag_counts"][b]) for b, name in enumerate(FLAG_NAMES)},
            )
        )
    return out
