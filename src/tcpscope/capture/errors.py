"""Errors of the capture layer."""
from __future__ import annotations

from dataclasses import dataclass


class CaptureError(Exception):
    """The input is not a usable capture at all (wrong magic, unreadable, empty).

    The CLI prints ``tcpscope: FILE: <message>`` on one line and exits 1.
    """


@dataclass(frozen=True, slots=True)
class Damage:
    """Where and why reading stopped inside an otherwise good capture.

    Every frame before ``byte_offset`` was delivered and is analysed; the
    reader records this instead of raising.
    """

    byte_offset: int  # offset in the (decompressed) capture stream
    frame: int  # 1-based number the next frame would have had
    reason: str  # one sentence, e.g. "record header claims 4294967295 captured bytes"

    def __str__(self) -> str:
        return f"capture damaged at byte {self.byte_offset} (frame {self.frame}): {self.reason}"
