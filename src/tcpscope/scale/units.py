"""Work units: whole captures, and byte ranges of big pcap files.

A unit is one file, or the records of one pcap file that start in
``[start, end)``. Its frames are read by the ordinary reader (capture/): a
range is given the file's 24-byte header followed by the file from ``start``,
so the reader sees a pcap file whose first record is the unit's first.

Where a range starts is found by `resync`: the first offset from which a chain
of record headers is plausible (lengths within the snapshot length, the
fraction of a second below one second, timestamps within a day of each other,
the chain ending exactly at the end of the window or the file). A plausible
chain can still be wrong, so nothing trusts it: each unit reports where its
last record ends (`UnitFrames.stop`), and the plan is exact only when every
range's reading stops exactly where the next range starts. Unit 0 starts at the
file's header, so by induction every start is then a true record boundary.
A start that is not gets its range merged with the previous one and read
again (`scale.driver`). pcapng and compressed files are whole-file units: a
pcapng block needs its section's interface blocks, and a compressed stream
cannot be entered in the middle.

A plain pcap file is always read as ranges (one, if it is small), so every
frame's offset in the file is known (`read_unit` yields it): phase 2 then maps
the file and reads the frames where they are, and the buckets hold no bytes.
"""
from __future__ import annotations

import io
import os
import struct
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from tcpscope.capture.batch import FrameBatch, Interface
from tcpscope.capture.errors import Damage
from tcpscope.capture.inputs import _swapped
from tcpscope.capture.opener import open_capture
from tcpscope.capture.reader import CaptureReader
from tcpscope.capture.pcap import FILE_HEADER_SIZE, PCAP_MAGICS, RECORD_HEADER_SIZE, caplen_limit

__all__ = ["Unit", "UnitFrames", "plan_units", "read_unit", "resync"]

#: Records a chain must have (or reach the end of the window) for a start to be plausible.
CHAIN = 16
#: Bytes looked through for a boundary after a planned split point.
WINDOW = 1 << 20
_DAY = 86400


@dataclass(frozen=True)
class Unit:
    """One piece of work: `file` (the path), its index among the inputs, and for a range
    of a pcap file the records starting in ``[start, end)`` (``end`` None: to the end)."""

    file: str
    index: int
    start: int = FILE_HEADER_SIZE
    end: int | None = None
    whole: bool = True       #: the whole file, read as it is (any format)

    def describe(self) -> str:
        if self.whole:
            return self.file
        return f"{self.file} bytes {self.start}-{'end' if self.end is None else self.end}"


@dataclass
class UnitFrames:
    """What reading a unit found besides its frames."""

    interfaces: list[Interface]
    damage: Damage | None = None   #: in the unit's own numbering (see `read_unit`)
    stop: int | None = None        #: file offset where the unit's last record ends (ranges)
    frames: int = 0
    swapped: bool = False          #: written in the other byte order than this host's


def _pcap_layout(path: str) -> tuple[str, bool, int] | None:
    """(byte order, nanosecond, snaplen) of a plain (not modified, not compressed) pcap
    file, or None for anything else."""
    with open(path, "rb") as f:
        head = f.read(FILE_HEADER_SIZE)
    if len(head) < FILE_HEADER_SIZE or head[:4] not in PCAP_MAGICS:
        return None
    fmt, order, nano = PCAP_MAGICS[head[:4]]
    major, minor = struct.unpack_from(order + "HH", head, 4)
    if fmt != "pcap" or (major, minor) != (2, 4):
        return None
    snaplen = struct.unpack_from(order + "I", head, 16)[0]
    return order, nano, snaplen


def resync(path: str, pos: int, layout: tuple[str, bool, int]) -> int | None:
    """The first offset at or after `pos` where a plausible chain of records starts
    (see the module's docstring), or None within `WINDOW` bytes."""
    order, nano, snaplen = layout
    limit = caplen_limit(snaplen)
    frac_max = 1_000_000_000 if nano else 1_000_000
    size = os.path.getsize(path)
    with open(path, "rb") as f:
        f.seek(pos)
        buf = f.read(2 * WINDOW)
    hdr = struct.Struct(order + "IIII")
    for cand in range(0, min(WINDOW, len(buf))):
        at, first_sec, n = cand, None, 0
        while n < CHAIN:
            if pos + at == size:        # the chain ends exactly at the end of the file
                n = CHAIN
                break
            if at + RECORD_HEADER_SIZE > len(buf):
                break
            sec, frac, incl, orig = hdr.unpack_from(buf, at)
            if frac >= frac_max or incl > limit or incl > orig or \
                    (first_sec is not None and abs(sec - first_sec) > _DAY):
                break
            first_sec = sec if first_sec is None else first_sec
            at += RECORD_HEADER_SIZE + incl
            n += 1
        if n >= CHAIN:
            return pos + cand
    return None


def plan_units(files: list[str], target_bytes: int) -> list[Unit]:
    """The units of `files` (paths, in input order): a plain pcap file bigger than
    `target_bytes` is split into ranges of about that size; every other file is one
    unit."""
    units: list[Unit] = []
    for index, path in enumerate(files):
        layout = _pcap_layout(path)
        size = os.path.getsize(path)
        if layout is None:
            units.append(Unit(path, index))
            continue
        if target_bytes <= 0 or size <= target_bytes * 1.5:
            units.append(Unit(path, index, whole=False))
            continue
        starts = [FILE_HEADER_SIZE]
        for cut in range(target_bytes, size, target_bytes):
            if size - cut < target_bytes // 2:
                break
            at = resync(path, cut, layout)
            if at is not None and at > starts[-1]:
                starts.append(at)
        ends: list[int | None] = [*starts[1:], None]
        units.extend(Unit(path, index, s, e, whole=False) for s, e in zip(starts, ends))
    return units


class _RangeFile(io.RawIOBase):
    """The file's header, then the file from `start`: a pcap file whose first record is
    the one at `start`."""

    def __init__(self, path: str, start: int) -> None:
        super().__init__()
        self.name = path
        self._f = open(path, "rb")  # noqa: SIM115 - closed by close()
        self._head = self._f.read(FILE_HEADER_SIZE)
        self._f.seek(start)

    def readable(self) -> bool:
        return True

    def readinto(self, b: memoryview) -> int:  # type: ignore[override]
        if self._head:
            n = min(len(b), len(self._head))
            b[:n] = self._head[:n]
            self._head = self._head[n:]
            return n
        return self._f.readinto(b)

    def close(self) -> None:
        self._f.close()
        super().close()


def read_unit(unit: Unit) -> tuple[Iterator[tuple[FrameBatch, np.ndarray | None]], UnitFrames]:
    """The unit's frames (numbered 1.. within the unit), each batch with where its frames'
    bytes are in the file (a range; None for a whole-file unit), and, once they are read,
    what reading found. A range's damage is in file offsets; its frame number is the
    unit's."""
    info = UnitFrames([])

    def frames() -> Iterator[tuple[FrameBatch, np.ndarray | None]]:
        if unit.whole:
            with open_capture(unit.file) as cap:
                info.interfaces, info.swapped = cap.interfaces, _swapped(cap)
                for batch in cap:
                    info.frames += len(batch)
                    yield batch, None
                info.damage = cap.damage
            return
        with _RangeFile(unit.file, unit.start) as raw, open_capture(raw) as cap:
            info.interfaces, info.swapped = cap.interfaces, _swapped(cap)
            yield from _range(unit, cap, info)

    return frames(), info


def _range(unit: Unit, cap: CaptureReader,
           info: UnitFrames) -> Iterator[tuple[FrameBatch, np.ndarray]]:
    """The records of `cap` (a range's reader) that start before the range's end."""
    pos = unit.start
    for batch in cap:
        ends = pos + np.cumsum(RECORD_HEADER_SIZE + batch.caplen.astype(np.int64))
        starts = np.concatenate(([pos], ends[:-1]))
        keep = len(batch) if unit.end is None else \
            int(np.searchsorted(starts, unit.end, side="left"))
        if keep:
            info.frames += keep
            pos = int(ends[keep - 1])
            data = starts[:keep] + RECORD_HEADER_SIZE
            yield (batch if keep == len(batch) else batch.take(slice(0, keep))), data
        if keep < len(batch):
            info.stop = pos
            return
    info.stop = pos
    d = cap.damage
    if d is not None:
        at = unit.start + d.byte_offset - FILE_HEADER_SIZE
        if unit.end is None or at < unit.end:
            info.damage = Damage(at, d.frame, d.reason)
