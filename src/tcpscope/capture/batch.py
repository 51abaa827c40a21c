"""Frames as columnar batches: what every capture source yields.

A reader never creates one Python object per packet on the bulk path. It reads
a chunk of the file, finds the records in it (natively), and yields a
`FrameBatch`: one buffer holding the chunk and parallel numpy arrays that say
where each frame's captured bytes are and what the capture said about them.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterator, NamedTuple

import numpy as np


@dataclass(frozen=True, slots=True)
class Interface:
    """A capture interface (pcapng IDB; a pcap file has exactly one)."""

    index: int
    linktype: int
    snaplen: int = 0
    name: str | None = None
    description: str | None = None
    # Timestamp resolution: units per second are 10**tsresol_exp (if tsresol_base == 10)
    # or 2**tsresol_exp (if 2). if_tsoffset is in whole seconds.
    tsresol_base: int = 10
    tsresol_exp: int = 6
    tsoffset: int = 0
    section: int = 0
    # Bytes of Frame Check Sequence at the end of each frame, when the file says
    # (pcap: the FCS bits of the link-type field; pcapng: if_fcslen); None = not said.
    fcs_len: int | None = None
    # pcapng: the interface's number inside its section (EPB interface ids use it).
    local_index: int = 0


class Frame(NamedTuple):
    """One frame, for code that wants Python objects (tests, per-packet display)."""

    number: int  # 1-based position in the file
    ts_ns: int
    iface: int
    linktype: int
    caplen: int
    origlen: int
    data: bytes


@dataclass(slots=True)
class FrameBatch:
    """Frames `first_frame` .. `first_frame + len(self) - 1` (1-based, file order).

    Frame i's captured bytes are ``data[offset[i] : offset[i] + caplen[i]]``.
    ``origlen[i] > caplen[i]`` means the capture truncated it (snaplen).
    ``iface[i]`` indexes the reader's ``interfaces``; ``linktype[i]`` is that
    interface's link type, repeated so dissection needs no lookup.

    A batch that was filtered or merged says its frame numbers explicitly:
    ``numbers`` (int64, else consecutive from `first_frame`); a batch merged
    from several files says where each frame came from: ``source`` (uint16,
    the file's index among the inputs) and ``source_frame`` (int64, its number
    in that file).
    """

    data: bytes | bytearray | memoryview
    offset: np.ndarray  # int64
    caplen: np.ndarray  # uint32
    origlen: np.ndarray  # uint32
    ts_ns: np.ndarray  # int64, nanoseconds since the epoch (UTC)
    iface: np.ndarray  # uint16
    linktype: np.ndarray  # uint16
    first_frame: int = 1
    extra: dict = field(default_factory=dict)
    numbers: np.ndarray | None = None
    source: np.ndarray | None = None
    source_frame: np.ndarray | None = None

    def __len__(self) -> int:
        return int(self.offset.shape[0])

    def frame_bytes(self, i: int) -> bytes:
        """The captured bytes of the i-th frame of this batch (0-based)."""
        start = int(self.offset[i])
        return bytes(self.data[start : start + int(self.caplen[i])])

    @property
    def frame_numbers(self) -> np.ndarray:
        if self.numbers is not None:
            return self.numbers
        return np.arange(self.first_frame, self.first_frame + len(self), dtype=np.int64)

    def take(self, rows: np.ndarray | slice) -> FrameBatch:
        """The frames at `rows` (indexes or a slice), sharing this batch's bytes; they
        keep their frame numbers (and files)."""
        def pick(col: np.ndarray | None) -> np.ndarray | None:
            return None if col is None else col[rows]

        return FrameBatch(
            data=self.data, offset=self.offset[rows], caplen=self.caplen[rows],
            origlen=self.origlen[rows], ts_ns=self.ts_ns[rows], iface=self.iface[rows],
            linktype=self.linktype[rows], first_frame=self.first_frame, extra=self.extra,
            numbers=self.frame_numbers[rows], source=pick(self.source),
            source_frame=pick(self.source_frame))

    def frames(self) -> Iterator[Frame]:
        """The frames as `Frame` tuples (one Python object each: not for bulk work)."""
        numbers = self.frame_numbers.tolist()
        for i in range(len(self)):
            yield Frame(
                numbers[i],
                int(self.ts_ns[i]),
                int(self.iface[i]),
                int(self.linktype[i]),
                int(self.caplen[i]),
                int(self.origlen[i]),
                self.frame_bytes(i),
            )
