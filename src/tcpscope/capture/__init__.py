"""capture/: bytes of a capture file to frames.

    >>> from tcpscope.capture import open_capture
    >>> with open_capture("trace.pcap.gz") as cap:
    ...     for batch in cap:            # FrameBatch: one buffer + numpy columns
    ...         ...
    ...     cap.damage                   # None, or where and why reading stopped

Formats are recognised by content: pcap (µs / ns, either byte order, the
modified variant), pcapng; optionally gzip, zstd or xz compressed; from a
path, "-" (standard input) or a binary file object. Writers for both formats
live in `tcpscope.capture.writer`. See docs/capture.md.
"""
from __future__ import annotations

from tcpscope.capture.batch import Frame, FrameBatch, Interface
from tcpscope.capture.errors import CaptureError, Damage
from tcpscope.capture.opener import open_capture
from tcpscope.capture.reader import CaptureReader
from tcpscope.capture.writer import PcapngWriter, PcapWriter, write_pcap, write_pcapng

__all__ = [
    "CaptureError",
    "CaptureReader",
    "Damage",
    "Frame",
    "FrameBatch",
    "Interface",
    "PcapWriter",
    "PcapngWriter",
    "open_capture",
    "write_pcap",
    "write_pcapng",
]
