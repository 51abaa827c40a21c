"""What a file command reads: one or more captures, filtered, counted.

    with open_inputs(["a.pcap", "rotated/"], capture_filter="tcp port 80", count=1000) as cap:
        for batch in cap:                 # FrameBatch, frame numbers of the (merged) file
            ...
        cap.damages                       # [(file, Damage)] for each file damaged

- Several files, directories (their capture files, by name) and glob patterns
  are read as one capture, merged by time as mergecap does (merge.py); one
  file is read as it is.
- A capture filter (bpf.py) keeps the frames tcpdump -r would keep; the frames
  keep their numbers in the file (the merged file's numbers for several files).
- ``count`` stops after that many frames that passed the filter (tcpdump -c).
"""
from __future__ import annotations

import glob
import os
import sys
from collections.abc import Callable, Sequence
from types import TracebackType
from typing import BinaryIO, Iterator

import numpy as np

from tcpscope.capture.batch import FrameBatch, Interface
from tcpscope.capture.bpf import CaptureFilter
from tcpscope.capture.errors import CaptureError, Damage
from tcpscope.capture.merge import MergedReader
from tcpscope.capture.opener import open_capture
from tcpscope.capture.reader import CaptureReader

__all__ = ["Inputs", "expand_inputs", "open_inputs"]

_GLOB = set("*?[")


def expand_inputs(sources: Sequence[str | os.PathLike | BinaryIO]) -> list[tuple[object, bool]]:
    """Each source as it will be opened, with True where it came from a directory (such
    a file is skipped, with a note, when it is not a capture). A directory gives its
    files (not hidden ones, not subdirectories) in name order; a pattern that names no
    existing path is a glob."""
    out: list[tuple[object, bool]] = []
    for src in sources:
        if hasattr(src, "read") or os.fspath(src) == "-":
            out.append((src, False))
            continue
        path = os.fspath(src)
        if os.path.isdir(path):
            names = sorted(e.name for e in os.scandir(path)
                           if not e.name.startswith(".") and e.is_file())
            if not names:
                raise CaptureError.for_file(path, "the directory holds no files")
            out.extend((os.path.join(path, name), True) for name in names)
        elif not os.path.exists(path) and _GLOB & set(path):
            matches = sorted(glob.glob(path))
            if not matches:
                raise CaptureError.for_file(path, "no file matches this pattern")
            out.extend((m, False) for m in matches if not os.path.isdir(m))
        else:
            out.append((path, False))
    return out


class Inputs:
    """The frames of the inputs, after the capture filter and the count.

    Attributes: ``names`` (the files, as opened), ``name`` (one name for all),
    ``interfaces``, ``damages`` ((file, Damage) per damaged file), ``damage`` (the
    first), ``counters``, ``skipped`` ((file, reason) for each non-capture file of a
    directory), ``multi`` (frames carry their file: `FrameBatch.source`).
    """

    def __init__(self, readers: list[CaptureReader], *, capture_filter: str | None = None,
                 count: int | None = None, skipped: list[tuple[str, str]] | None = None) -> None:
        self.names = [r.name for r in readers]
        self.name = self.names[0] if len(self.names) == 1 else ", ".join(self.names)
        self.multi = len(readers) > 1
        self.skipped = skipped or []
        self._single = readers[0] if not self.multi else None
        self._reader: CaptureReader | MergedReader = readers[0] if not self.multi \
            else MergedReader(readers)
        self.filter = CaptureFilter(capture_filter) if capture_filter else None
        # files written in the other byte order than this host's (the filter reads some
        # link headers in the file's order)
        self._swapped = np.array([_swapped(r) for r in readers], dtype=bool)
        self.count = count
        self.passed = 0  #: frames that passed the filter so far
        self.counted = False  #: ``count`` frames passed: damage read past them does not count

    @property
    def interfaces(self) -> list[Interface]:
        return self._reader.interfaces

    @property
    def damages(self) -> list[tuple[str, Damage]]:
        if self.counted:
            return []
        if self._single is not None:
            d = self._single.damage
            return [(self._single.name, d)] if d is not None else []
        assert isinstance(self._reader, MergedReader)
        return self._reader.damages

    @property
    def damage(self) -> Damage | None:
        d = self.damages
        return d[0][1] if d else None

    @property
    def counters(self) -> dict[str, int]:
        return self._reader.counters

    def __iter__(self) -> Iterator[FrameBatch]:
        for batch in self._reader:
            if self.filter is not None:
                swapped = None
                if self._swapped.any():
                    src = batch.source if batch.source is not None else \
                        np.zeros(len(batch), np.uint16)
                    swapped = self._swapped[src]
                keep = self.filter.match(batch, swapped)
                if not keep.all():
                    batch = batch.take(np.flatnonzero(keep))
            if self.count is not None and self.passed + len(batch) >= self.count:
                batch = batch.take(slice(0, self.count - self.passed))
                self.passed += len(batch)
                self.counted = True
                if len(batch):
                    yield batch
                return
            self.passed += len(batch)
            if len(batch):
                yield batch

    def close(self) -> None:
        self._reader.close()

    def __enter__(self) -> Inputs:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()


def _swapped(reader: CaptureReader) -> bool:
    """Was the file written in the other byte order than this host's (pcap: its header;
    pcapng: its first section)?"""
    order = getattr(reader, "byteorder", None) or getattr(reader, "_byteorder", "<")
    return (order == "<") != (sys.byteorder == "little")


def open_inputs(sources: Sequence[str | os.PathLike | BinaryIO], *,
                capture_filter: str | None = None, count: int | None = None,
                opener: Callable[..., CaptureReader] = open_capture) -> Inputs:
    """Open every source (see `expand_inputs`); CaptureError (one line naming the file)
    if one cannot be read, FilterError if the filter does not compile."""
    readers: list[CaptureReader] = []
    skipped: list[tuple[str, str]] = []
    try:
        for src, from_dir in expand_inputs(sources):
            try:
                readers.append(opener(src))
            except CaptureError as exc:
                if not from_dir:
                    raise
                skipped.append((str(src), exc.reason or str(exc)))
        if not readers:
            raise CaptureError.for_file(", ".join(os.fspath(s) for s in sources
                                                  if not hasattr(s, "read")),
                                        "no capture file among the inputs")
        return Inputs(readers, capture_filter=capture_filter, count=count, skipped=skipped)
    except BaseException:
        for r in readers:
            r.close()
        raise
