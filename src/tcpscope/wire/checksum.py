"""The Internet checksum (RFC 1071) in Python, for the builder and for tests.

The bulk path verifies checksums natively (`_dissect.c`); this module is the
readable reference the builder uses to make correct, wrong or "offload" values.
"""
from __future__ import annotations

IPPROTO_TCP = 6


def ones_sum(data: bytes | bytearray | memoryview) -> int:
    """One's-complement sum of `data` as big-endian 16-bit words, folded to 16 bits.

    Since 2**16 = 1 (mod 0xFFFF), the folded sum of the words is the whole byte
    string read as one big number, modulo 0xFFFF; zero stands for 0xFFFF unless
    every byte is zero.
    """
    b = bytes(data)
    if len(b) % 2:
        b += b"\x00"
    n = int.from_bytes(b, "big")
    if n == 0:
        return 0
    s = n % 0xFFFF
    return s or 0xFFFF


def fold_add(*values: int) -> int:
    """One's-complement addition of 16-bit values (end-around carry)."""
    s = sum(values)
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return s


def internet_checksum(data: bytes | bytearray | memoryview) -> int:
    """The value a checksum field must hold for `data` (field zeroed) to verify."""
    return ~ones_sum(data) & 0xFFFF


def pseudo_header(src: bytes, dst: bytes, length: int, proto: int = IPPROTO_TCP) -> bytes:
    """The TCP/UDP pseudo-header: RFC 9293 §3.1 (IPv4) or RFC 8200 §8.1 (IPv6).

    `dst` is the final destination. The IPv4 length field is 16 bits (longer
    BIG TCP lengths are cut, as tcpdump and Linux do).
    """
    if len(src) == 4:
        return src + dst + bytes((0, proto)) + (length & 0xFFFF).to_bytes(2, "big")
    return src + dst + length.to_bytes(4, "big") + bytes((0, 0, 0, proto))


def tcp_checksum(src: bytes, dst: bytes, segment: bytes) -> int:
    """The correct TCP checksum of `segment` (its checksum field must be zero)."""
    return internet_checksum(pseudo_header(src, dst, len(segment)) + segment)


def partial_checksum(src: bytes, dst: bytes, length: int) -> int:
    """What TX checksum offload leaves in the field: the folded pseudo-header sum.

    Linux (CHECKSUM_PARTIAL) stores ``~tcp_v4_check(len, src, dst, 0)``, which is
    this sum uncomplemented; the NIC adds the segment and complements it.
    """
    return ones_sum(pseudo_header(src, dst, length))


def should_be(carried: int, total: int) -> int:
    """The correct field value, from the carried value and the sum over everything.

    RFC 1624 §3; this is what tcpdump prints after ``incorrect ->``.
    """
    return fold_add(carried, ~total & 0xFFFF)
