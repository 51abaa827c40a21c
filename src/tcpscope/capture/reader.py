"""The reader machinery the format readers (pcap.py, pcapng.py) share.

A `CaptureReader` reads its (decompressed) stream in chunks of `chunk_size`
bytes, lets the native scanner (``_scan``) find the records in each chunk, and
yields `FrameBatch` objects whose ``data`` is the chunk itself: no per-packet
Python object and no copy of packet bytes. A record cut by the end of a chunk
is carried over into the next chunk; a record bigger than a chunk gets a bigger
buffer for itself. Memory is O(chunk size + largest record), whatever the file
size.

Reading stops at the first damage (a record that cannot be right, or the end of
the file inside a record): every frame before it has been yielded, and
``reader.damage`` says where and why.
"""
from __future__ import annotations

from types import TracebackType
from typing import Iterator

import numpy as np

from tcpscope.capture import _scan
from tcpscope.capture.batch import FrameBatch, Interface
from tcpscope.capture.errors import Damage
from tcpscope.capture.source import Source

DEFAULT_CHUNK_SIZE = 4 * 1024 * 1024
# At most this many frames per batch (several batches may share one chunk).
DEFAULT_BATCH_FRAMES = 16384
MIN_CHUNK_SIZE = 64
# The first read is this small (then reads double up to chunk_size), so that
# opening a tiny capture does not cost a chunk-sized allocation.
FIRST_READ_SIZE = 64 * 1024


class ScanColumns:
    """Scratch output columns the scanner fills; copied out per batch."""

    def __init__(self, capacity: int) -> None:
        self.offset = np.empty(capacity, np.int64)
        self.caplen = np.empty(capacity, np.uint32)
        self.origlen = np.empty(capacity, np.uint32)
        self.ts_ns = np.empty(capacity, np.int64)
        self.iface = np.empty(capacity, np.uint16)
        self.linktype = np.empty(capacity, np.uint16)
        self.kind = np.empty(capacity, np.uint8)
        self.as_tuple = (self.offset, self.caplen, self.origlen, self.ts_ns, self.iface,
                         self.linktype, self.kind)


class CaptureReader:
    """Iterate over the `FrameBatch` objects of one capture.

    Use as a context manager (``with open_capture(path) as cap: for batch in cap``).
    Attributes:

    - ``name``: the path as given, ``"-"`` for standard input;
    - ``format``: ``'pcap'``, ``'pcap-modified'`` or ``'pcapng'``;
    - ``compression``: ``None``, ``'gzip'``, ``'zstd'`` or ``'xz'``;
    - ``interfaces``: list of `Interface`, growing as pcapng IDBs are read;
    - ``damage``: a `Damage` once reading stopped at damage, else None;
    - ``counters``: named event counts (see docs/capture.md).
    """

    format: str = ""

    def __init__(self, source: Source, *, chunk_size: int, batch_frames: int) -> None:
        self.name = source.name
        self.compression = source.compression
        self.interfaces: list[Interface] = []
        self.damage: Damage | None = None
        self._source = source
        self._stream = source.stream
        self._chunk_size = max(int(chunk_size), MIN_CHUNK_SIZE)
        self._read_size = min(FIRST_READ_SIZE, self._chunk_size)
        self._columns = ScanColumns(max(1, int(batch_frames)))
        self._native_counters = np.zeros(len(_scan.COUNTER_NAMES), np.int64)
        self._counters: dict[str, int] = {}
        self._buf: bytes | bytearray = b""
        self._pos = 0  # next record in _buf
        self._buf_start = 0  # stream offset of _buf[0]
        self._eof = False
        self._done = False
        self._next_frame = 1

    # -- public API ---------------------------------------------------------

    @property
    def counters(self) -> dict[str, int]:
        counts = {"frames": self._next_frame - 1, "interfaces": len(self.interfaces)}
        counts.update(zip(_scan.COUNTER_NAMES, (int(v) for v in self._native_counters)))
        for key, value in self._counters.items():
            counts[key] = counts.get(key, 0) + value
        for key, value in self._stream.notes.items():
            counts[key] = value
        return counts

    def __iter__(self) -> Iterator[FrameBatch]:
        return self

    def __next__(self) -> FrameBatch:
        batch = self._next_batch()
        if batch is None:
            raise StopIteration
        return batch

    def frames(self):
        """Every remaining frame as a `Frame` tuple (convenient, not fast)."""
        for batch in self:
            yield from batch.frames()

    def close(self) -> None:
        self._done = True
        self._source.close()

    def __enter__(self) -> CaptureReader:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def __repr__(self) -> str:
        return (f"<{type(self).__name__} {self.name!r} format={self.format} "
                f"compression={self.compression} frames={self._next_frame - 1}>")

    # -- for the format readers ----------------------------------------------

    def _next_batch(self) -> FrameBatch | None:  # pragma: no cover - overridden
        raise NotImplementedError

    def _count(self, name: str, n: int = 1) -> None:
        self._counters[name] = self._counters.get(name, 0) + n

    @property
    def _avail(self) -> int:
        return len(self._buf) - self._pos

    def _ensure(self, need: int) -> bool:
        """Make at least `need` bytes available from _pos; False if the stream ends first."""
        if self._avail >= need:
            return True
        while self._avail < need and not self._eof:
            self._refill(need)
        return self._avail >= need

    def _refill(self, need: int) -> None:
        """Start a new buffer: the unread tail of the old one, then a chunk more.

        If the record at _pos needs more than that, the buffer grows (doubling)
        only as data actually arrives, so a damaged length field cannot make
        us allocate more than the file holds.
        """
        carry = memoryview(self._buf)[self._pos:]
        kept = len(carry)
        size = self._read_size
        self._read_size = min(2 * size, self._chunk_size)
        new = bytearray(kept + size)
        new[:kept] = carry
        carry.release()
        filled = kept + self._read_into(memoryview(new)[kept:])
        while filled < need and not self._eof:
            new.extend(bytes(min(need - filled, max(size, filled))))
            filled += self._read_into(memoryview(new)[filled:])
        del new[filled:]
        self._buf_start += self._pos
        self._buf = new
        self._pos = 0

    def _read_into(self, view: memoryview) -> int:
        """Fill view from the stream, as far as it goes; sets _eof at the end."""
        total = 0
        while total < len(view):
            n = self._stream.readinto(view[total:])
            if not n:
                self._eof = True
                break
            total += n
        view.release()
        return total

    def _set_damage(self, reason: str, *, at: int | None = None) -> None:
        """Stop reading: damage at buffer position `at` (default: the current record)."""
        pos = self._pos if at is None else at
        stream_error = self._stream.stream_error
        if stream_error and stream_error not in reason:
            reason = f"{reason} ({stream_error})"
        self.damage = Damage(byte_offset=self._buf_start + pos, frame=self._next_frame,
                             reason=reason)
        self._done = True

    def _end_of_stream(self, record: str, need: int) -> None:
        """The stream ended with `_avail` bytes of a `need`-byte record (or header) left."""
        self._done = True
        if self._avail == 0:
            stream_error = self._stream.stream_error
            if stream_error:
                self._set_damage(stream_error)
            return
        self._set_damage(f"file ends inside a {record}: {self._avail} of {need} bytes")

    def _batch_from_columns(self, n: int, **extra: object) -> FrameBatch:
        c = self._columns
        batch = FrameBatch(
            data=self._buf,
            offset=c.offset[:n].copy(),
            caplen=c.caplen[:n].copy(),
            origlen=c.origlen[:n].copy(),
            ts_ns=c.ts_ns[:n].copy(),
            iface=c.iface[:n].copy(),
            linktype=c.linktype[:n].copy(),
            first_frame=self._next_frame,
            extra=dict(extra),
        )
        self._next_frame += n
        return batch
