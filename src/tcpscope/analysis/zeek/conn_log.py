"""What Zeek writes to conn.log for a TCP connection: the row and the rules that fill it.

`ZeekConn` is one conn.log row (with what tcpscope adds: stream, split reason, frames).
`conn_state` maps the pair of endpoint states to S0 / SF / REJ / ... as
base/protocols/conn/main.zeek does; `is_local` is Site::is_local_addr for
``local_orig`` / ``local_resp``; `make_uid` gives a deterministic Zeek-style uid. The
endpoint states are Zeek's own (TCP_Endpoint.h); model.py moves endpoints through them.
"""
from __future__ import annotations

import functools
import hashlib
import ipaddress
from dataclasses import dataclass
from typing import Any

__all__ = ["INACTIVE", "SYN_SENT", "SYN_ACK_SENT", "PARTIAL", "ESTABLISHED", "CLOSED", "RESET",
           "STATE_NAMES", "ZeekConn", "conn_state", "is_local", "make_uid"]

# Endpoint states (TCP_Endpoint.h), in Zeek's numbering.
INACTIVE, SYN_SENT, SYN_ACK_SENT, PARTIAL, ESTABLISHED, CLOSED, RESET = range(7)
STATE_NAMES = ("INACTIVE", "SYN_SENT", "SYN_ACK_SENT", "PARTIAL", "ESTABLISHED", "CLOSED", "RESET")

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


def make_uid(stream: int, part: int, ts: int, addr: tuple) -> str:
    """A deterministic Zeek-style uid: 'C' + base62 of a hash of the connection's identity."""
    h = hashlib.blake2b(f"{stream}/{part}/{ts}/{addr}".encode(), digest_size=12).digest()
    n = int.from_bytes(h, "big")
    alphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
    out = []
    while n:
        n, r = divmod(n, 62)
        out.append(alphabet[r])
    return "C" + "".join(reversed(out))
