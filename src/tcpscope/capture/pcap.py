"""The pcap reader (libpcap's savefile format), including the modified variant.

File header (24 bytes, draft-ietf-opsawg-pcap "File Header"), in the byte
order the magic number reveals::

     0  magic: a1b2c3d4 (microsecond timestamps), a1b23c4d (nanosecond),
        a1b2cd34 (the "modified" / Kuznetzov format of some old Linux patches)
     4  major version (2), minor version (4)
     8  thiszone (always 0 in practice; ignored, as libpcap does)
    12  sigfigs (ignored)
    16  snaplen
    20  link type (low 16 bits) and the FCS bits: bit 26 ("P") says that bits
        28-31 hold the number of 16-bit words of FCS at the end of every packet

Then packet records (see _scan.c), found natively.
"""
from __future__ import annotations

import struct

import numpy as np

from tcpscope.capture import _scan
from tcpscope.capture.batch import FrameBatch, Interface
from tcpscope.capture.errors import CaptureError
from tcpscope.capture.reader import CaptureReader
from tcpscope.capture.source import Source

# The magic numbers (the file's first 4 bytes): format, byte order, nanosecond timestamps.
PCAP_MAGICS: dict[bytes, tuple[str, str, bool]] = {
    b"\xd4\xc3\xb2\xa1": ("pcap", "<", False),
    b"\xa1\xb2\xc3\xd4": ("pcap", ">", False),
    b"\x4d\x3c\xb2\xa1": ("pcap", "<", True),
    b"\xa1\xb2\x3c\x4d": ("pcap", ">", True),
    b"\x34\xcd\xb2\xa1": ("pcap-modified", "<", False),
    b"\xa1\xb2\xcd\x34": ("pcap-modified", ">", False),
}

FILE_HEADER_SIZE = 24
RECORD_HEADER_SIZE = 16
MODIFIED_RECORD_HEADER_SIZE = 24

# libpcap's largest snapshot length for most link types; a record claiming more
# than max(snaplen, this) captured bytes is damage.
MAX_SNAPLEN = 262144
# Never accept a pcap record bigger than this, whatever the header says
# (libpcap's largest per-link-type limit, D-Bus, is 128 MiB).
HARD_CAPLEN_LIMIT = 128 * 1024 * 1024

LINKTYPE_MASK = 0x0000FFFF
FCS_PRESENT = 0x04000000  # the "P" bit
RESERVED_LINKTYPE_BITS = 0x0BFF0000  # "Reserved3" and "R": must be zero
LINKTYPE_ETHERNET = 1

# Index of the counter of timestamp fractions >= 1 s in the native counters.
_FRACTION_COUNTER = _scan.COUNTER_NAMES.index("timestamp_fraction_out_of_range")

# How the two length fields are stored (pcap 2.0-2.2 had them swapped; some 2.3 files too).
LENGTHS_AS_STORED, LENGTHS_SWAPPED, LENGTHS_MAYBE_SWAPPED = 0, 1, 2


def caplen_limit(snaplen: int) -> int:
    """The largest captured length a record of a file with this snaplen may claim."""
    return min(max(snaplen, MAX_SNAPLEN), HARD_CAPLEN_LIMIT)


def _lengths_mode(major: int, minor: int) -> int | None:
    """How to read the lengths of this version, or None if we cannot read it."""
    if major == 2 and minor <= 4:
        if minor < 3:
            return LENGTHS_SWAPPED
        return LENGTHS_MAYBE_SWAPPED if minor == 3 else LENGTHS_AS_STORED
    if major == 543 and minor == 0:  # DG/UX tcpdump
        return LENGTHS_SWAPPED
    return None


class PcapReader(CaptureReader):
    """Reads pcap and modified-pcap files; one interface (index 0)."""

    def __init__(self, source: Source, *, fmt: str, byteorder: str, nanosecond: bool,
                 chunk_size: int, batch_frames: int) -> None:
        super().__init__(source, chunk_size=chunk_size, batch_frames=batch_frames)
        self.format = fmt
        self.byteorder = byteorder
        self.nanosecond = nanosecond
        modified = fmt == "pcap-modified"
        self._header_size = MODIFIED_RECORD_HEADER_SIZE if modified else RECORD_HEADER_SIZE
        self._read_file_header()

    def _read_file_header(self) -> None:
        if not self._ensure(FILE_HEADER_SIZE):
            error = self._stream.stream_error
            detail = f" ({error})" if error else ""
            raise CaptureError.for_file(self.name, "truncated pcap file header: "
                                        f"{self._avail} of {FILE_HEADER_SIZE} bytes{detail}")
        (major, minor, thiszone, _sigfigs, snaplen, linktype_field) = struct.unpack_from(
            self.byteorder + "HHiIII", self._buf, 4)
        mode = _lengths_mode(major, minor)
        if mode is None:
            raise CaptureError.for_file(self.name, f"unsupported pcap version {major}.{minor}")
        self.version = (major, minor)
        self.thiszone = thiszone
        self.snaplen = snaplen
        self._lengths_mode = mode
        linktype = linktype_field & LINKTYPE_MASK
        fcs_len = None
        if linktype_field & FCS_PRESENT:
            fcs_len = ((linktype_field >> 28) & 0xF) * 2
        if linktype_field & RESERVED_LINKTYPE_BITS:
            self._count("linktype_reserved_bits_set")
        self._linktype = linktype
        # libpcap clips records longer than the snaplen; the modified format's
        # Ethernet captures may carry a 14-byte fake header on top of it.
        self._clip = snaplen
        if self.format == "pcap-modified" and linktype == LINKTYPE_ETHERNET and snaplen:
            self._clip = min(snaplen + 14, 0xFFFFFFFF)
        self._caplen_limit = caplen_limit(self._clip)
        self.interfaces.append(Interface(
            index=0, linktype=linktype, snaplen=snaplen, tsresol_base=10,
            tsresol_exp=9 if self.nanosecond else 6, fcs_len=fcs_len))
        self._pos = FILE_HEADER_SIZE

    def _next_batch(self) -> FrameBatch | None:
        while not self._done:
            fraction_errors = self._native_counters[_FRACTION_COUNTER]
            status, pos, n, need, message = _scan.scan_pcap(
                self._buf, self._pos, self._columns.as_tuple, self._native_counters,
                max_frames=len(self._columns.offset), big_endian=self.byteorder == ">",
                nanosecond=self.nanosecond, header_size=self._header_size,
                lengths_mode=self._lengths_mode, snaplen=self._clip,
                caplen_limit=self._caplen_limit, linktype=self._linktype)
            self._pos = pos
            odd_fractions = self._native_counters[_FRACTION_COUNTER] != fraction_errors
            batch = self._make_batch(n, raw_timestamps=odd_fractions) if n else None
            if status == _scan.NEED_MORE:
                if not self._ensure(need):
                    what = "record header" if need == self._header_size else "record"
                    self._end_of_stream(what, need)
            elif status == _scan.DAMAGE:
                self._set_damage(message)
            if batch is not None:
                return batch
        return None

    def _make_batch(self, n: int, *, raw_timestamps: bool) -> FrameBatch:
        extra: dict[str, np.ndarray] = {}
        headers = self._columns.offset[:n] - self._header_size
        if raw_timestamps:
            # A timestamp fraction >= 1 s was carried into ts_ns; tcpdump prints
            # such values as stored, so keep them too.
            extra["ts_sec"] = _gather(self._buf, headers, 4, self.byteorder + "u4")
            extra["ts_frac"] = _gather(self._buf, headers + 4, 4, self.byteorder + "u4")
        if self.format == "pcap-modified":
            extra["ifindex"] = _gather(self._buf, headers + 16, 4, self.byteorder + "i4")
            extra["protocol"] = _gather(self._buf, headers + 20, 2, self.byteorder + "u2")
            extra["pkt_type"] = _gather(self._buf, headers + 22, 1, "u1")
        return self._batch_from_columns(n, **extra)


def _gather(buf: bytes | bytearray, positions: np.ndarray, size: int, dtype: str) -> np.ndarray:
    """The `size`-byte integers at `positions` of buf, as a native-order array."""
    raw = np.frombuffer(buf, np.uint8)
    picked = raw[positions[:, None] + np.arange(size)]
    return picked.view(dtype).reshape(-1).astype(np.dtype(dtype).newbyteorder("="))
