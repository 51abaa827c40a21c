"""Byte sources: open a path, standard input or a file object, and undo compression.

Everything here works on a plain stream of bytes that may not be seekable (a
pipe), so the format is decided from the first bytes, which are peeked and then
given back: `PeekableStream`. Compressed input (gzip, zstd, xz) is recognised by
its magic number, never by the file name, and decompressed as a stream with
bounded memory (`DecompressingStream`, in decompress.py).

A stream never raises on damaged or truncated input once it has started: it
delivers every byte it could and records why it stopped in ``error``, so the
capture reader can deliver every frame before the damage.
"""
from __future__ import annotations

import io
import os
import sys
from dataclasses import dataclass, field
from typing import BinaryIO

from tcpscope.capture.decompress import GZIP_MAGIC, XZ_MAGIC, ZSTD_MAGIC, DecompressingStream
from tcpscope.capture.errors import CaptureError

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
