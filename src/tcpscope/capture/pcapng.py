"""The pcapng reader (draft-ietf-opsawg-pcapng).

A pcapng file is a sequence of blocks (type, total length, body, total length
again). It has one or more *sections*, each opened by a Section Header Block
(SHB) that sets the byte order of the section; each section describes its own
interfaces with Interface Description Blocks (IDB), numbered from 0 inside the
section. Packets come in Enhanced Packet Blocks (EPB), Simple Packet Blocks
(SPB: first interface, no timestamp) or obsolete Packet Blocks (PB).

The native scanner (_scan.scan_pcapng) walks packet blocks and skips (and
counts) the blocks we do not use (NRB, ISB, DSB, custom, unknown). It returns
here for SHBs and IDBs, which are rare and carry options that are easier to
read in Python. Interfaces get global indices in `reader.interfaces`, in the
order they appear in the file, across sections.
"""
from __future__ import annotations

import struct
from dataclasses import dataclass

import numpy as np

from tcpscope.capture import _scan
from tcpscope.capture.batch import FrameBatch, Interface
from tcpscope.capture.errors import CaptureError
from tcpscope.capture.reader import CaptureReader
from tcpscope.capture.source import Source

BT_SHB = 0x0A0D0D0A
#: The file's first 4 bytes: a Section Header Block's type, the same in both byte orders.
PCAPNG_MAGIC = b"\x0a\x0d\x0d\x0a"
BT_IDB = 0x00000001
BT_SPB = 0x00000003

BYTE_ORDER_MAGIC = {b"\x4d\x3c\x2b\x1a": "<", b"\x1a\x2b\x3c\x4d": ">"}
SHB_MIN_LENGTH = 28
IDB_MIN_LENGTH = 20
SUPPORTED_MAJOR_VERSION = 1

# Blocks longer than this are damage, unless an interface's snaplen needs more
# (libpcap's rule: 16 MiB, or room for a snaplen-sized packet plus 128 KiB of options).
DEFAULT_MAX_BLOCK = 16 * 1024 * 1024
HARD_MAX_BLOCK = 128 * 1024 * 1024 + 131072 + 32
MAX_INTERFACES = 65536  # iface is a uint16 column
# `reader.sections` lists at most this many sections (a crafted file of
# nothing but SHBs must not grow memory with its size); the rest are counted.
MAX_SECTIONS_LISTED = 1024

# Option codes ("Options" and the IDB / SHB option lists).
OPT_ENDOFOPT = 0
OPT_COMMENT = 1
SHB_HARDWARE, SHB_OS, SHB_USERAPPL = 2, 3, 4
IF_NAME, IF_DESCRIPTION, IF_TSRESOL, IF_FCSLEN, IF_TSOFFSET = 2, 3, 9, 13, 14


@dataclass(frozen=True, slots=True)
class Section:
    """One pcapng section (SHB): its byte order, version and who wrote it."""

    index: int
    byteorder: str  # '<' or '>'
    version: tuple[int, int]
    hardware: str | None = None
    os: str | None = None
    userappl: str | None = None


class _BlockError(Exception):
    """A damaged SHB / IDB: damage, or CaptureError if it is the file's first block."""


def parse_options(body: memoryview, byteorder: str) -> tuple[list[tuple[int, bytes]], bool]:
    """(code, value) pairs of an option list, and whether it was well formed.

    Options are (code u16, length u16, value padded to 32 bits), ending with
    opt_endofopt or the end of the block. A list that overruns the block is
    cut there and reported as malformed.
    """
    options: list[tuple[int, bytes]] = []
    pos = 0
    while pos + 4 <= len(body):
        code, length = struct.unpack_from(byteorder + "HH", body, pos)
        if code == OPT_ENDOFOPT:
            return options, True
        end = pos + 4 + length
        if end > len(body):
            return options, False
        options.append((code, bytes(body[pos + 4:end])))
        pos = end + (-length % 4)
    return options, pos == len(body)


def _text(value: bytes) -> str:
    return value.rstrip(b"\x00").decode("utf-8", errors="replace")


class PcapngReader(CaptureReader):
    format = "pcapng"

    def __init__(self, source: Source, *, chunk_size: int, batch_frames: int) -> None:
        super().__init__(source, chunk_size=chunk_size, batch_frames=batch_frames)
        self.sections: list[Section] = []
        self._byteorder = "<"
        self._section = -1  # index of the current section
        # The current section's interfaces as the scanner wants them: rows of
        # IFACE_FIELDS int64, grown by doubling (rows [:_n_local] are valid).
        self._iface_table = np.zeros((4, _scan.IFACE_FIELDS), np.int64)
        self._n_local = 0
        self._max_block = DEFAULT_MAX_BLOCK
        try:
            self._read_section_header()
        except _BlockError as exc:
            raise CaptureError.for_file(self.name, str(exc)) from None
        # Read the blocks before the first packet (usually the IDBs), so that
        # `interfaces` is known before iterating, as tcpdump knows the link type.
        self._scan_blocks(max_frames=0)

    # -- scanning --------------------------------------------------------------

    def _next_batch(self) -> FrameBatch | None:
        return self._scan_blocks(max_frames=len(self._columns.offset))

    def _scan_blocks(self, *, max_frames: int) -> FrameBatch | None:
        """Scan until a batch is ready (or, with max_frames=0, until the first packet)."""
        while not self._done:
            status, pos, n, need, message = _scan.scan_pcapng(
                self._buf, self._pos, self._columns.as_tuple, self._native_counters,
                max_frames=max_frames, big_endian=self._byteorder == ">",
                ifaces=self._iface_table[:self._n_local], max_block=self._max_block)
            self._pos = pos
            batch = self._make_batch(n) if n else None
            if status == _scan.NEED_MORE:
                if not self._ensure(need):
                    self._end_of_stream("block header" if need == 8 else "block", need)
            elif status == _scan.BLOCK:
                self._read_block()
            elif status == _scan.DAMAGE:
                self._set_damage(message)
            elif max_frames == 0:
                return None  # FULL before the first packet: primed
            if batch is not None:
                return batch
        return None

    def _make_batch(self, n: int) -> FrameBatch:
        extra = {}
        kinds = self._columns.kind[:n]
        no_timestamp = kinds == BT_SPB
        if no_timestamp.any():
            extra["no_timestamp"] = no_timestamp  # SPBs: ts_ns is 0, not a time
        return self._batch_from_columns(n, **extra)

    def _read_block(self) -> None:
        """The scanner stopped at an SHB or IDB (an IDB is complete and checked)."""
        block_type = struct.unpack_from(self._byteorder + "I", self._buf, self._pos)[0]
        try:
            if block_type == BT_SHB:
                self._read_section_header()
            else:
                self._read_interface_description()
        except _BlockError as exc:
            self._set_damage(str(exc))

    # -- Section Header Block ----------------------------------------------------

    def _read_section_header(self) -> None:
        """ "Section Header Block": byte-order magic at 8, version at 12, then options."""
        if not self._ensure(12):
            self._block_ends_early("section header block", 12)
            return
        magic = bytes(self._buf[self._pos + 8:self._pos + 12])
        byteorder = BYTE_ORDER_MAGIC.get(magic)
        if byteorder is None:
            raise _BlockError(f"section header block has a bad byte-order magic {magic.hex()}")
        total = struct.unpack_from(byteorder + "I", self._buf, self._pos + 4)[0]
        self._check_length("section header block", total, SHB_MIN_LENGTH)
        if not self._ensure(total):
            self._block_ends_early("section header block", total)
            return
        self._check_trailer(total, byteorder)
        major, minor = struct.unpack_from(byteorder + "HH", self._buf, self._pos + 12)
        if major != SUPPORTED_MAJOR_VERSION:
            raise _BlockError(f"unsupported pcapng version {major}.{minor}")
        with memoryview(self._buf) as view:
            options, ok = parse_options(view[self._pos + 24:self._pos + total - 4], byteorder)
        if not ok:
            self._count("malformed_options")
        values = dict(options)
        self._section += 1
        self._byteorder = byteorder
        self._n_local = 0
        self._count("sections")
        self._pos += total
        if len(self.sections) >= MAX_SECTIONS_LISTED:
            return
        self.sections.append(Section(
            index=self._section, byteorder=byteorder, version=(major, minor),
            hardware=_text(values[SHB_HARDWARE]) if SHB_HARDWARE in values else None,
            os=_text(values[SHB_OS]) if SHB_OS in values else None,
            userappl=_text(values[SHB_USERAPPL]) if SHB_USERAPPL in values else None))

    # -- Interface Description Block ---------------------------------------------

    def _read_interface_description(self) -> None:
        """ "Interface Description Block": link type at 8, snaplen at 12, then options."""
        order = self._byteorder
        total = struct.unpack_from(order + "I", self._buf, self._pos + 4)[0]
        if total < IDB_MIN_LENGTH:
            raise _BlockError(f"interface description block length {total} is less than "
                              f"the {IDB_MIN_LENGTH}-byte minimum")
        if len(self.interfaces) >= MAX_INTERFACES:
            raise _BlockError(f"more than {MAX_INTERFACES} interface description blocks")
        linktype, _reserved, snaplen = struct.unpack_from(order + "HHI", self._buf, self._pos + 8)
        with memoryview(self._buf) as view:
            options, ok = parse_options(view[self._pos + 16:self._pos + total - 4], order)
        if not ok:
            self._count("malformed_options")
        iface = self._interface_from_options(linktype, snaplen, options)
        self.interfaces.append(iface)
        self._add_local_interface(iface)
        if snaplen:
            self._max_block = max(self._max_block, min(snaplen + 131072 + 32, HARD_MAX_BLOCK))
        self._pos += total

    def _add_local_interface(self, iface: Interface) -> None:
        if self._n_local == len(self._iface_table):
            self._iface_table = np.concatenate([self._iface_table, np.zeros_like(self._iface_table)])
        self._iface_table[self._n_local] = (iface.index, iface.linktype, iface.snaplen,
                                            iface.tsresol_base, iface.tsresol_exp, iface.tsoffset)
        self._n_local += 1

    def _interface_from_options(self, linktype: int, snaplen: int,
                                options: list[tuple[int, bytes]]) -> Interface:
        fields: dict = {"tsresol_base": 10, "tsresol_exp": 6, "tsoffset": 0}
        for code, value in options:
            if code == IF_NAME:
                fields["name"] = _text(value)
            elif code == IF_DESCRIPTION:
                fields["description"] = _text(value)
            elif code == IF_TSRESOL and len(value) == 1:
                # Most significant bit set: a negative power of 2, else of 10.
                fields["tsresol_base"] = 2 if value[0] & 0x80 else 10
                fields["tsresol_exp"] = value[0] & 0x7F
            elif code == IF_TSOFFSET and len(value) == 8:
                fields["tsoffset"] = struct.unpack(self._byteorder + "q", value)[0]
            elif code == IF_FCSLEN and len(value) == 1:
                fields["fcs_len"] = value[0]
            elif code in (IF_TSRESOL, IF_TSOFFSET, IF_FCSLEN):
                self._count("malformed_options")
        return Interface(index=len(self.interfaces), linktype=linktype, snaplen=snaplen,
                         section=self._section, local_index=self._n_local,
                         **fields)

    # -- helpers -------------------------------------------------------------------

    def _check_length(self, what: str, total: int, minimum: int) -> None:
        if total % 4:
            raise _BlockError(f"block length {total} is not a multiple of 4")
        if total < minimum:
            raise _BlockError(f"{what} length {total} is less than the {minimum}-byte minimum")
        if total > self._max_block:
            raise _BlockError(f"block length {total} is more than the {self._max_block}-byte limit")

    def _check_trailer(self, total: int, byteorder: str) -> None:
        trailer = struct.unpack_from(byteorder + "I", self._buf, self._pos + total - 4)[0]
        if trailer != total:
            raise _BlockError(
                f"block length {total} at its start does not match {trailer} at its end")

    def _block_ends_early(self, what: str, need: int) -> None:
        if self._section < 0:  # the file's first block: not a usable capture
            error = self._stream.stream_error
            detail = f" ({error})" if error else ""
            raise _BlockError(f"truncated pcapng {what}: {self._avail} of {need} bytes{detail}")
        self._end_of_stream("block", need)
