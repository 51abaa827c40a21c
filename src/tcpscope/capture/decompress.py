"""Decompress gzip, zstd and xz streams in bounded memory, keeping what was readable.

`DecompressingStream` reads compressed bytes from a stream and delivers the
decompressed bytes. Two promises:

- **Bounded.** Every step reads at most `COMPRESSED_PIECE` compressed bytes and
  produces at most `DECOMPRESSED_PIECE` bytes (a zstd step is one block, at most
  128 KiB by the format), and decoders may not need more than
  `DECODER_MEMORY_LIMIT` (zstd's window, xz's dictionary). A stream that
  decompresses to gigabytes is read in O(one step) memory, in time linear in
  what is read: a "decompression bomb" costs its decompression time and no more.
- **Loud and lossless.** When the data is damaged (a bad CRC or checksum, a
  corrupt block, the end of the input inside a member), everything that
  decompressed before the damage is delivered first, then the stream ends and
  ``error`` says what and where (the compressed byte offset and how many
  decompressed bytes came out). To lose nothing, each member is walked along its
  own framing so that a decoder is never handed the integrity check together
  with data: a gzip trailer is checked here (zlib decodes raw deflate), a zstd
  frame is fed one block at a time and its checksum on its own, an xz stream one
  LZMA2 chunk at a time and each block's check on its own. Inside corrupt gzip
  data, the output the failing call would have produced is recovered from a copy
  of the decoder taken before the call; zstd and xz lose only the corrupt block
  (zstd) or the part of the corrupt LZMA2 chunk decoded in the failing call (xz).

Concatenated members (``cat a.gz b.gz``, several zstd frames or xz streams) are
read one after the other; zero padding after the last member is accepted, as
gzip(1) does; anything else after it is counted in
``notes['compressed_trailing_garbage']`` and ends the stream without an error.
"""
from __future__ import annotations

import lzma
import struct
import zlib
from typing import Protocol

import zstandard

# Compressed bytes read from the input at once.
COMPRESSED_PIECE = 64 * 1024
# At most this many decompressed bytes per gzip / xz step (a zstd step is one block).
DECOMPRESSED_PIECE = 256 * 1024
# The most memory a decoder may need: zstd's window (zstd(1)'s own default
# limit, enough for `zstd --ultra -22`), xz's dictionary and state (`xz -9`
# needs 65 MiB). Streams that need more are reported as damage.
DECODER_MEMORY_LIMIT = 128 * 1024 * 1024

GZIP_MAGIC = b"\x1f\x8b"
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
XZ_MAGIC = b"\xfd\x37\x7a\x58\x5a\x00"


class _Input(Protocol):
    """What a DecompressingStream reads from: ``read(n)`` and why it ended early."""

    def read(self, n: int) -> bytes: ...  # pragma: no cover - protocol

    @property
    def stream_error(self) -> str | None: ...  # pragma: no cover - protocol


class DecodeError(Exception):
    """Damaged compressed data: what is wrong, at compressed byte `at` of the member."""

    def __init__(self, what: str, at: int) -> None:
        super().__init__(what)
        self.at = at


class _Member:
    """One compressed member (gzip member, zstd frame, xz stream) being decoded.

    ``read()`` returns decompressed bytes, or b"" at the end of the member
    (``eof``; ``unused_data`` is the input after it) or when it cannot go on
    without more input (``needs_input``; ``feed(data)`` gives it more). It
    raises DecodeError only once everything before the damage has been
    returned. ``used`` counts the compressed bytes of the member consumed.
    """

    def __init__(self) -> None:
        self._in = b""  # input not yet used: self._in[self._pos:]
        self._pos = 0
        self._starved = False
        self.used = 0
        self.eof = False

    def feed(self, data: bytes) -> None:
        self._in = self._in[self._pos:] + data if self._pos < len(self._in) else data
        self._pos = 0
        self._starved = False

    @property
    def needs_input(self) -> bool:
        return self._starved and not self.eof

    def _starve(self) -> bytes:
        """read() can go no further with the input it has."""
        self._starved = True
        return b""

    @property
    def _avail(self) -> int:
        return len(self._in) - self._pos

    def _take(self, n: int) -> bytes:
        """The next n bytes of input (n <= _avail), consumed."""
        piece = self._in[self._pos:self._pos + n]
        self._pos += n
        self.used += n
        return piece

    def _peek(self, n: int) -> bytes | None:
        """The next n bytes of input, not consumed; None until that many have arrived."""
        return self._in[self._pos:self._pos + n] if self._avail >= n else None

    @property
    def unused_data(self) -> bytes:
        return self._in[self._pos:]

    def read(self) -> bytes:  # pragma: no cover - interface
        raise NotImplementedError

    @staticmethod
    def starts(data: bytes) -> bool:  # pragma: no cover - interface
        raise NotImplementedError


# ---------------------------------------------------------------------------
# gzip (RFC 1952): header, raw deflate, trailer (CRC-32 and length mod 2^32)
# ---------------------------------------------------------------------------

_FHCRC, _FEXTRA, _FNAME, _FCOMMENT = 0x02, 0x04, 0x08, 0x10
_GZIP_RESERVED_FLAGS = 0xE0


class _GzipMember(_Member):
    def __init__(self) -> None:
        super().__init__()
        # What the header still needs: "fixed", "xlen", ("skip", n), "zstring", "hcrc".
        self._header_steps: list = ["fixed"]
        self._header_crc = 0
        self._d = zlib.decompressobj(-zlib.MAX_WBITS)
        self._crc = 0
        self._size = 0
        self._drained = True  # the last deflate call returned less than asked: no output pending
        # Damage found, raised once the output recovered before it has been returned. Kept
        # as (what, where), not as an exception: a raised exception keeps its traceback,
        # and with it the callers' frames and the buffers they are filling.
        self._error: tuple[str, int] | None = None

    @staticmethod
    def starts(data: bytes) -> bool:
        return data.startswith(GZIP_MAGIC)

    def read(self) -> bytes:
        while not self.eof:
            if self._error is not None:
                raise DecodeError(*self._error)
            if self._header_steps:
                if not self._read_header():
                    return self._starve()
            elif not self._d.eof:
                if self._avail == 0 and self._drained:
                    return self._starve()
                out = self._inflate()
                if out:
                    return out
            elif not self._check_trailer():
                return self._starve()
        return b""

    def _read_header(self) -> bool:
        """Consume header fields as they arrive; True once the header is complete."""
        while self._header_steps:
            step = self._header_steps[0]
            if step == "fixed":
                head = self._peek(10)
                if head is None:
                    return False
                self._header_field(10)
                if head[2] != 8:
                    raise DecodeError(f"unknown compression method {head[2]}", self.used - 8)
                flags = head[3]
                if flags & _GZIP_RESERVED_FLAGS:
                    raise DecodeError(f"reserved header flags 0x{flags:02x} are set", self.used - 7)
                self._header_steps = (["xlen"] if flags & _FEXTRA else []) \
                    + (["zstring"] if flags & _FNAME else []) \
                    + (["zstring"] if flags & _FCOMMENT else []) \
                    + (["hcrc"] if flags & _FHCRC else [])
                continue
            if step == "xlen":
                field = self._peek(2)
                if field is None:
                    return False
                self._header_field(2)
                self._header_steps[0] = ("skip", struct.unpack("<H", field)[0])
                continue
            if step == "hcrc":
                field = self._peek(2)
                if field is None:
                    return False
                self._take(2)
                if struct.unpack("<H", field)[0] != self._header_crc & 0xFFFF:
                    raise DecodeError("the header CRC does not match the header", self.used - 2)
            elif step == "zstring":
                end = self._in.find(b"\x00", self._pos)
                if end < 0:  # the name or comment goes on: use what arrived, keep nothing
                    self._header_field(self._avail)
                    return False
                self._header_field(end + 1 - self._pos)
            else:  # ("skip", n): the extra field
                n = min(step[1], self._avail)
                self._header_field(n)
                if n < step[1]:
                    self._header_steps[0] = ("skip", step[1] - n)
                    return False
            self._header_steps.pop(0)
        return True

    def _header_field(self, n: int) -> None:
        self._header_crc = zlib.crc32(self._take(n), self._header_crc)

    def _inflate(self) -> bytes:
        """Up to DECOMPRESSED_PIECE bytes of the deflate data."""
        data = self._in[self._pos:]
        saved = self._d.copy()  # to recover this call's output if it finds damage
        try:
            out = self._d.decompress(data, DECOMPRESSED_PIECE)
        except zlib.error as exc:
            out = _longest_good_output(saved, data)
            self._error = (f"deflate data: {_zlib_reason(exc)}", self.used)
            self._account(out)
            return out
        left = len(self._d.unused_data) if self._d.eof else len(self._d.unconsumed_tail)
        consumed = len(data) - left
        self._pos += consumed
        self.used += consumed
        self._drained = len(out) < DECOMPRESSED_PIECE
        self._account(out)
        return out

    def _account(self, out: bytes) -> None:
        self._crc = zlib.crc32(out, self._crc)
        self._size += len(out)

    def _check_trailer(self) -> bool:
        """Check the CRC-32 and length; False until the 8 bytes have arrived."""
        trailer = self._peek(8)
        if trailer is None:
            return False
        at = self.used
        self._take(8)
        crc, size = struct.unpack("<II", trailer)
        if crc != self._crc:
            raise DecodeError(f"the CRC-32 in the trailer ({crc:08x}) does not match "
                              f"the data ({self._crc:08x})", at)
        if size != self._size & 0xFFFFFFFF:
            raise DecodeError(f"the length in the trailer ({size}) does not match "
                              f"the data ({self._size} bytes)", at + 4)
        self.eof = True
        return True


def _longest_good_output(saved, data: bytes) -> bytes:
    """What a copy of the decoder (before the failing call) yields from `data` before the error.

    Bisects the output limit: a call limited to k bytes succeeds when the damage
    lies beyond them. At most ~18 bounded calls, on the error path only.
    """
    good, bad = 0, DECOMPRESSED_PIECE
    while bad - good > 1:
        mid = (good + bad) // 2
        try:
            saved.copy().decompress(data, mid)
            good = mid
        except zlib.error:
            bad = mid
    return saved.copy().decompress(data, good) if good else b""


def _zlib_reason(exc: zlib.error) -> str:
    """zlib's reason without Python's "Error -3 while decompressing data: " prefix."""
    return str(exc).rpartition(": ")[2] or str(exc)


class _WalkedMember(_Member):
    """A member whose framing is walked here, its decoder fed one element at a time.

    Subclasses size the next element from its header (`_next_element`, False
    until the header has arrived; an element of -1 bytes means "all that
    follows") and decode a piece of it (`_decode`, which may set ``eof``). A
    piece never spans two elements, so damage found in one element cannot cost
    the output of another.
    """

    def __init__(self) -> None:
        super().__init__()
        self._element = 0  # bytes of the current element still to feed; -1: all that follows
        self._element_start = 0  # where it started (member offset), for error messages

    @property
    def _pending_output(self) -> bool:
        """Can the decoder give more output without more input?"""
        return False

    def read(self) -> bytes:
        while not self.eof:
            piece = b""
            if not self._pending_output:
                if self._element == 0:
                    self._element_start = self.used
                    if not self._next_element():
                        return self._starve()
                    continue
                n = self._avail if self._element < 0 else min(self._element, self._avail)
                if n == 0:
                    return self._starve()
                if self._element > 0:
                    self._element -= n
                piece = self._take(n)
            out = self._decode(piece)
            if out:
                return out
        return b""

    def _next_element(self) -> bool:  # pragma: no cover - interface
        raise NotImplementedError

    def _decode(self, piece: bytes) -> bytes:  # pragma: no cover - interface
        raise NotImplementedError


# ---------------------------------------------------------------------------
# zstd (RFC 8878): frames and skippable frames, walked block by block
# ---------------------------------------------------------------------------

_ZSTD_BLOCK_MAX = 128 * 1024
_ZSTD_SKIPPABLE_MASK, _ZSTD_SKIPPABLE = 0xFFFFFFF0, 0x184D2A50
_ZSTD_DICT_ID_SIZES = (0, 1, 2, 4)
_ZSTD_CONTENT_SIZE_SIZES = (0, 2, 4, 8)
_zstd_decompressor = zstandard.ZstdDecompressor(max_window_size=DECODER_MEMORY_LIMIT)


class _ZstdMember(_WalkedMember):
    """A zstd frame, fed to the decoder one element (header, block, checksum) at a time.

    The decoder outputs a block once it has all of it, so a call never yields
    more than one block (at most 128 KiB), and a bad checksum, fed alone, costs
    no output.
    """

    def __init__(self) -> None:
        super().__init__()
        self._d = _zstd_decompressor.decompressobj()
        self._state = "magic"  # magic, block, checksum, skip, end
        self._checksum = False

    @staticmethod
    def starts(data: bytes) -> bool:
        if data.startswith(ZSTD_MAGIC):
            return True
        return len(data) >= 4 and (
            struct.unpack_from("<I", data)[0] & _ZSTD_SKIPPABLE_MASK) == _ZSTD_SKIPPABLE

    def _decode(self, piece: bytes) -> bytes:
        if self._state == "skip":
            self.eof = self._element == 0
            return b""
        try:
            out = self._d.decompress(piece)
        except zstandard.ZstdError as exc:
            raise DecodeError(str(exc).removeprefix("zstd decompressor error: "),
                              self._element_start) from None
        if self._element == 0 and self._state == "end":
            if not self._d.eof:
                raise DecodeError("the frame ends before the decoder expects", self.used)
            self.eof = True
        return out

    def _next_element(self) -> bool:
        if self._state == "magic":
            return self._frame_header()
        if self._state == "checksum":
            self._element, self._state = 4, "end"
            return True
        header = self._peek(3)
        if header is None:
            return False
        value = header[0] | header[1] << 8 | header[2] << 16
        last, kind, size = value & 1, (value >> 1) & 3, value >> 3
        if kind == 3:
            raise DecodeError("a block has the reserved block type", self.used)
        if size > _ZSTD_BLOCK_MAX:
            raise DecodeError(f"a block claims {size} bytes, more than 128 KiB", self.used)
        self._element = 3 + (1 if kind == 1 else size)
        if last:
            self._state = "checksum" if self._checksum else "end"
        return True

    def _frame_header(self) -> bool:
        magic = self._peek(4)
        if magic is None:
            return False
        if (struct.unpack("<I", magic)[0] & _ZSTD_SKIPPABLE_MASK) == _ZSTD_SKIPPABLE:
            header = self._peek(8)
            if header is None:
                return False
            self._take(8)
            self._element = struct.unpack_from("<I", header, 4)[0]
            self._state = "skip"
            self.eof = self._element == 0
            return True
        descriptor = self._peek(5)
        if descriptor is None:
            return False
        fhd = descriptor[4]
        single_segment = fhd >> 5 & 1
        content_size = _ZSTD_CONTENT_SIZE_SIZES[fhd >> 6] or single_segment
        self._element = 5 + (not single_segment) + _ZSTD_DICT_ID_SIZES[fhd & 3] + content_size
        self._checksum = bool(fhd & 0x04)
        self._state = "block"
        return True


# ---------------------------------------------------------------------------
# xz (the .xz file format 1.x): stream header, blocks of LZMA2 chunks, index, footer
# ---------------------------------------------------------------------------

# Size of the check field by check ID (the low 4 bits of the stream flags).
_XZ_CHECK_SIZES = (0, 4, 4, 4, 8, 8, 8, 16, 16, 16, 32, 32, 32, 64, 64, 64)


class _XzMember(_WalkedMember):
    """An xz stream, fed to the decoder one element at a time.

    Elements: the stream header, a block header, one LZMA2 chunk, the LZMA2 end
    marker with the block padding and check, and (after the last block) the
    index and footer. A check or index that does not match is then found in a
    call that has no output to lose.
    """

    def __init__(self) -> None:
        super().__init__()
        self._d = lzma.LZMADecompressor(format=lzma.FORMAT_XZ, memlimit=DECODER_MEMORY_LIMIT)
        self._state = "stream"  # stream, block, chunk, tail
        self._check_size = 0
        self._block_data = 0  # compressed bytes of the current block after its header

    @staticmethod
    def starts(data: bytes) -> bool:
        return data.startswith(XZ_MAGIC)

    @property
    def _pending_output(self) -> bool:
        return not self._d.needs_input

    def _decode(self, piece: bytes) -> bytes:
        try:
            out = self._d.decompress(piece, DECOMPRESSED_PIECE)
        except lzma.LZMAError as exc:
            raise DecodeError(str(exc), self._element_start) from None
        if self._d.eof:
            # The decoder read up to the end of the stream; give back what follows.
            unused = len(self._d.unused_data)
            self._pos -= unused
            self.used -= unused
            self.eof = True
        return out

    def _next_element(self) -> bool:
        if self._state == "stream":
            header = self._peek(12)
            if header is None:
                return False
            self._check_size = _XZ_CHECK_SIZES[header[7] & 0x0F]
            self._element, self._state = 12, "block"
        elif self._state == "block":
            first = self._peek(1)
            if first is None:
                return False
            if first[0] == 0:  # the index indicator: index and footer, all that follows
                self._element, self._state = -1, "tail"
                return True
            self._element = (first[0] + 1) * 4
            self._block_data = 0
            self._state = "chunk"
        else:  # chunk
            return self._next_chunk()
        return True

    def _next_chunk(self) -> bool:
        control = self._peek(1)
        if control is None:
            return False
        control = control[0]
        if control == 0:  # end of LZMA2 data: the end marker, block padding and check
            padding = -(self._block_data + 1) % 4
            self._element = 1 + padding + self._check_size
            self._state = "block"
            return True
        if control in (1, 2):  # an uncompressed chunk
            header = self._peek(3)
            if header is None:
                return False
            size = 3 + (header[1] << 8 | header[2]) + 1
        elif control >= 0x80:  # an LZMA chunk; a properties byte if it resets them
            header = self._peek(5)
            if header is None:
                return False
            size = (6 if control >= 0xC0 else 5) + (header[3] << 8 | header[4]) + 1
        else:
            raise DecodeError(f"invalid LZMA2 chunk control byte 0x{control:02x}", self.used)
        self._element = size
        self._block_data += size
        return True


_MEMBERS: dict[str, type[_Member]] = {
    "gzip": _GzipMember,
    "xz": _XzMember,
    "zstd": _ZstdMember,
}
_MAGIC_LENGTH = max(len(GZIP_MAGIC), len(ZSTD_MAGIC), len(XZ_MAGIC))


class DecompressingStream:
    """The decompressed bytes of a gzip / zstd / xz stream, read with bounded memory.

    ``read(n)`` / ``readinto(buffer)`` never raise on damaged input: the stream
    ends and ``error`` says why; ``notes`` holds named event counts.
    """

    def __init__(self, raw: _Input, kind: str) -> None:
        self._raw = raw
        self._kind = kind
        self._member: _Member = _MEMBERS[kind]()
        self._member_start = 0  # compressed offset of the current member
        self._read_in = 0  # compressed bytes read from raw
        self._input_ended = False
        self._out = b""  # decompressed bytes not yet returned: self._out[self._out_pos:]
        self._out_pos = 0
        self._delivered = 0  # decompressed bytes produced so far
        self._done = False
        self.error: str | None = None
        self.notes: dict[str, int] = {}

    def read(self, n: int) -> bytes:
        while self._out_pos >= len(self._out) and not self._done:
            self._step()
        out = self._out[self._out_pos:self._out_pos + n]
        self._out_pos += len(out)
        return out

    def readinto(self, buffer: memoryview) -> int:
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def _read_raw(self) -> bytes:
        piece = b"" if self._input_ended else self._raw.read(COMPRESSED_PIECE)
        if piece:
            self._read_in += len(piece)
        else:
            self._input_ended = True
        return piece

    def _step(self) -> None:
        """Decompress a little more into self._out, or finish."""
        member = self._member
        if member.eof:
            self._next_member()
            return
        if member.needs_input:
            piece = self._read_raw()
            if not piece:
                self._finish_input()
                return
            member.feed(piece)
        try:
            out = member.read()
        except DecodeError as exc:
            self._stop(f"{self._kind} data is corrupt at compressed byte "
                       f"{self._member_start + exc.at} (decompressed byte {self._delivered}): {exc}")
            return
        self._out, self._out_pos = out, 0
        self._delivered += len(out)

    def _next_member(self) -> None:
        """The member ended; start the next one if more compressed data follows."""
        rest = self._member.unused_data
        self._member_start = self._read_in - len(rest)
        rest = rest.lstrip(b"\x00")
        while len(rest) < _MAGIC_LENGTH:
            piece = self._read_raw()
            if not piece:
                break
            rest = (rest + piece).lstrip(b"\x00") if not rest else rest + piece
        if not rest:
            self._finish_input()
            return
        cls = type(self._member)
        if not cls.starts(rest):
            # Not another member: the capture is complete, but say so.
            self.notes["compressed_trailing_garbage"] = 1
            self._done = True
            return
        self._member_start = self._read_in - len(rest)
        self._member = cls()
        self._member.feed(rest)

    def _finish_input(self) -> None:
        """The compressed input ended; was that in the middle of a member?"""
        self._done = True
        raw_error = self._raw.stream_error
        if raw_error:
            self.error = raw_error
        elif not self._member.eof:
            self.error = f"the {self._kind} stream is truncated (it ends before its end marker)"

    def _stop(self, reason: str) -> None:
        self._done = True
        self.error = reason
