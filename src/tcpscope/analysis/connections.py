"""Connections as Python values: the one decoder of the engine's connection rows.

The native engine (analysis/_engine.c) tracks connections: it keys them by the
address/port pair like Wireshark's conversations (direction-free, no idle
split), numbers them in order of first appearance (tcp.stream), starts a new
one on the same 4-tuple when a SYN brings a new ISN (reused ports), and decides
the roles: the client is the SYN sender, or the SYN-ACK's receiver, or, when
neither was seen, the side that sent first (``role_guessed``). It summarises
each in a ``CONN_DTYPE`` row; this module is the only code that turns such a
row into Python values: a typed `Connection`, or the same as a plain dict
(`Connection.as_dict`, for JSON). Addresses are written by `wire.text`.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ..wire.text import format_address
from .annotation import FLAG_NAMES, SIDE

__all__ = ["Side", "Connection", "SIGNALS", "decode", "decode_all", "connection_dicts",
           "sent_by_server"]

#: Per-side counts of improved mode's signals (CONN_DTYPE fields of the same names; 0 in
#: wireshark mode; docs/analysis.md "Signals").
SIGNALS = ("ecn_ce", "ecn_ece", "ecn_cwr", "urgent", "above_mss", "dsack", "challenge_acks",
           "tlp_count", "rto_count")


@dataclass(frozen=True, slots=True)
class Side:
    """What one endpoint sent and offered."""

    addr: str
    port: int
    packets: int
    bytes: int              #: TCP payload bytes sent, every copy counted
    unique_bytes: int       #: payload bytes counted once each (what the application wrote)
    retrans_bytes: int      #: payload bytes of the segments flagged retransmission
    isn: int | None         #: from its SYN / SYN-ACK; None when no SYN was seen
    mss: int | None         #: offered on its SYN
    wscale: int | None      #: window scale shift offered on its SYN
    sack_permitted: bool
    timestamps: bool
    tfo: bool
    ecn_setup: bool
    saw_syn: bool           #: sent a SYN (without ACK)
    saw_synack: bool
    saw_fin: bool
    saw_rst: bool
    signals: dict[str, int]  #: improved mode's counts (`SIGNALS`): ECN, URG, D-SACK, ...

    @property
    def saw_handshake(self) -> bool:
        """It sent a SYN or a SYN-ACK (so its options are known)."""
        return self.saw_syn or self.saw_synack


@dataclass(frozen=True, slots=True)
class Connection:
    """One TCP connection (Wireshark's tcp.stream), as the engine summarises it."""

    stream: int
    client: Side
    server: Side
    role_guessed: bool      #: no SYN seen: the client is the side that sent first
    first_ts_ns: int
    last_ts_ns: int
    first_frame: int
    last_frame: int
    irtt_ns: int | None     #: SYN to the third handshake packet
    ecn_negotiated: bool    #: SYN with ECE+CWR and SYN-ACK with ECE (RFC 3168 §6.1.1)
    reused_ports: bool      #: began with a SYN on a 4-tuple already used
    prev_stream: int | None  #: the stream it replaced on that 4-tuple
    flag_counts: dict[str, int]  #: frames carrying each analysis flag

    @property
    def duration_ns(self) -> int:
        return self.last_ts_ns - self.first_ts_ns

    def as_dict(self) -> dict[str, Any]:
        """Plain values for people and JSON: index 0 / ``client_side`` is the client."""
        def side(s: Side) -> dict[str, Any]:
            return {
                "packets": s.packets, "bytes": s.bytes, "unique_bytes": s.unique_bytes,
                "retrans_bytes": s.retrans_bytes, "isn": s.isn, "mss": s.mss,
                "wscale": s.wscale, "sack_permitted": s.sack_permitted,
                "timestamps": s.timestamps, "tfo": s.tfo, "ecn_setup": s.ecn_setup,
                "saw_syn": s.saw_syn, "saw_synack": s.saw_synack, "saw_fin": s.saw_fin,
                "saw_rst": s.saw_rst, "signals": dict(s.signals),
            }

        return {
            "stream": self.stream,
            "client": self.client.addr, "client_port": self.client.port,
            "server": self.server.addr, "server_port": self.server.port,
            "role_guessed": self.role_guessed,
            "first_ts": self.first_ts_ns / 1e9, "last_ts": self.last_ts_ns / 1e9,
            "first_frame": self.first_frame, "last_frame": self.last_frame,
            "irtt": None if self.irtt_ns is None else self.irtt_ns / 1e9,
            "ecn_negotiated": self.ecn_negotiated, "reused_ports": self.reused_ports,
            "prev_stream": self.prev_stream,
            "client_side": side(self.client), "server_side": side(self.server),
            "flag_counts": dict(self.flag_counts),
        }


def _side(row: np.void, i: int, version: int) -> Side:
    bits = int(row["side_flags"][i])
    addr = row["client_addr"] if i == 0 else row["server_addr"]
    port = row["client_port"] if i == 0 else row["server_port"]
    return Side(
        addr=format_address(addr, version) or "?",
        port=int(port),
        packets=int(row["pkts"][i]),
        bytes=int(row["bytes"][i]),
        unique_bytes=int(row["unique_bytes"][i]),
        retrans_bytes=int(row["retrans_bytes"][i]),
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
        signals={name: int(row[name][i]) for name in SIGNALS},
    )


def decode(row: np.void) -> Connection:
    """One ``CONN_DTYPE`` row as a `Connection`."""
    v = int(row["ip_version"])
    irtt = int(row["irtt_ns"])
    prev = int(row["prev_stream"])
    return Connection(
        stream=int(row["stream"]),
        client=_side(row, 0, v),
        server=_side(row, 1, v),
        role_guessed=bool(row["role_guessed"]),
        first_ts_ns=int(row["first_ts"]),
        last_ts_ns=int(row["last_ts"]),
        first_frame=int(row["first_frame"]),
        last_frame=int(row["last_frame"]),
        irtt_ns=irtt if irtt >= 0 else None,
        ecn_negotiated=int(row["ecn_setup"]) == 3,
        reused_ports=bool(row["reused_ports"]),
        prev_stream=prev if prev >= 0 else None,
        flag_counts={name: int(row["flag_counts"][b]) for b, name in enumerate(FLAG_NAMES)},
    )


def decode_all(rows: np.ndarray) -> list[Connection]:
    """Every row of a ``CONN_DTYPE`` array, in order."""
    return [decode(row) for row in rows]


def connection_dicts(rows: np.ndarray) -> list[dict[str, Any]]:
    """Every row as `Connection.as_dict` gives it."""
    return [decode(row).as_dict() for row in rows]


def sent_by_server(row: np.void, records: np.ndarray) -> np.ndarray:
    """For records of this connection: True where the server sent it, by the roles the
    connection row gives (the final ones: the engine may swap guessed roles late, and the
    annotations of rows before that say ``from_server`` for the roles as they were)."""
    n = 4 if int(row["ip_version"]) == 4 else 16
    client = np.asarray(row["client_addr"], dtype=np.uint8)[:n]
    from_client = ((records["src"][:, :n] == client).all(axis=1)
                   & (records["sport"] == int(row["client_port"])))
    return ~from_client
