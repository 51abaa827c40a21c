"""The captured bytes of one frame, as the Python payload printers read them.

The C printer (_listing.c) walks a frame up to a TCP segment's payload and,
for a port tcpdump decodes, hands the payload to payload.py with the frame's
bytes and tcpdump's notion of where they end ("snapend"). The printers read
through `Cursor`, whose reads raise `Truncated` where tcpdump's bounds-checked
reads would abandon the packet with `` [|proto]``.
"""
from __future__ import annotations

__all__ = ["Cursor", "Truncated", "fn_print_char"]


class Truncated(Exception):
    """A read past the captured bytes: tcpdump prints `` [|proto]`` and stops the packet."""


class Cursor:
    """The captured bytes of one frame, with tcpdump's notion of where they end.

    ``end`` is tcpdump's "snapend": the end of the captured bytes, lowered by
    the IP layer to the end of the datagram. ``proto`` is the name tcpdump
    would print in a truncation marker (``[|tcp]``, ``[|http]``, ...).
    """

    __slots__ = ("buf", "end", "proto", "out")

    def __init__(self, buf: bytes, end: int | None = None) -> None:
        self.buf = buf
        self.end = len(buf) if end is None else end
        self.proto = ""
        self.out: list[str] = []

    def ttest(self, off: int, n: int) -> bool:
        return 0 <= off and off + n <= self.end

    def u8(self, off: int) -> int:
        if off < 0 or off >= self.end:
            raise Truncated
        return self.buf[off]

    def be16(self, off: int) -> int:
        if off < 0 or off + 2 > self.end:
            raise Truncated
        b = self.buf
        return (b[off] << 8) | b[off + 1]

    def be32(self, off: int) -> int:
        if off < 0 or off + 4 > self.end:
            raise Truncated
        return int.from_bytes(self.buf[off : off + 4], "big")

    def take(self, off: int, n: int) -> bytes:
        if off < 0 or off + n > self.end:
            raise Truncated
        return bytes(self.buf[off : off + n])

    def trunc(self) -> None:
        """tcpdump's nd_print_trunc: a marker, the packet goes on."""
        self.out.append(f" [|{self.proto}]")


def fn_print_char(c: int) -> str:
    """tcpdump's fn_print_char: printable ASCII as is, ``M-`` if the high bit is set, ``^X``."""
    s = ""
    if c & 0x80:
        c &= 0x7F
        s = "M-"
    if c < 0x20 or c == 0x7F:
        return s + "^" + chr(c ^ 0x40)
    return s + chr(c)
