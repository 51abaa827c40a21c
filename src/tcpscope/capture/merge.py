"""Several captures read as one, in timestamp order, as ``mergecap`` merges them.

    with MergedReader([open_capture(p) for p in paths]) as cap:
        for batch in cap:          # FrameBatch: numbers 1.. across the files, and for
            batch.source           #   each frame its file (index into the readers)
            batch.source_frame     #   and its number in that file

mergecap's rule: the next frame is the earliest of the files' next frames,
and each file's frames keep their order even where its own timestamps go
backwards. On a tie the file given first wins (mergecap takes the last one):
so the pieces of a split capture, in their order, give the capture back even
where a piece ends and the next begins in the same microsecond. A rotated set
(``tcpdump -C`` / ``-G``)
therefore becomes the one capture it was cut from, and captures of several
interfaces interleave. The merge works on runs: the file with the earliest
next frame gives every frame up to the next frame of any other file, as one
slice of its batch (no copy when one file gives a whole output batch; the
bytes of the runs are copied into one buffer otherwise).

Interfaces are merged as mergecap's ``-I any`` does: interfaces with the same
description (link type, snapshot length, name, resolution, offset, FCS) are one
interface; the others keep their own number. Damage is kept per file.
"""
from __future__ import annotations

import dataclasses
from types import TracebackType
from typing import Iterator

import numpy as np

from tcpscope.capture.batch import FrameBatch, Interface
from tcpscope.capture.errors import Damage
from tcpscope.capture.reader import DEFAULT_BATCH_FRAMES, CaptureReader

__all__ = ["MergedReader"]


def _identity(iface: Interface) -> Interface:
    return dataclasses.replace(iface, index=0, section=0, local_index=0)


class _Head:
    """One input file: its current batch and where the merge is in it."""

    def __init__(self, index: int, reader: CaptureReader) -> None:
        self.index = index
        self.reader = reader
        self.batch: FrameBatch | None = None
        self.pos = 0
        self.iface_map = np.zeros(0, np.uint16)  # the file's interface -> merged interface

    def advance(self) -> bool:
        """Make `batch[pos]` the file's next frame; False once the file is done."""
        while self.batch is None or self.pos >= len(self.batch):
            self.batch = next(self.reader, None)
            self.pos = 0
            if self.batch is None:
                return False
        return True

    @property
    def next_ts(self) -> int:
        assert self.batch is not None
        return int(self.batch.ts_ns[self.pos])


class MergedReader:
    """Frames of several open captures, merged by time (see the module's docstring).

    Attributes: ``readers``; ``interfaces`` (merged); ``damages``: (file name,
    `Damage`) for each file that was damaged; ``counters`` summed over the files.
    """

    def __init__(self, readers: list[CaptureReader], *,
                 batch_frames: int = DEFAULT_BATCH_FRAMES) -> None:
        self.readers = readers
        self.interfaces: list[Interface] = []
        self._ids: dict[Interface, int] = {}
        self._batch_frames = batch_frames
        self._heads = [_Head(i, r) for i, r in enumerate(readers)]
        self._next_number = 1

    @property
    def damages(self) -> list[tuple[str, Damage]]:
        return [(r.name, r.damage) for r in self.readers if r.damage is not None]

    @property
    def counters(self) -> dict[str, int]:
        total: dict[str, int] = {}
        for r in self.readers:
            for key, value in r.counters.items():
                total[key] = total.get(key, 0) + value
        total["interfaces"] = len(self.interfaces)
        return total

    def _global_ifaces(self, head: _Head, local: np.ndarray) -> np.ndarray:
        known = head.iface_map.shape[0]
        ifaces = head.reader.interfaces
        if local.size and int(local.max()) >= known:
            extra = []
            for iface in ifaces[known:]:
                key = _identity(iface)
                gid = self._ids.get(key)
                if gid is None:
                    gid = self._ids[key] = len(self.interfaces)
                    self.interfaces.append(dataclasses.replace(iface, index=gid))
                extra.append(gid)
            head.iface_map = np.concatenate([head.iface_map, np.array(extra, np.uint16)])
        return head.iface_map[local]

    def __iter__(self) -> Iterator[FrameBatch]:
        return self

    def __next__(self) -> FrameBatch:
        runs: list[tuple[_Head, FrameBatch, int, int]] = []
        frames = 0
        while frames < self._batch_frames:
            live = [h for h in self._heads if h.advance()]
            self._heads = live
            if not live:
                break
            first = min(live, key=lambda h: (h.next_ts, h.index))
            b = first.batch
            assert b is not None
            stop = len(b)
            stop = min(stop, first.pos + self._batch_frames - frames)
            if len(live) > 1:
                stop = self._run_end(first, live, stop)
            runs.append((first, b, first.pos, stop))
            frames += stop - first.pos
            first.pos = stop
        if not runs:
            raise StopIteration
        return self._batch(runs, frames)

    @staticmethod
    def _run_end(first: _Head, live: list[_Head], stop: int) -> int:
        """Where the run of `first` ends: at its first frame later than another file's
        next frame (the first file wins a tie). Looked for in windows that double, so
        a run costs its own length however long the batch."""
        # an earlier file's frame at the same time goes first, a later file's after
        lt = min((h.next_ts for h in live if h is not first and h.index < first.index),
                 default=None)
        le = min((h.next_ts for h in live if h is not first and h.index > first.index),
                 default=None)
        assert first.batch is not None
        ts_all = first.batch.ts_ns
        lo, width = first.pos, 16
        while lo < stop:
            hi = min(stop, lo + width)
            ts = np.asarray(ts_all[lo:hi])
            ok = np.ones(hi - lo, dtype=bool)
            if lt is not None:
                ok &= ts < lt
            if le is not None:
                ok &= ts <= le
            bad = np.flatnonzero(~ok)
            if bad.size:
                return lo + int(bad[0])
            lo, width = hi, width * 2
        return stop

    def _batch(self, runs: list[tuple[_Head, FrameBatch, int, int]], n: int) -> FrameBatch:
        numbers = np.arange(self._next_number, self._next_number + n, dtype=np.int64)
        self._next_number += n
        parts = []
        for head, b, start, stop in runs:
            part = b.take(slice(start, stop))
            part.iface = self._global_ifaces(head, np.asarray(part.iface))
            part.source = np.full(stop - start, head.index, np.uint16)
            part.source_frame = b.frame_numbers[start:stop]
            parts.append(part)
        if len(parts) == 1:
            out = parts[0]
            out.numbers = numbers
            return out
        # Copy each run's span of bytes into one buffer; offsets move with it.
        chunks, offsets, pos = [], [], 0
        for p in parts:
            lo = int(p.offset.min())
            hi = int((p.offset.astype(np.int64) + p.caplen).max())
            chunks.append(memoryview(p.data)[lo:hi])
            offsets.append(p.offset.astype(np.int64) - lo + pos)
            pos += hi - lo
        data = b"".join(chunks)

        def cat(name: str) -> np.ndarray:
            return np.concatenate([getattr(p, name) for p in parts])

        return FrameBatch(data=data, offset=np.concatenate(offsets), caplen=cat("caplen"),
                          origlen=cat("origlen"), ts_ns=cat("ts_ns"), iface=cat("iface"),
                          linktype=cat("linktype"), first_frame=int(numbers[0]),
                          numbers=numbers, source=cat("source"), source_frame=cat("source_frame"))

    def close(self) -> None:
        for r in self.readers:
            r.close()

    def __enter__(self) -> MergedReader:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()
