"""`open_capture`: the one way into a capture file.

It opens the source (source.py: a path, standard input or a file object,
decompressed if it is gzip / zstd / xz), recognises the format by its first
bytes, never by the name, and hands the stream to that format's reader
(pcap.py, pcapng.py), which the shared machinery in reader.py drives.
"""
from __future__ import annotations

import os
from typing import BinaryIO

from tcpscope.capture.errors import CaptureError
from tcpscope.capture.pcap import PCAP_MAGICS, PcapReader
from tcpscope.capture.pcapng import PCAPNG_MAGIC, PcapngReader
from tcpscope.capture.reader import DEFAULT_BATCH_FRAMES, DEFAULT_CHUNK_SIZE, CaptureReader
from tcpscope.capture.source import Source, hex_prefix, open_source, unsupported_format

__all__ = ["open_capture"]


def _not_a_capture(source: Source, head: bytes) -> CaptureError:
    """The CaptureError for a stream that is not pcap / pcapng."""
    what = f"{source.compression}-compressed data" if source.compression else "not a capture file"
    unsupported = unsupported_format(head)
    if unsupported is not None:
        reason = unsupported if not source.compression else f"{what}: {unsupported}"
    elif not head:
        error = source.stream.stream_error
        if error:
            reason = f"{what}: {error}"
        elif source.compression:
            reason = f"{what}: decompresses to nothing"
        else:
            reason = "not a capture file (pcap or pcapng): the file is empty"
    else:
        is_not = "is not a capture file" if source.compression else ""
        prefix = f"{what} {is_not}".strip() if source.compression else what
        reason = f"{prefix} (pcap or pcapng): starts with {hex_prefix(head)}"
    return CaptureError.for_file(source.name, reason)


def open_capture(source: str | os.PathLike | BinaryIO, *, chunk_size: int = DEFAULT_CHUNK_SIZE,
                 batch_frames: int = DEFAULT_BATCH_FRAMES) -> CaptureReader:
    """Open a pcap or pcapng capture, possibly gzip / zstd / xz compressed.

    `source` is a path, ``"-"`` for standard input, or a binary file object (which
    the reader reads but does not close). The format is chosen from the content,
    never from the name. Raises `CaptureError` (one line naming the file) if the
    input is not a capture or cannot be read.
    """
    opened = open_source(source)
    try:
        head = opened.stream.peek(4)
        if head == PCAPNG_MAGIC:
            return PcapngReader(opened, chunk_size=chunk_size, batch_frames=batch_frames)
        if head in PCAP_MAGICS:
            fmt, byteorder, nanosecond = PCAP_MAGICS[head]
            return PcapReader(opened, fmt=fmt, byteorder=byteorder, nanosecond=nanosecond,
                              chunk_size=chunk_size, batch_frames=batch_frames)
        raise _not_a_capture(opened, opened.stream.peek(8))
    except BaseException:
        opened.close()
        raise
