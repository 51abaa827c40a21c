"""Byte sources: open a path, standard input or a file object, and undo compression.

Everything here works on a plain stream of bytes that may not be seekable (a
pipe), so the format is decided from the first bytes, which are peeked and then
given back: `PeekableStream`. Compressed input (gzip, zstd, xz) is recognised by
its magic number, never by the file name, and decompressed as a stream with
bounded memory (`DecompressingStream`).

A stream never raises on damaged or truncated input once it has started: it
delivers every byte it could and records why it stopped in ``error``, so the
capture reader can deliver every frame before the damage.
"""
from __future__ import annotations

import io
import lzma
import os
import sys
import zlib
from dataclasses import dataclass, field
from typing import Any, BinaryIO, Callable

import zstandard

from tcpscope.capture.errors import CaptureError

# How many compressed bytes are handed to a decompressor at once. Small, so
# that one call cannot produce an unbounded amount of output (zstd has no
# output limit per call).
COMPRESSED_PIECE = 64 * 1024
# At most this many decompressed bytes per step: bounds memory, and what a
# corrupt-data error (which discards the output of its call) can take away.
DECOMPRESSED_PIECE = 256 * 1024

# Magic numbers of compressed streams (the first bytes of the stream).
GZIP_MAGIC = b"\x1f\x8b"
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
XZ_MAGIC = b"\xfd\x37\x7a\x58\x5a\x00"

# Formats we recognise only to say clearly that we do not read them.
UNSUPPORTED_MAGICS: tuple[tuple[bytes, str], ...] = (
    (b"snoop\x00\x00\x00",
     "Solaris snoop format is not supported (convert it with editcap or tshark)"),
    (b"BZh", "bzip2 compression is not supported (decompress it first)"),
    (b"\x04\x22\x4d\x18", "lz4 compression is not supported (decompress it first)"),
    (b"GMBU", "Microsoft Network Monitor format is not supported (convert it with editcap)"),
)


def compression_of(head: bytes) -> str | None:
    """'gzip', 'zstd', 'xz' or None, from the first bytes of a stream."""
    if head.startswith(GZIP_MAGIC):
        return "gzip"
    if head.startswith(ZSTD_MAGIC):
        return "zstd"
    if head.startswith(XZ_MAGIC):
        return "xz"
    return None


def unsupported_format(head: bytes) -> str | None:
    """A one-line reason if `head` starts like a format we recognise but do not read."""
    for magic, reason in UNSUPPORTED_MAGICS:
        if head.startswith(magic):
            return reason
    return None


def hex_prefix(head: bytes, n: int = 4) -> str:
    return " ".join(f"{b:02x}" for b in head[:n])


class PeekableStream:
    """A binary stream whose first bytes can be looked at and then read again.

    Wraps anything with ``readinto`` or ``read``. Read errors are not raised:
    the stream ends and ``error`` says why.
    """

    def __init__(self, raw: BinaryIO | DecompressingStream) -> None:
        self._raw = raw
        self._head = b""
        self.error: str | None = None

    def peek(self, n: int) -> bytes:
        """Up to n first bytes (fewer only at the end of the stream), not consumed."""
        while len(self._head) < n:
            piece = self._read_raw(n - len(self._head))
            if not piece:
                break
            self._head += piece
        return self._head[:n]

    def readinto(self, buffer: memoryview) -> int:
        """Read up to len(buffer) bytes into buffer; 0 at the end of the stream."""
        if self._head:
            n = min(len(buffer), len(self._head))
            buffer[:n] = self._head[:n]
            self._head = self._head[n:]
            return n
        if self.error is not None:
            return 0
        try:
            readinto = getattr(self._raw, "readinto", None)
            if readinto is not None:
                return readinto(buffer) or 0
            piece = self._raw.read(len(buffer))
        except OSError as exc:
            self.error = f"read error: {exc.strerror or exc}"
            return 0
        buffer[: len(piece)] = piece
        return len(piece)

    def read(self, n: int) -> bytes:
        buffer = bytearray(n)
        got = self.readinto(memoryview(buffer))
        del buffer[got:]
        return bytes(buffer)

    def _read_raw(self, n: int) -> bytes:
        if self.error is not None:
            return b""
        try:
            return self._raw.read(n) or b""
        except OSError as exc:
            self.error = f"read error: {exc.strerror or exc}"
            return b""

    @property
    def stream_error(self) -> str | None:
        """Why the stream ended early, from this layer or the decompressor below."""
        return self.error or getattr(self._raw, "error", None)

    @property
    def notes(self) -> dict[str, int]:
        return getattr(self._raw, "notes", {})


# ---------------------------------------------------------------------------
# Decompression
# ---------------------------------------------------------------------------


class _Member:
    """One compressed member (gzip member, zstd frame, xz stream) being decoded.

    ``decompress(data, max_length)`` returns output; input it could not use yet
    stays inside (``needs_input`` says when it wants more); ``eof`` is true at
    the end of the member and ``unused_data`` is what followed it.
    """

    #: The library's decompressor object; ``eof`` and ``unused_data`` are its own.
    _d: Any

    def decompress(self, data: bytes, max_length: int) -> bytes:  # pragma: no cover - interface
        raise NotImplementedError

    @property
    def needs_input(self) -> bool:  # pragma: no cover - interface
        raise NotImplementedError

    @property
    def eof(self) -> bool:
        return self._d.eof

    @property
    def unused_data(self) -> bytes:
        return self._d.unused_data


class _GzipMember(_Member):
    def __init__(self) -> None:
        self._d = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)  # gzip header and trailer
        self._tail = b""

    def decompress(self, data: bytes, max_length: int) -> bytes:
        out = self._d.decompress(self._tail + data, max_length)
        self._tail = self._d.unconsumed_tail
        return out

    @property
    def needs_input(self) -> bool:
        return not self._tail


class _XzMember(_Member):
    def __init__(self) -> None:
        self._d = lzma.LZMADecompressor(format=lzma.FORMAT_XZ)

    def decompress(self, data: bytes, max_length: int) -> bytes:
        return self._d.decompress(data, max_length)

    @property
    def needs_input(self) -> bool:
        return self._d.needs_input


class _ZstdMember(_Member):
    # zstandard's decompressobj has no output limit, so it is given small pieces.
    def __init__(self) -> None:
        self._d = zstandard.ZstdDecompressor().decompressobj()

    def decompress(self, data: bytes, max_length: int) -> bytes:
        return self._d.decompress(data) if data else b""

    @property
    def needs_input(self) -> bool:
        return True


_MEMBERS: dict[str, Callable[[], _Member]] = {
    "gzip": _GzipMember,
    "xz": _XzMember,
    "zstd": _ZstdMember,
}
_MAGICS = {"gzip": GZIP_MAGIC, "xz": XZ_MAGIC, "zstd": ZSTD_MAGIC}
_DECODE_ERRORS = (zlib.error, lzma.LZMAError, zstandard.ZstdError, EOFError, ValueError)


class DecompressingStream:
    """The decompressed bytes of a gzip / zstd / xz stream, read with bounded memory.

    Concatenated members (``cat a.gz b.gz``) are read one after the other, and
    zero padding after the last member is accepted, as gzip(1) does. A truncated
    or corrupt stream ends early with ``error`` set; anything else after the last
    member is counted in ``notes['compressed_trailing_garbage']``.
    """

    def __init__(self, raw: PeekableStream, kind: str) -> None:
        self._raw = raw
        self._kind = kind
        self._member = _MEMBERS[kind]()
        self._member_started = False  # has the current member been given any input?
        self._pending = b""  # compressed bytes not yet given to the member
        self._out = b""  # decompressed bytes not yet returned
        self._done = False
        self.error: str | None = None
        self.notes: dict[str, int] = {}

    def read(self, n: int) -> bytes:
        while not self._out and not self._done:
            self._step(min(max(n, 1), DECOMPRESSED_PIECE))
        out, self._out = self._out[:n], self._out[n:]
        return out

    def readinto(self, buffer: memoryview) -> int:
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def _step(self, max_length: int) -> None:
        """Decompress a little more into self._out, or finish."""
        member = self._member
        if member.needs_input and not self._pending:
            self._pending = self._raw.read(COMPRESSED_PIECE)
            if not self._pending:
                self._finish_input()
                return
        data, self._pending = (self._pending, b"") if member.needs_input else (b"", self._pending)
        if data:
            self._member_started = True
        try:
            self._out = member.decompress(data, max_length)
        except _DECODE_ERRORS as exc:
            self._stop(f"{self._kind} data is corrupt: {exc}")
            return
        if member.eof:
            self._next_member(member.unused_data + self._pending)

    def _next_member(self, rest: bytes) -> None:
        """The member ended; start the next one if more compressed data follows."""
        self._pending = b""
        rest = self._skip_zero_padding(rest)
        if not rest:
            self._finish_input()
            return
        if not rest.startswith(_MAGICS[self._kind]):
            # Not another member: the capture is complete, but say so.
            self.notes["compressed_trailing_garbage"] = 1
            self._done = True
            return
        self._member = _MEMBERS[self._kind]()
        self._member_started = False
        self._pending = rest

    def _skip_zero_padding(self, rest: bytes) -> bytes:
        """`rest` without leading zero bytes, reading on while it is all zeros; b"" at the end."""
        rest = rest.lstrip(b"\x00")
        while not rest:
            more = self._raw.read(COMPRESSED_PIECE)
            if not more:
                return b""
            rest = more.lstrip(b"\x00")
        return rest

    def _finish_input(self) -> None:
        """The compressed input ended; was that in the middle of a member?"""
        self._done = True
        raw_error = getattr(self._raw, "stream_error", None)
        if raw_error:
            self.error = raw_error
        elif self._member_started and not self._member.eof:
            self.error = f"the {self._kind} stream is truncated (it ends before its end marker)"

    def _stop(self, reason: str) -> None:
        self._done = True
        self.error = reason


# ---------------------------------------------------------------------------
# Opening a source
# ---------------------------------------------------------------------------


@dataclass
class Source:
    """An opened input: the (decompressed) byte stream and how it was obtained."""

    stream: PeekableStream
    name: str
    compression: str | None = None
    _to_close: list = field(default_factory=list)

    def close(self) -> None:
        while self._to_close:
            obj = self._to_close.pop()
            try:
                obj.close()
            except OSError:
                pass


def _display_name(source: object) -> str:
    if isinstance(source, (str, os.PathLike)):
        return os.fsdecode(source)
    name = getattr(source, "name", None)
    return name if isinstance(name, str) else "<stream>"


def _open_raw(source: object, name: str) -> tuple[BinaryIO, list]:
    """The raw byte stream for `source`, and what we must close afterwards."""
    if isinstance(source, (str, os.PathLike)):
        if os.fspath(source) in ("-", b"-"):
            return sys.stdin.buffer, []
        try:
            f = open(source, "rb", buffering=0)  # noqa: SIM115 - closed by Source.close
        except IsADirectoryError:
            raise CaptureError.for_file(name, "is a directory, not a capture file") from None
        except OSError as exc:
            raise CaptureError.for_file(name, f"cannot open: {exc.strerror or exc}") from None
        return f, [f]
    if isinstance(source, io.TextIOBase):
        buffer = getattr(source, "buffer", None)
        if buffer is None:
            raise CaptureError.for_file(name, "is a text stream; a binary stream is needed")
        return buffer, []
    if hasattr(source, "readinto") or hasattr(source, "read"):
        return source, []  # type: ignore[return-value]
    raise TypeError("open_capture() needs a path, '-' or a binary file object, "
                    f"not {type(source).__name__}")


def open_source(source: object) -> Source:
    """Open `source` and undo any compression; the format is left to the caller.

    Raises CaptureError (one line, naming the file) if it cannot be opened.
    """
    name = _display_name(source)
    raw, to_close = _open_raw(source, name)
    stream = PeekableStream(raw)
    result = Source(stream=stream, name=name, _to_close=to_close)
    head = stream.peek(8)
    if stream.error and not head:
        result.close()
        raise CaptureError.for_file(name, f"cannot read: {stream.error}")
    kind = compression_of(head)
    if kind is not None:
        result.stream = PeekableStream(DecompressingStream(stream, kind))
        result.compression = kind
    return result
