"""Writers for pcap and pcapng: every variant the readers handle.

Tests and the lab use them to make exact captures: both byte orders, µs or ns
pcap, the modified pcap, pcapng with several sections (each with its own byte
order), interfaces with any if_tsresol / if_tsoffset, and Enhanced, Simple and
obsolete Packet Blocks, or any raw block.

Given a path, a writer writes completely or not at all: it writes to a
temporary file in the same directory and renames it over the path when closed;
if the ``with`` block raises, the temporary file is removed. Given a file
object, it writes to it and leaves it open.

Live capture saves with the same pcapng writer, in place (``in_place=True``:
the file is read while it grows and survives an abrupt end up to the last
batch), a whole `FrameBatch` of Enhanced Packet Blocks at a time built with
numpy (`PcapngWriter.write_batch`), and the helper's counters at the end in an
Interface Statistics Block (`PcapngWriter.write_statistics`).
"""
from __future__ import annotations

import atexit
import io
import os
import signal
import stat
import struct
import sys
import tempfile
import threading
from types import TracebackType
from typing import Any, BinaryIO, Iterable, TextIO

import numpy as np

from tcpscope.capture.batch import FrameBatch
from tcpscope.capture.errors import ExportError

NS_PER_SEC = 1_000_000_000

PCAP_MAGIC_US = 0xA1B2C3D4
PCAP_MAGIC_NS = 0xA1B23C4D
PCAP_MAGIC_MODIFIED = 0xA1B2CD34
FCS_PRESENT = 0x04000000

BT_SHB = 0x0A0D0D0A
BT_IDB = 0x00000001
BT_PB = 0x00000002
BT_SPB = 0x00000003
BT_ISB = 0x00000005
BT_EPB = 0x00000006
BYTE_ORDER_MAGIC = 0x1A2B3C4D

OPT_ENDOFOPT = 0
SHB_USERAPPL = 4
IF_NAME, IF_DESCRIPTION, IF_TSRESOL, IF_FCSLEN, IF_TSOFFSET = 2, 3, 9, 13, 14
EPB_FLAGS = 2
ISB_STARTTIME, ISB_ENDTIME, ISB_IFRECV, ISB_IFDROP, ISB_OSDROP = 2, 3, 4, 5, 7
EPB_HEADER = 28  # type, total length, interface, ts high, ts low, caplen, origlen


def _check_byteorder(byteorder: str) -> str:
    if byteorder not in ("<", ">"):
        raise ValueError(f"byteorder must be '<' or '>', not {byteorder!r}")
    return byteorder


def _pad4(data: bytes) -> bytes:
    return data + b"\x00" * (-len(data) % 4)


#: Temporary files of exports in progress: removed on SIGINT, SIGTERM and at exit.
_PENDING: set[str] = set()
_handlers_installed = False


def _remove_pending() -> None:
    for tmp in list(_PENDING):
        try:
            os.unlink(tmp)
        except OSError:
            pass
        _PENDING.discard(tmp)


def _install_cleanup() -> None:
    """On SIGINT and SIGTERM remove the temporary files first, then do what the signal
    did before (SIGINT: KeyboardInterrupt; SIGTERM: end the process). Only the main
    thread can set handlers; elsewhere the ``with`` blocks and atexit still clean up."""
    global _handlers_installed
    if _handlers_installed or threading.current_thread() is not threading.main_thread():
        return
    _handlers_installed = True
    atexit.register(_remove_pending)
    for sig in (signal.SIGINT, signal.SIGTERM):
        previous = signal.getsignal(sig)
        if previous == signal.SIG_IGN:
            continue

        def handler(signum: int, frame: object, previous: object = previous) -> None:
            _remove_pending()
            if callable(previous):
                previous(signum, frame)
                return
            signal.signal(signum, signal.SIG_DFL)
            os.kill(os.getpid(), signum)

        signal.signal(sig, handler)


def export_error(path: str, exc: OSError) -> ExportError:
    """The one line of an output that cannot be written: its name and the reason."""
    return ExportError.for_file(path, f"cannot write: {exc.strerror or exc}")


class AtomicOutput:
    """Where a writer's bytes go: a file object (left open), a path written atomically
    (a temporary file beside it, renamed over it by `commit`, removed by `abort`, on
    SIGINT/SIGTERM and at exit; the file gets the mode the umask allows), ``-``
    (standard output), or a path written in place (`in_place`, or a device or FIFO that
    exists: closed at commit, never removed). `file` is the open binary file (`text`: a UTF-8 text file).

    Every export goes through it; as a ``with`` block it commits when the block ends
    and aborts when it raises. Failing to write the path (a missing or read-only
    directory, a full disk) raises `ExportError` naming it, on one line."""

    def __init__(self, target: str | os.PathLike | BinaryIO, *, in_place: bool = False,
                 text: bool = False) -> None:
        self._path: str | None = None
        self._tmp: str | None = None
        self._owned = False
        self.name = "standard output"
        if isinstance(target, (str, os.PathLike)) and os.fspath(target) == "-":
            self._file: Any = sys.stdout.buffer
        elif isinstance(target, (str, os.PathLike)):
            self.name = os.fspath(target)
            try:
                if in_place or _special(self.name):
                    self._file = open(target, "wb")  # noqa: SIM115 - closed by commit/abort
                    self._owned = True
                else:
                    self._path = self.name
                    directory = os.path.dirname(os.path.abspath(self._path))
                    _install_cleanup()
                    fd, self._tmp = tempfile.mkstemp(
                        dir=directory, prefix=f".{os.path.basename(self._path)}.",
                        suffix=".tmp")
                    _PENDING.add(self._tmp)
                    self._file = os.fdopen(fd, "wb", buffering=1 << 20)
            except OSError as exc:
                raise export_error(self.name, exc) from None
        else:
            self._file = target
            self.name = getattr(target, "name", None) if isinstance(
                getattr(target, "name", None), str) else "output"
        self.text: TextIO | None = None
        if text:
            self.text = io.TextIOWrapper(self._file, encoding="utf-8", newline="",
                                         write_through=True)

    @property
    def file(self) -> BinaryIO:
        return self._file

    def write(self, data: bytes) -> None:
        try:
            self._file.write(data)
        except OSError as exc:
            raise self._error(exc) from None

    def flush(self) -> None:
        try:
            self._file.flush()
        except OSError as exc:
            raise self._error(exc) from None

    def _error(self, exc: OSError) -> Exception:
        """Standard output's errors stay OSErrors (a closed pipe ends a command quietly)."""
        return exc if self._tmp is None and not self._owned else export_error(self.name, exc)

    def _detach_text(self) -> None:
        if self.text is not None:
            self.text.flush()
            self.text.detach()
            self.text = None

    def commit(self) -> None:
        try:
            self._detach_text()
            if self._owned:
                self._file.close()
                return
            if self._tmp is None:
                self._file.flush()
                return
            self._file.close()
            umask = os.umask(0)
            os.umask(umask)
            os.chmod(self._tmp, 0o666 & ~umask)  # mkstemp made it 0600
            os.replace(self._tmp, self._path)  # type: ignore[arg-type]
        except OSError as exc:
            error = self._error(exc)
            self.abort()
            raise error from None
        _PENDING.discard(self._tmp)
        self._tmp = None

    def abort(self) -> None:
        if self.text is not None:
            try:
                self.text.detach()
            except (OSError, ValueError):
                pass
            self.text = None
        if self._owned:  # in place: what was written stays
            self._file.close()
            return
        if self._tmp is None:
            return
        try:
            self._file.close()
        except OSError:
            pass  # a full disk: what could not be written goes with the file
        try:
            os.unlink(self._tmp)
        except FileNotFoundError:
            pass
        _PENDING.discard(self._tmp)
        self._tmp = None

    def __enter__(self) -> AtomicOutput:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if exc_type is None:
            self.commit()
            return
        self.abort()
        if isinstance(exc, OSError) and not isinstance(exc, BrokenPipeError) and \
                (self._path is not None or self._owned):
            raise export_error(self.name, exc) from None


def _special(path: str | os.PathLike) -> bool:
    """An existing path that is not a regular file (a device, a FIFO, a socket)."""
    try:
        return not stat.S_ISREG(os.stat(path).st_mode)
    except OSError:
        return False


class _Writer:
    def __init__(self, target: str | os.PathLike | BinaryIO, *, in_place: bool = False) -> None:
        self._out = AtomicOutput(target, in_place=in_place)
        self.closed = False
        self.frames = 0

    def _write(self, data: bytes) -> None:
        if self.closed:
            raise ValueError("write to a closed capture writer")
        self._out.write(data)

    def flush(self) -> None:
        """Push what was written so far to the file (for a reader that follows it)."""
        self._out.flush()

    def close(self) -> None:
        """Finish the file (rename it into place when writing to a path)."""
        if not self.closed:
            self.closed = True
            self._out.commit()

    def abort(self) -> None:
        """Give up: remove the temporary file (nothing appears at the path)."""
        if not self.closed:
            self.closed = True
            self._out.abort()

    def __enter__(self):
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


# ---------------------------------------------------------------------------
# pcap
# ---------------------------------------------------------------------------


class PcapWriter(_Writer):
    """Write a pcap file (draft-ietf-opsawg-pcap), or its modified variant.

    ``nanosecond`` selects the a1b23c4d magic; ``modified`` the a1b2cd34 format
    with 24-byte record headers (µs only); ``version`` below (2, 3) writes the
    two record lengths in the old (swapped) order; ``fcs_len`` sets the FCS bits
    of the link-type field.
    """

    def __init__(self, target: str | os.PathLike | BinaryIO, linktype: int, *,
                 nanosecond: bool = False, snaplen: int = 262144, byteorder: str = "<",
                 modified: bool = False, version: tuple[int, int] = (2, 4),
                 fcs_len: int | None = None, thiszone: int = 0) -> None:
        self.byteorder = _check_byteorder(byteorder)
        if modified and nanosecond:
            raise ValueError("the modified pcap format has microsecond timestamps only")
        if not 0 <= linktype <= 0xFFFF:
            raise ValueError(f"link type {linktype} is not a 16-bit value")
        super().__init__(target)
        self.nanosecond = nanosecond
        self.snaplen = snaplen
        self.modified = modified
        self._swap_lengths = version < (2, 3)
        if modified:
            magic = PCAP_MAGIC_MODIFIED
        else:
            magic = PCAP_MAGIC_NS if nanosecond else PCAP_MAGIC_US
        field = linktype
        if fcs_len is not None:
            if fcs_len % 2 or not 0 <= fcs_len <= 30:
                raise ValueError("fcs_len must be an even number of bytes, at most 30")
            field |= FCS_PRESENT | (fcs_len // 2) << 28
        self._write(struct.pack(byteorder + "IHHiIII", magic, version[0], version[1], thiszone, 0,
                                snaplen, field))

    def write(self, ts_ns: int, data: bytes, origlen: int | None = None, *, ifindex: int = 0,
              protocol: int = 0, pkt_type: int = 0) -> None:
        """One packet record; data beyond the snaplen is cut (origlen keeps the full length)."""
        data = bytes(data)
        if origlen is None:
            origlen = len(data)
        if self.snaplen and len(data) > self.snaplen:
            data = data[:self.snaplen]
        self.write_record(ts_ns, data, origlen, ifindex=ifindex, protocol=protocol,
                          pkt_type=pkt_type)

    def write_record(self, ts_ns: int, data: bytes, origlen: int, *, caplen: int | None = None,
                     ifindex: int = 0, protocol: int = 0, pkt_type: int = 0) -> None:
        """A record exactly as given, even an inconsistent one (``caplen`` overrides len(data))."""
        seconds, fraction = divmod(ts_ns, NS_PER_SEC)
        if not self.nanosecond:
            fraction //= 1000
        if not 0 <= seconds < 2**32:
            raise ValueError(f"timestamp {ts_ns} ns is outside the pcap range (1970 .. 2106)")
        caplen = len(data) if caplen is None else caplen
        first, second = (origlen, caplen) if self._swap_lengths else (caplen, origlen)
        header = struct.pack(self.byteorder + "IIII", seconds, fraction, first, second)
        if self.modified:
            header += struct.pack(self.byteorder + "iHBx", ifindex, protocol, pkt_type)
        self._write(header + data)
        self.frames += 1


    def write_batch(self, batch: FrameBatch) -> None:
        """Every frame of `batch` as a record, exactly as captured (no snaplen cut), built
        for the whole batch with numpy, as `PcapngWriter.write_batch` does. Seconds
        outside 32 bits wrap, as libpcap's writer stores them (tcpdump -w)."""
        n = len(batch)
        if not n:
            return
        if self.modified:
            raise ValueError("write_batch writes standard pcap records")
        ts = batch.ts_ns.astype(np.int64)
        seconds, fraction = np.divmod(ts, NS_PER_SEC)
        if not self.nanosecond:
            fraction //= 1000
        seconds &= 0xFFFFFFFF
        caplen = batch.caplen.astype(np.int64)
        total = 16 + caplen
        starts = np.zeros(n, np.int64)
        np.cumsum(total[:-1], out=starts[1:])
        out = np.zeros(int(starts[-1] + total[-1]), np.uint8)
        head = np.empty((n, 4), self.byteorder + "u4")
        first, second = (batch.origlen, caplen) if self._swap_lengths else (caplen, batch.origlen)
        head[:, 0], head[:, 1], head[:, 2], head[:, 3] = seconds, fraction, first, second
        hb = head.view(np.uint8).reshape(n, 16)
        out[(starts[:, None] + np.arange(16)).ravel()] = hb.ravel()
        _gather(out, starts + 16, batch, caplen)
        self._write(out.tobytes())
        self.frames += n


def _gather(out: np.ndarray, dest: np.ndarray, batch: FrameBatch, caplen: np.ndarray) -> None:
    """Copy each frame's captured bytes of `batch` to out[dest[i] ...], with one index array."""
    nbytes = int(caplen.sum())
    if not nbytes:
        return
    n = caplen.shape[0]
    src = np.frombuffer(batch.data, np.uint8)
    first = np.zeros(n, np.int64)
    np.cumsum(caplen[:-1], out=first[1:])
    within = np.arange(nbytes, dtype=np.int64) - np.repeat(first, caplen)
    out[np.repeat(dest, caplen) + within] = src[np.repeat(batch.offset.astype(np.int64), caplen)
                                                + within]


def write_pcap(target: str | os.PathLike | BinaryIO, frames: Iterable[tuple], linktype: int,
               **options) -> int:
    """Write (ts_ns, data) or (ts_ns, data, origlen) tuples to a pcap; returns the count."""
    with PcapWriter(target, linktype, **options) as writer:
        for frame in frames:
            writer.write(*frame)
        return writer.frames


# ---------------------------------------------------------------------------
# pcapng
# ---------------------------------------------------------------------------


def _ts_units(ts_ns: int, base: int, exp: int, tsoffset: int) -> int:
    """ts_ns as units of base**-exp seconds since 1970 minus tsoffset (rounded down)."""
    rel = ts_ns - tsoffset * NS_PER_SEC
    if base == 10:
        units = rel * 10 ** (exp - 9) if exp >= 9 else rel // 10 ** (9 - exp)
    else:
        units = (rel << exp) // NS_PER_SEC
    if not 0 <= units < 2**64:
        raise ValueError(
            f"timestamp {ts_ns} ns does not fit this interface's resolution and offset")
    return units


class PcapngWriter(_Writer):
    """Write a pcapng file (draft-ietf-opsawg-pcapng).

    The first section starts at once; `new_section` starts another (with its own
    byte order and interfaces). `add_interface` returns the interface's number in
    the current section, which `write` and `write_batch` take. With
    ``in_place=True`` a path is written directly (see the module's docstring).
    """

    def __init__(self, target: str | os.PathLike | BinaryIO, *, byteorder: str = "<",
                 userappl: str | None = "tcpscope", in_place: bool = False) -> None:
        super().__init__(target, in_place=in_place)
        self.byteorder = "<"
        self._userappl = userappl
        self._ifaces: list[tuple[int, int, int, int]] = []  # (snaplen, base, exp, tsoffset)
        self.new_section(byteorder)

    def _option(self, code: int, value: bytes) -> bytes:
        return struct.pack(self.byteorder + "HH", code, len(value)) + _pad4(value)

    def _options(self, options: list[bytes]) -> bytes:
        if not options:
            return b""
        return b"".join(options) + struct.pack(self.byteorder + "HH", OPT_ENDOFOPT, 0)

    def write_block(self, block_type: int, body: bytes) -> None:
        """Any block: type, total length, body (padded to 32 bits), total length."""
        body = _pad4(bytes(body))
        total = len(body) + 12
        self._write(struct.pack(self.byteorder + "II", block_type, total) + body
                    + struct.pack(self.byteorder + "I", total))

    def new_section(self, byteorder: str = "<", *, version: tuple[int, int] = (1, 0)) -> None:
        """Start a section (Section Header Block); its interfaces start again from 0."""
        self.byteorder = _check_byteorder(byteorder)
        self._ifaces = []
        options = [self._option(SHB_USERAPPL, self._userappl.encode())] if self._userappl else []
        body = struct.pack(self.byteorder + "IHHq", BYTE_ORDER_MAGIC, version[0], version[1], -1)
        self.write_block(BT_SHB, body + self._options(options))

    def add_interface(self, linktype: int, name: str | None = None, *,
                      description: str | None = None, tsresol_exp: int = 9,
                      tsresol_base: int = 10, snaplen: int = 262144, tsoffset: int = 0,
                      fcs_len: int | None = None) -> int:
        """Describe an interface (IDB); returns its number in the current section."""
        if tsresol_base not in (2, 10) or not 0 <= tsresol_exp <= 127:
            raise ValueError("if_tsresol is base 10 or 2 with an exponent 0 .. 127")
        options = []
        if name is not None:
            options.append(self._option(IF_NAME, name.encode()))
        if description is not None:
            options.append(self._option(IF_DESCRIPTION, description.encode()))
        if (tsresol_base, tsresol_exp) != (10, 6):
            flag = 0x80 if tsresol_base == 2 else 0
            options.append(self._option(IF_TSRESOL, bytes([flag | tsresol_exp])))
        if fcs_len is not None:
            options.append(self._option(IF_FCSLEN, bytes([fcs_len])))
        if tsoffset:
            options.append(self._option(IF_TSOFFSET, struct.pack(self.byteorder + "q", tsoffset)))
        body = struct.pack(self.byteorder + "HHI", linktype, 0, snaplen)
        self.write_block(BT_IDB, body + self._options(options))
        self._ifaces.append((snaplen, tsresol_base, tsresol_exp, tsoffset))
        return len(self._ifaces) - 1

    def _interface(self, iface: int) -> tuple[int, int, int, int]:
        if not 0 <= iface < len(self._ifaces):
            raise ValueError(f"interface {iface} has not been added to this section")
        return self._ifaces[iface]

    def _packet_data(self, snaplen: int, data: bytes, origlen: int | None) -> tuple[bytes, int]:
        data = bytes(data)
        if origlen is None:
            origlen = len(data)
        if snaplen and len(data) > snaplen:
            data = data[:snaplen]
        return data, origlen

    def write(self, ts_ns: int, iface: int, data: bytes, origlen: int | None = None,
              flags: int | None = None) -> None:
        """An Enhanced Packet Block on interface `iface` of the current section."""
        snaplen, base, exp, tsoffset = self._interface(iface)
        data, origlen = self._packet_data(snaplen, data, origlen)
        units = _ts_units(ts_ns, base, exp, tsoffset)
        options = []
        if flags is not None:
            options.append(self._option(EPB_FLAGS, struct.pack(self.byteorder + "I", flags)))
        body = struct.pack(self.byteorder + "IIIII", iface, units >> 32, units & 0xFFFFFFFF,
                           len(data), origlen)
        self.write_block(BT_EPB, body + _pad4(data) + self._options(options))
        self.frames += 1

    def write_batch(self, batch: FrameBatch, iface: int, *, flush: bool = False) -> None:
        """Every frame of `batch` as an Enhanced Packet Block on interface `iface`.

        Built for the whole batch with numpy, no Python per frame: the headers are
        scattered into a 32-bit view, the packet bytes gathered with one index
        array. The interface's resolution must be decimal (if_tsresol 10^-0 ..
        10^-9). `flush` pushes the bytes to the file at once (live capture).
        """
        snaplen, base, exp, tsoffset = self._interface(iface)
        if base != 10 or exp > 9:
            raise ValueError("write_batch needs an interface with a resolution of 10^-0 .. "
                             "10^-9 s; write() handles any")
        n = len(batch)
        if n:
            self._write(self._encode_epbs(batch, iface, snaplen, exp, tsoffset))
            self.frames += n
        if flush:
            self.flush()

    def _encode_epbs(self, batch: FrameBatch, iface: int, snaplen: int, exp: int,
                     tsoffset: int) -> bytes:
        n = len(batch)
        caplen = batch.caplen.astype(np.int64)
        if snaplen:
            caplen = np.minimum(caplen, snaplen)
        units = (batch.ts_ns.astype(np.int64) - tsoffset * NS_PER_SEC) // 10 ** (9 - exp)
        if n and int(units.min()) < 0:
            raise ValueError("a timestamp is before this interface's offset")
        units = units.view(np.uint64)
        padded = (caplen + 3) & ~3
        total = EPB_HEADER + padded + 4
        starts = np.zeros(n, np.int64)
        np.cumsum(total[:-1], out=starts[1:])
        out = np.zeros(int(starts[-1] + total[-1]), np.uint8)
        words = out.view(self.byteorder + "u4")
        w = starts // 4
        words[w] = BT_EPB
        words[w + 1] = total
        words[w + 2] = iface
        words[w + 3] = (units >> np.uint64(32)).astype(np.uint32)
        words[w + 4] = (units & np.uint64(0xFFFFFFFF)).astype(np.uint32)
        words[w + 5] = caplen
        words[w + 6] = batch.origlen
        words[(starts + total) // 4 - 1] = total
        _gather(out, starts + EPB_HEADER, batch, caplen)
        return out.tobytes()

    def write_statistics(self, iface: int, ts_ns: int, *, starttime: int | None = None,
                         endtime: int | None = None, ifrecv: int | None = None,
                         ifdrop: int | None = None, osdrop: int | None = None) -> None:
        """An Interface Statistics Block: times in ns, counters as the pcapng options
        isb_ifrecv (packets received), isb_ifdrop (dropped by the interface) and
        isb_osdrop (dropped by the OS: the capture buffer was full). None: left out."""
        _snaplen, base, exp, tsoffset = self._interface(iface)

        def ts_words(t: int) -> bytes:
            units = _ts_units(t, base, exp, tsoffset)
            return struct.pack(self.byteorder + "II", units >> 32, units & 0xFFFFFFFF)

        options = []
        for code, value in ((ISB_STARTTIME, starttime), (ISB_ENDTIME, endtime)):
            if value is not None:
                options.append(self._option(code, ts_words(value)))
        for code, value in ((ISB_IFRECV, ifrecv), (ISB_IFDROP, ifdrop), (ISB_OSDROP, osdrop)):
            if value is not None:
                options.append(self._option(code, struct.pack(self.byteorder + "Q", value)))
        body = struct.pack(self.byteorder + "I", iface) + ts_words(ts_ns) + self._options(options)
        self.write_block(BT_ISB, body)
        self.flush()

    def write_simple(self, data: bytes, origlen: int | None = None) -> None:
        """A Simple Packet Block (interface 0, no timestamp)."""
        snaplen = self._interface(0)[0]
        data, origlen = self._packet_data(snaplen, data, origlen)
        self.write_block(BT_SPB, struct.pack(self.byteorder + "I", origlen) + data)
        self.frames += 1

    def write_obsolete(self, ts_ns: int, iface: int, data: bytes, origlen: int | None = None,
                       drops: int = 0) -> None:
        """An obsolete Packet Block (type 2), as very old writers made."""
        snaplen, base, exp, tsoffset = self._interface(iface)
        data, origlen = self._packet_data(snaplen, data, origlen)
        units = _ts_units(ts_ns, base, exp, tsoffset)
        body = struct.pack(self.byteorder + "HHIIII", iface, drops, units >> 32, units & 0xFFFFFFFF,
                           len(data), origlen)
        self.write_block(BT_PB, body + _pad4(data))
        self.frames += 1


def write_pcapng(target: str | os.PathLike | BinaryIO, frames: Iterable[tuple], linktype: int, *,
                 byteorder: str = "<", **interface_options) -> int:
    """Write (ts_ns, data) or (ts_ns, data, origlen) tuples to a one-interface pcapng."""
    with PcapngWriter(target, byteorder=byteorder) as writer:
        iface = writer.add_interface(linktype, **interface_options)
        for ts_ns, data, *rest in frames:
            writer.write(ts_ns, iface, data, *rest)
        return writer.frames
