"""TCP options: a full, typed parse of an option list, and the way back to bytes.

`parse_options(b)` turns the option bytes of a TCP header into a list of
frozen dataclasses, one per option, in header order. It never raises and never
repairs: where the list breaks the rules a `Malformed` marker says which
option, at which offset and why, and carries the bytes concerned. Every value
a printer needs is kept (tcpdump's text is made from these by present/).

Every option class has ``to_bytes()`` (the builder uses it) and ``length``.
The C side (`_dissect.c`) keeps a summary of the same rules in each record.

References: RFC 9293 §3.2 (EOL, NOP, MSS), RFC 7323 (window scale,
timestamps), RFC 2018 (SACK), RFC 2385 (MD5), RFC 5482 (user timeout),
RFC 5925 (TCP-AO), RFC 8684 (MPTCP), RFC 7413 (Fast Open), RFC 6994
(experimental options with an ExID).
"""
from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import ClassVar, Union

__all__ = [
    "Eol",
    "Nop",
    "Mss",
    "WindowScale",
    "SackPermitted",
    "Sack",
    "Timestamp",
    "FastOpen",
    "Mptcp",
    "Md5",
    "UserTimeout",
    "TcpAo",
    "Experimental",
    "Unknown",
    "Malformed",
    "TcpOption",
    "parse_options",
    "options_to_bytes",
    "MPTCP_SUBTYPES",
    "EXID_TFO",
]

EXID_TFO = 0xF989  #: RFC 7413 §4.1.1: the ExID of experimental Fast Open (kind 254)

#: MPTCP option subtypes (RFC 8684 §3, IANA), named as tcpdump prints them.
MPTCP_SUBTYPES = {
    0: "capable",
    1: "join",
    2: "dss",
    3: "add-addr",
    4: "rem-addr",
    5: "prio",
    6: "fail",
    7: "fast-close",
    8: "tcprst",
    15: "experimental",
}


def _tlv(kind: int, body: bytes) -> bytes:
    return bytes((kind, len(body) + 2)) + body


@dataclass(frozen=True, slots=True)
class Eol:
    """End of option list (kind 0); what follows it is padding."""

    kind: ClassVar[int] = 0

    @property
    def length(self) -> int:
        return 1

    def to_bytes(self) -> bytes:
        return b"\x00"


@dataclass(frozen=True, slots=True)
class Nop:
    """No-operation (kind 1), used for alignment."""

    kind: ClassVar[int] = 1

    @property
    def length(self) -> int:
        return 1

    def to_bytes(self) -> bytes:
        return b"\x01"


@dataclass(frozen=True, slots=True)
class Mss:
    """Maximum segment size (kind 2, RFC 9293 §3.7.1)."""

    value: int
    kind: ClassVar[int] = 2

    @property
    def length(self) -> int:
        return 4

    def to_bytes(self) -> bytes:
        return _tlv(2, struct.pack(">H", self.value))


@dataclass(frozen=True, slots=True)
class WindowScale:
    """Window scale shift count, as carried (kind 3, RFC 7323 §2; > 14 is invalid)."""

    shift: int
    kind: ClassVar[int] = 3

    @property
    def length(self) -> int:
        return 3

    def to_bytes(self) -> bytes:
        return _tlv(3, bytes((self.shift,)))


@dataclass(frozen=True, slots=True)
class SackPermitted:
    """SACK permitted (kind 4, RFC 2018 §2)."""

    kind: ClassVar[int] = 4

    @property
    def length(self) -> int:
        return 2

    def to_bytes(self) -> bytes:
        return b"\x04\x02"


@dataclass(frozen=True, slots=True)
class Sack:
    """Selective acknowledgment blocks (kind 5, RFC 2018 §3): (left, right) edges."""

    blocks: tuple[tuple[int, int], ...]
    kind: ClassVar[int] = 5

    @property
    def length(self) -> int:
        return 2 + 8 * len(self.blocks)

    def to_bytes(self) -> bytes:
        return _tlv(5, b"".join(struct.pack(">II", left, right) for left, right in self.blocks))


@dataclass(frozen=True, slots=True)
class Timestamp:
    """Timestamps (kind 8, RFC 7323 §3): TSval and TSecr."""

    val: int
    ecr: int
    kind: ClassVar[int] = 8

    @property
    def length(self) -> int:
        return 10

    def to_bytes(self) -> bytes:
        return _tlv(8, struct.pack(">II", self.val, self.ecr))


@dataclass(frozen=True, slots=True)
class FastOpen:
    """TCP Fast Open cookie (RFC 7413): kind 34, or kind 254 with ExID 0xF989.

    An empty cookie is a cookie request (tcpdump: ``tfo cookiereq``).
    """

    cookie: bytes = b""
    experimental: bool = False

    @property
    def kind(self) -> int:
        return 254 if self.experimental else 34

    @property
    def is_request(self) -> bool:
        return not self.cookie

    @property
    def length(self) -> int:
        return len(self.cookie) + (4 if self.experimental else 2)

    def to_bytes(self) -> bytes:
        if self.experimental:
            return _tlv(254, struct.pack(">H", EXID_TFO) + self.cookie)
        return _tlv(34, self.cookie)


@dataclass(frozen=True, slots=True)
class Mptcp:
    """Multipath TCP (kind 30, RFC 8684 §3).

    `data` is every byte after the length byte (its first byte holds the
    subtype in its high nibble), so any subtype can be printed from it.
    """

    data: bytes
    kind: ClassVar[int] = 30

    @property
    def subtype(self) -> int:
        return self.data[0] >> 4 if self.data else -1

    @property
    def name(self) -> str:
        """tcpdump's name of the subtype: capable, join, dss, add-addr, ..."""
        return MPTCP_SUBTYPES.get(self.subtype, f"subtype-{self.subtype}")

    @property
    def version(self) -> int | None:
        """MP_CAPABLE's version (low nibble of the subtype byte), else None."""
        return self.data[0] & 0x0F if self.subtype == 0 else None

    @property
    def length(self) -> int:
        return len(self.data) + 2

    def to_bytes(self) -> bytes:
        return _tlv(30, self.data)


@dataclass(frozen=True, slots=True)
class Md5:
    """TCP MD5 signature (kind 19, RFC 2385): the 16-byte digest."""

    digest: bytes
    kind: ClassVar[int] = 19

    @property
    def length(self) -> int:
        return len(self.digest) + 2

    def to_bytes(self) -> bytes:
        return _tlv(19, self.digest)


@dataclass(frozen=True, slots=True)
class UserTimeout:
    """User timeout (kind 28, RFC 5482 §2).

    `granularity` is the G bit (1: minutes, 0: seconds) and `timeout` the
    15-bit value. `raw` is the 16-bit field as carried (tcpdump prints
    ``uto 0x<raw> N`` and reads the granularity from the low bit).
    """

    granularity: int
    timeout: int
    kind: ClassVar[int] = 28

    @property
    def raw(self) -> int:
        return ((self.granularity & 1) << 15) | (self.timeout & 0x7FFF)

    @property
    def seconds(self) -> int:
        return self.timeout * 60 if self.granularity else self.timeout

    @property
    def length(self) -> int:
        return 4

    def to_bytes(self) -> bytes:
        return _tlv(28, struct.pack(">H", self.raw))


@dataclass(frozen=True, slots=True)
class TcpAo:
    """TCP Authentication Option (kind 29, RFC 5925 §2.2)."""

    keyid: int
    rnextkeyid: int
    mac: bytes
    kind: ClassVar[int] = 29

    @property
    def length(self) -> int:
        return len(self.mac) + 4

    def to_bytes(self) -> bytes:
        return _tlv(29, bytes((self.keyid, self.rnextkeyid)) + self.mac)


@dataclass(frozen=True, slots=True)
class Experimental:
    """An experimental option (kind 253 or 254) with its RFC 6994 ExID."""

    kind: int
    exid: int
    data: bytes = b""

    @property
    def length(self) -> int:
        return len(self.data) + 4

    def to_bytes(self) -> bytes:
        return _tlv(self.kind, struct.pack(">H", self.exid) + self.data)


@dataclass(frozen=True, slots=True)
class Unknown:
    """An option of a kind not dissected here, with its data (tcpdump: ``unknown-K 0x..``)."""

    kind: int
    data: bytes = b""

    @property
    def length(self) -> int:
        return len(self.data) + 2

    def to_bytes(self) -> bytes:
        return _tlv(self.kind, self.data)


@dataclass(frozen=True, slots=True)
class Malformed:
    """Where the option list went wrong: option `kind` at byte `offset`, and why.

    `data` holds the bytes concerned: the option as carried when only its
    length is wrong for its kind (the list goes on after it), or every byte
    from `offset` to the end when the list cannot be followed further.
    """

    kind: int
    offset: int
    reason: str
    data: bytes = b""

    @property
    def length(self) -> int:
        return len(self.data)

    def to_bytes(self) -> bytes:
        return self.data


TcpOption = Union[
    Eol, Nop, Mss, WindowScale, SackPermitted, Sack, Timestamp, FastOpen, Mptcp, Md5,
    UserTimeout, TcpAo, Experimental, Unknown, Malformed,
]

# Kinds whose length is fixed: kind -> (length, name used in messages).
_FIXED = {2: (4, "MSS"), 3: (3, "window scale"), 4: (2, "SACK permitted"), 8: (10, "timestamps"),
          19: (18, "MD5"), 28: (4, "user timeout")}


def _decode(kind: int, opt: bytes, offset: int) -> TcpOption:
    """One option whose total length `len(opt)` (>= 2) fits the list."""
    olen = len(opt)
    body = opt[2:]
    fixed = _FIXED.get(kind)
    if fixed is not None and olen != fixed[0]:
        return Malformed(kind, offset, f"length {olen} for {fixed[1]} (must be {fixed[0]})", opt)
    if kind == 2:
        return Mss(struct.unpack(">H", body)[0])
    if kind == 3:
        return WindowScale(body[0])
    if kind == 4:
        return SackPermitted()
    if kind == 5:
        if olen < 10 or (olen - 2) % 8:
            return Malformed(kind, offset, f"length {olen} for SACK (must be 2 + 8n, n >= 1)", opt)
        return Sack(tuple(struct.iter_unpack(">II", body)))
    if kind == 8:
        return Timestamp(*struct.unpack(">II", body))
    if kind == 19:
        return Md5(body)
    if kind == 28:
        raw = struct.unpack(">H", body)[0]
        return UserTimeout(raw >> 15, raw & 0x7FFF)
    if kind == 29:
        if olen < 4:
            return Malformed(kind, offset, f"length {olen} for TCP-AO (must be >= 4)", opt)
        return TcpAo(body[0], body[1], body[2:])
    if kind == 30:
        if olen < 3:
            return Malformed(kind, offset, f"length {olen} for MPTCP (must be >= 3)", opt)
        return Mptcp(body)
    if kind == 34:
        if not (olen == 2 or 6 <= olen <= 18):
            return Malformed(kind, offset, f"length {olen} for Fast Open (cookie of 4..16 bytes)", opt)
        return FastOpen(body)
    if kind in (253, 254):
        if olen < 4:
            return Malformed(kind, offset, f"length {olen} for an experimental option (no ExID)", opt)
        exid = struct.unpack(">H", body[:2])[0]
        if exid == EXID_TFO and kind == 254:
            return FastOpen(body[2:], experimental=True)
        return Experimental(kind, exid, body[2:])
    return Unknown(kind, body)


def parse_options(data: bytes | bytearray | memoryview, *, complete: bool = True) -> list[TcpOption]:
    """Parse TCP option bytes into typed options, in order; never raises.

    `complete=False` says the bytes were cut by the end of the capture: an
    option running past them is then reported as cut short, not as overrunning
    the header. Parsing stops after EOL (the rest is padding) and at the first
    structural error, which is reported by a final `Malformed`.
    """
    b = bytes(data)
    n = len(b)
    out: list[TcpOption] = []
    i = 0
    while i < n:
        kind = b[i]
        if kind == 0:
            out.append(Eol())
            break
        if kind == 1:
            out.append(Nop())
            i += 1
            continue
        if i + 1 >= n:
            why = "captured bytes end before the length byte" if not complete else "no room for the length byte"
            out.append(Malformed(kind, i, why, b[i:]))
            break
        olen = b[i + 1]
        if olen < 2:
            out.append(Malformed(kind, i, f"length {olen} < 2", b[i:]))
            break
        if i + olen > n:
            if complete:
                why = f"length {olen} overruns the option list ({n - i} bytes left)"
            else:
                why = f"captured bytes end inside the option (length {olen}, {n - i} captured)"
            out.append(Malformed(kind, i, why, b[i:]))
            break
        out.append(_decode(kind, b[i : i + olen], i))
        i += olen
    return out


def options_to_bytes(options) -> bytes:
    """Concatenate options (typed objects, or raw ``bytes`` for deliberately odd lists)."""
    return b"".join(o if isinstance(o, (bytes, bytearray)) else o.to_bytes() for o in options)
