"""Per-packet views for display, and records -> Python columns for formatters.

`Packet` is what a person is shown: built from one dissected record and the
frame's bytes, with addresses as text (as tcpdump prints them), the payload,
checksum verdicts by name, and the TCP options parsed lazily (options.py).
Bulk code keeps to the records array; `records_to_columns` turns a whole
array into Python lists at once, formatting each distinct address only once.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .options import TcpOption, parse_options
from .text import format_address, format_addresses, tcp_flags_text
from .record import (
    CSUM_NAMES,
    KIND_NAMES,
    LAYER_NAMES,
    RECORD_DTYPE,
    REASON,
    REASON_NAMES,
    WARNING,
)

__all__ = ["Packet", "records_to_columns"]

_OFF_NONE = 0xFFFF
_WARNING_NAMES = tuple((name.lower(), mask) for name, mask in WARNING.items())
def records_to_columns(records: np.ndarray, fields: list[str] | tuple[str, ...] | None = None
                       ) -> dict[str, list[Any]]:
    """Columns of plain Python values, one list per record field.

    ``src`` / ``dst`` become text (None where no IP was reached); ``sack``
    becomes a list of (left, right) tuples, only the blocks stored. Extra
    names: ``flags_str`` (tcpdump letters), ``kind_name``, ``tcp_csum_verdict``,
    ``stop_reason_name``.
    """
    names = list(fields) if fields is not None else list(RECORD_DTYPE.names)
    out: dict[str, list[Any]] = {}
    for name in names:
        if name in ("src", "dst"):
            out[name] = format_addresses(records[name], records["ip_version"])
        elif name == "sack":
            counts = np.minimum(records["sack_count"], 4).tolist()
            edges = records["sack"].tolist()
            out[name] = [tuple((e[2 * k], e[2 * k + 1]) for k in range(c)) for e, c in zip(edges, counts)]
        elif name == "flags_str":
            out[name] = [tcp_flags_text(f) for f in records["tcp_flags"].tolist()]
        elif name == "kind_name":
            out[name] = [KIND_NAMES[k] for k in records["kind"].tolist()]
        elif name == "tcp_csum_verdict":
            out[name] = [CSUM_NAMES[k] for k in records["tcp_csum_status"].tolist()]
        elif name == "stop_reason_name":
            out[name] = [REASON_NAMES[k] for k in records["stop_reason"].tolist()]
        else:
            out[name] = records[name].tolist()
    return out


@dataclass(frozen=True, slots=True)
class Packet:
    """One dissected frame, for display. Build it with `Packet.from_record`."""

    frame: int  # 1-based number in the capture
    ts_ns: int
    linktype: int | None
    interface: Any  # the capture's Interface (or its index), if known
    caplen: int
    origlen: int
    kind: str  # tcp, udp, icmp, icmp6, ip, fragment, non_ip, unknown
    ip_version: int
    src: str | None
    dst: str | None
    ip_proto: int
    ttl: int
    tos: int
    ip_id: int
    ip_len: int
    ip_flags: int  # bit 0 MF, bit 1 DF, bit 2 reserved
    frag_offset: int  # 8-byte units
    sport: int  # TCP/UDP port; ICMP type
    dport: int  # TCP/UDP port; ICMP code
    flags: int
    seq: int
    ack: int
    win: int
    urg: int
    tcp_hlen: int
    payload_len: int  # as the IP length says (tcpdump's "length")
    payload: bytes  # the captured part of it
    options_bytes: bytes  # the captured TCP option bytes
    options_complete: bool  # False when the capture cut the options
    tcp_checksum: str  # ok, bad, offload, unverified
    tcp_csum: int
    tcp_csum_calc: int
    ip_checksum: str
    ip_csum: int
    ip_csum_calc: int
    warnings: tuple[str, ...]
    stop_layer: str
    stop_reason: str
    stop_off: int | None
    ethertype: int
    vlan_depth: int
    ifindex: int
    sll_pkttype: int | None
    _options: tuple[TcpOption, ...] | None = field(default=None, repr=False, compare=False)

    @classmethod
    def from_record(cls, rec: np.void, data: bytes | memoryview, frame: int, ts_ns: int = 0,
                    interface: Any = None, linktype: int | None = None,
                    origlen: int | None = None) -> Packet:
        """A view of `rec` (a RECORD_DTYPE row) over the frame's captured bytes `data`."""
        data = bytes(data)
        version = int(rec["ip_version"])
        kind = int(rec["kind"])
        l4 = int(rec["l4_off"])
        hlen = int(rec["tcp_hlen"])
        payload = b""
        if kind == 3 and l4 != _OFF_NONE and rec["stop_reason"] == 0:
            start = l4 + hlen
            payload = data[start : start + int(rec["payload_cap"])]
        opt_off = int(rec["opt_off"])
        options = b""
        if opt_off != _OFF_NONE:
            options = data[opt_off : opt_off + int(rec["opt_len"])]
        warnings = int(rec["warnings"])
        stop_off = int(rec["stop_off"])
        pkttype = int(rec["sll_pkttype"])
        return cls(
            frame=frame,
            ts_ns=int(ts_ns),
            linktype=linktype,
            interface=interface,
            caplen=len(data),
            origlen=len(data) if origlen is None else int(origlen),
            kind=KIND_NAMES[kind],
            ip_version=version,
            src=format_address(rec["src"], version),
            dst=format_address(rec["dst"], version),
            ip_proto=int(rec["ip_proto"]),
            ttl=int(rec["ip_ttl"]),
            tos=int(rec["ip_tos"]),
            ip_id=int(rec["ip_id"]),
            ip_len=int(rec["ip_len"]),
            ip_flags=int(rec["ip_flags"]),
            frag_offset=int(rec["ip_frag_off"]),
            sport=int(rec["sport"]),
            dport=int(rec["dport"]),
            flags=int(rec["tcp_flags"]),
            seq=int(rec["seq"]),
            ack=int(rec["ack"]),
            win=int(rec["win"]),
            urg=int(rec["urg"]),
            tcp_hlen=hlen,
            payload_len=int(rec["payload_len"]),
            payload=payload,
            options_bytes=options,
            options_complete=int(rec["stop_reason"]) != REASON["TRUNCATED_TCP_OPTIONS"],
            tcp_checksum=CSUM_NAMES[int(rec["tcp_csum_status"])],
            tcp_csum=int(rec["tcp_csum"]),
            tcp_csum_calc=int(rec["tcp_csum_calc"]),
            ip_checksum=CSUM_NAMES[int(rec["ip_csum_status"])],
            ip_csum=int(rec["ip_csum"]),
            ip_csum_calc=int(rec["ip_csum_calc"]),
            warnings=tuple(name for name, mask in _WARNING_NAMES if warnings & mask),
            stop_layer=LAYER_NAMES[int(rec["stop_layer"])],
            stop_reason=REASON_NAMES[int(rec["stop_reason"])],
            stop_off=None if stop_off == _OFF_NONE else stop_off,
            ethertype=int(rec["ethertype"]),
            vlan_depth=int(rec["vlan_depth"]),
            ifindex=int(rec["ifindex"]),
            sll_pkttype=None if pkttype == 0xFFFF else pkttype,
        )

    @property
    def options(self) -> tuple[TcpOption, ...]:
        """The TCP options, typed (parsed on first use)."""
        if self._options is None:
            parsed = tuple(parse_options(self.options_bytes, complete=self.options_complete))
            object.__setattr__(self, "_options", parsed)
        return self._options  # type: ignore[return-value]

    @property
    def flags_str(self) -> str:
        return tcp_flags_text(self.flags)

    @property
    def is_tcp(self) -> bool:
        return self.kind == "tcp"

    @property
    def complete(self) -> bool:
        """True when dissection reached the end of what the frame holds."""
        return self.stop_reason == "none"
