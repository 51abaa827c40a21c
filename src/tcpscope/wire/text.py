"""The one text form of what a person reads about a packet: flag letters and addresses.

Every listing, table, story and export spells TCP flags and addresses through
this module (Python) or ``_native/tcpflags.h`` (C); tests/test_wire_text.py
holds the two to the same letters.

* Flags are tcpdump's letters in tcpdump's order (print-tcp.c): ``F S R P . U E W e``
  (``.`` is ACK, ``e`` the AccECN AE bit), ``none`` when no flag is set.
* Addresses are written as ``inet_ntop`` writes them (and so tcpdump and
  Wireshark): dotted quad, or RFC 5952 IPv6 text; an endpoint is ``addr:port``
  with an IPv6 address in brackets (``[::1]:80``).
"""
from __future__ import annotations

import socket

import numpy as np

__all__ = ["FLAG_LETTERS", "FLAGS_TEXT", "tcp_flags_text", "format_address", "format_addresses",
           "format_endpoint"]

#: (bit, letter) in the order tcpdump prints them; bit 0x100 is the AE (AccECN) bit.
FLAG_LETTERS: tuple[tuple[int, str], ...] = (
    (0x001, "F"), (0x002, "S"), (0x004, "R"), (0x008, "P"), (0x010, "."),
    (0x020, "U"), (0x040, "E"), (0x080, "W"), (0x100, "e"))


def tcp_flags_text(flags: int) -> str:
    """The flags as tcpdump prints them between brackets: ``S``, ``S.``, ``P.``, ``none``."""
    s = "".join(letter for bit, letter in FLAG_LETTERS if flags & bit)
    return s or "none"


#: tcp_flags_text for every value of the nine flag bits.
FLAGS_TEXT: tuple[str, ...] = tuple(tcp_flags_text(f) for f in range(512))


def format_address(addr: bytes | bytearray | memoryview | np.ndarray, version: int) -> str | None:
    """IPv4 dotted quad or IPv6 text exactly as inet_ntop (and so tcpdump) writes it;
    None for another version (no IP layer reached)."""
    b = bytes(addr)
    if version == 4:
        return "%d.%d.%d.%d" % (b[0], b[1], b[2], b[3])
    if version == 6:
        return socket.inet_ntop(socket.AF_INET6, b[:16])
    return None


def format_endpoint(addr: str, port: int) -> str:
    """``addr:port``; an IPv6 address (one with a colon) in brackets: ``[::1]:80``."""
    return f"[{addr}]:{port}" if ":" in addr else f"{addr}:{port}"


def format_addresses(addrs: np.ndarray, versions: np.ndarray) -> list[str | None]:
    """Format an (n, 16) address column; each distinct (version, address) once."""
    n = addrs.shape[0]
    if n == 0:
        return []
    keys = np.empty((n, 17), dtype=np.uint8)
    keys[:, 0] = versions
    keys[:, 1:] = addrs
    uniq, inverse = np.unique(keys.view(np.dtype((np.void, 17))).ravel(), return_inverse=True)
    texts = [format_address(bytes(key)[1:], bytes(key)[0]) for key in uniq]
    return [texts[i] for i in inverse.ravel().tolist()]
