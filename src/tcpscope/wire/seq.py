"""32-bit TCP sequence numbers: serial comparisons and 64-bit unwrapping.

TCP sequence numbers live modulo 2^32 (RFC 9293 §3.4); comparing them with a
plain ``<`` is wrong as soon as a connection crosses the wrap. Compare with
these instead (RFC 1982 serial arithmetic, as Wireshark's GT_SEQ & co.), and
use `Unwrapper` to turn a direction's 32-bit numbers into monotonic 64-bit
ones. This is the one place Python does serial arithmetic; C code uses
``_native/seq.h``.
"""
from __future__ import annotations

import numpy as np

__all__ = ["MOD", "seq_diff", "seq_diff_array", "seq_lt", "seq_le", "seq_gt", "seq_ge", "Unwrapper"]

MOD = 1 << 32


def seq_diff(a: int, b: int) -> int:
    """a - b as a signed 32-bit serial difference (in [-2^31, 2^31))."""
    d = (a - b) & (MOD - 1)
    return d - MOD if d >= 1 << 31 else d


def seq_diff_array(d: np.ndarray) -> np.ndarray:
    """Plain int64 differences of 32-bit numbers as signed 32-bit serial differences."""
    return ((d + 0x80000000) & (MOD - 1)) - 0x80000000


def seq_lt(a: int, b: int) -> bool:
    return seq_diff(a, b) < 0


def seq_le(a: int, b: int) -> bool:
    return seq_diff(a, b) <= 0


def seq_gt(a: int, b: int) -> bool:
    return seq_diff(a, b) > 0


def seq_ge(a: int, b: int) -> bool:
    return seq_diff(a, b) >= 0


class Unwrapper:
    """Extends 32-bit numbers to 64 bits around a moving anchor.

    Each value is placed at the 64-bit number nearest the anchor with the same
    low 32 bits; the anchor follows the highest value seen (by steps below
    2^30, so a stray far-off number does not drag it away).
    """

    def __init__(self, first: int | None = None) -> None:
        self._raw: int | None = None
        self._ext = 0
        if first is not None:
            self.unwrap(first)

    def unwrap(self, raw: int) -> int:
        raw &= MOD - 1
        if self._raw is None:
            self._raw, self._ext = raw, raw
            return raw
        d = seq_diff(raw, self._raw)
        ext = self._ext + d
        if 0 < d < 1 << 30:
            self._raw, self._ext = raw, ext
        return ext
