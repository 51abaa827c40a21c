"""``-w OUT``: the frames a command selected, written to a new capture, byte for byte.

    w = SubsetWriter("subset.pcapng")   # .pcapng: pcapng; anything else, or "-": pcap
    w.feed(chunk)                        # a pipeline chunk (its batch and interfaces)
    w.finish(result)                     # renames the finished file into place

Each frame keeps its captured bytes, its original length and its timestamp.
pcapng keeps each frame's interface (link type, snapshot length, name,
description, resolution, offset, FCS length, as the input described it);
pcap, like ``tcpdump -w``, holds one link type, with nanosecond timestamps
when an input interface had a finer resolution than microseconds. A path is
written atomically (writer.py): nothing appears there unless the command
finishes.
"""
from __future__ import annotations

import os
from typing import Any, BinaryIO

import numpy as np

from tcpscope.capture.batch import FrameBatch, Interface
from tcpscope.capture.writer import PcapngWriter, PcapWriter

__all__ = ["SubsetWriter", "SubsetError"]


class SubsetError(ValueError):
    """The selected frames cannot be written in the format asked for (one line)."""


def _fine(iface: Interface) -> bool:
    """Does the interface keep time finer than microseconds?"""
    if iface.tsresol_base == 10:
        return iface.tsresol_exp > 6
    return iface.tsresol_exp > 19


def _runs(values: np.ndarray) -> list[tuple[int, int, int]]:
    """(start, stop, value) of each run of equal consecutive values."""
    if not values.size:
        return []
    cuts = np.flatnonzero(values[1:] != values[:-1]) + 1
    starts = np.concatenate([[0], cuts])
    stops = np.concatenate([cuts, [values.size]])
    return [(int(a), int(b), int(values[a])) for a, b in zip(starts, stops)]


class SubsetWriter:
    """A pipeline consumer writing every frame it is fed (see the module's docstring)."""

    def __init__(self, target: str | os.PathLike | BinaryIO) -> None:
        self.target = target
        name = os.fspath(target) if isinstance(target, (str, os.PathLike)) else ""
        self.pcapng = name.lower().endswith((".pcapng", ".ntar"))
        self._writer: Any = None
        self._ids: dict[int, int] = {}   # input interface -> output interface (pcapng)
        self._linktype: int | None = None
        self.frames = 0

    def _open_pcap(self, batch: FrameBatch, interfaces: list[Interface]) -> PcapWriter:
        used = [interfaces[i] for i in np.unique(batch.iface).tolist() if i < len(interfaces)]
        lt = int(batch.linktype[0])
        snaplen = max((i.snaplen for i in used), default=0) or 262144
        fcs = next((i.fcs_len for i in used if i.fcs_len is not None), None)
        self._linktype = lt
        return PcapWriter(self.target, lt, nanosecond=any(_fine(i) for i in used),
                          snaplen=snaplen, fcs_len=fcs)

    def feed(self, chunk: Any) -> None:
        batch: FrameBatch = chunk.batch
        if not len(batch):
            return
        if self.pcapng:
            self._feed_pcapng(batch, chunk.interfaces)
        else:
            self._feed_pcap(batch, chunk.interfaces)
        self.frames += len(batch)

    def _feed_pcap(self, batch: FrameBatch, interfaces: list[Interface]) -> None:
        if self._writer is None:
            self._writer = self._open_pcap(batch, interfaces)
        other = np.flatnonzero(batch.linktype != self._linktype)
        if other.size:
            from tcpscope.wire.linktypes import linktype_name

            raise SubsetError(
                f"frame {int(batch.frame_numbers[other[0]])} has link type "
                f"{linktype_name(int(batch.linktype[other[0]]))}, and a pcap file holds one "
                f"({linktype_name(self._linktype or 0)}): write a .pcapng")
        self._writer.write_batch(batch)

    def _feed_pcapng(self, batch: FrameBatch, interfaces: list[Interface]) -> None:
        if self._writer is None:
            self._writer = PcapngWriter(self.target)
        w: PcapngWriter = self._writer
        for start, stop, iface in _runs(np.asarray(batch.iface)):
            out = self._ids.get(iface)
            if out is None:
                i = interfaces[iface]
                out = self._ids[iface] = w.add_interface(
                    i.linktype, i.name, description=i.description, tsresol_exp=i.tsresol_exp,
                    tsresol_base=i.tsresol_base, snaplen=i.snaplen, tsoffset=i.tsoffset,
                    fcs_len=i.fcs_len)
            part = batch.take(slice(start, stop))
            i = interfaces[iface]
            if i.tsresol_base == 10 and i.tsresol_exp <= 9:
                w.write_batch(part, out)
            else:
                for k in range(len(part)):
                    w.write(int(part.ts_ns[k]), out, part.frame_bytes(k), int(part.origlen[k]))

    def finish(self, result: Any) -> None:
        if self._writer is None:
            # nothing selected: still an empty, valid capture (as tcpdump -w leaves)
            if self.pcapng:
                self._writer = PcapngWriter(self.target)
            else:
                lt = result.interfaces[0].linktype if getattr(result, "interfaces", None) else 1
                self._writer = PcapWriter(self.target, lt)
        self._writer.close()

    def abort(self) -> None:
        if self._writer is not None:
            self._writer.abort()
