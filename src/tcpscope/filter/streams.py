"""``--stream``: a connection named by its index or by its endpoints.

    --stream 3                          tcp.stream 3
    --stream 10.0.0.1:80                every connection with that endpoint
    --stream 10.0.0.2:5000-10.0.0.1:80  the connection(s) between the two, either order
    --stream '[fd00::1]:80'             IPv6 in brackets

A 4-tuple can name several streams when ports are reused: all of them are
selected (per-stream commands that show one connection say which).
"""
from __future__ import annotations

import ipaddress
from dataclasses import dataclass

import numpy as np

from .fields import Columns

__all__ = ["Endpoint", "StreamSpec", "StreamSpecError", "parse_stream"]


class StreamSpecError(ValueError):
    """A --stream value that is neither a number nor ADDR:PORT[-ADDR:PORT]."""


@dataclass(frozen=True)
class Endpoint:
    version: int
    addr: bytes          #: 16 bytes, as the records hold addresses (IPv4 in the first 4)
    port: int
    text: str

    def __str__(self) -> str:
        return self.text


@dataclass(frozen=True)
class StreamSpec:
    """One --stream value: `number`, or one or two endpoints."""

    number: int | None = None
    endpoints: tuple[Endpoint, ...] = ()
    text: str = ""

    def __str__(self) -> str:
        return self.text

    # -- packets
    def packet_mask(self, cols: Columns) -> np.ndarray:
        if self.number is not None:
            return cols.tracked & (cols.ann["stream"] == self.number)
        rec = cols.rec
        src = [_at(rec, "src", "sport", e) for e in self.endpoints]
        dst = [_at(rec, "dst", "dport", e) for e in self.endpoints]
        if len(self.endpoints) == 1:
            return cols.tcp & (src[0] | dst[0])
        return cols.tcp & ((src[0] & dst[1]) | (src[1] & dst[0]))

    # -- connection records (conns)
    def conn_match(self, row: dict) -> bool:
        if self.number is not None:
            return row["stream"] == self.number
        ends = {(row["client"], row["client_port"]), (row["server"], row["server_port"])}
        want = {(_canonical(e), e.port) for e in self.endpoints}
        return want <= {(_canonical_text(a), p) for a, p in ends}


def _canonical(e: Endpoint) -> str:
    return str(ipaddress.ip_address(e.addr[:4] if e.version == 4 else e.addr))


def _canonical_text(text: str) -> str:
    return str(ipaddress.ip_address(text))


def _at(rec: np.ndarray, addr: str, port: str, e: Endpoint) -> np.ndarray:
    n = 4 if e.version == 4 else 16
    want = np.frombuffer(e.addr[:n], np.uint8)
    same = np.all(rec[addr][:, :n] == want, axis=1)
    return (rec["ip_version"] == e.version) & same & (rec[port] == e.port)


def _endpoint(text: str, whole: str) -> Endpoint:
    if text.startswith("["):
        end = text.find("]")
        if end < 0 or not text[end + 1:].startswith(":"):
            raise StreamSpecError(f"--stream {whole}: an IPv6 endpoint is [ADDR]:PORT")
        host, port = text[1:end], text[end + 2:]
    else:
        host, sep, port = text.rpartition(":")
        if not sep or ":" in host:
            raise StreamSpecError(f"--stream {whole}: {text!r} is not ADDR:PORT "
                                  "(an IPv6 address goes in brackets: [ADDR]:PORT)")
    try:
        addr = ipaddress.ip_address(host)
    except ValueError:
        raise StreamSpecError(f"--stream {whole}: {host!r} is not an IP address") from None
    if not port.isdigit() or int(port) > 65535:
        raise StreamSpecError(f"--stream {whole}: {port!r} is not a port number")
    raw = addr.packed.ljust(16, b"\0")
    return Endpoint(addr.version, raw, int(port), text)


def parse_stream(text: str) -> StreamSpec:
    """A --stream value (StreamSpecError if it is neither form)."""
    t = text.strip()
    if t.isdigit():
        return StreamSpec(number=int(t), text=t)
    # split at the '-' between the endpoints: outside brackets, after a port
    depth = 0
    for i, ch in enumerate(t):
        depth += ch == "["
        depth -= ch == "]"
        if ch == "-" and depth == 0:
            a, b = _endpoint(t[:i], t), _endpoint(t[i + 1:], t)
            if a.version != b.version:
                raise StreamSpecError(f"--stream {t}: the endpoints are of different IP versions")
            return StreamSpec(endpoints=(a, b), text=t)
    return StreamSpec(endpoints=(_endpoint(t, t),), text=t)
