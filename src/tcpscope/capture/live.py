"""Live capture: frames from an interface, as they happen, in small batches.

The mechanism (docs/live.md says why): **tcpdump is the privileged capture
helper**. It opens the interface, compiles the pcap-filter expression with
libpcap, and writes a pcap stream to a pipe we created::

    tcpdump -i IFACE -w - -U --immediate-mode -s SNAPLEN -B KIB -n
            --time-stamp-precision nano [-c N] -- FILTER...

``--immediate-mode`` hands each packet to tcpdump as soon as the kernel has
it (no block timeout); ``-U`` flushes each packet into the pipe. This process
reads the pipe with ``poll`` + ``os.read``: whatever bytes have arrived (one
packet or a megabyte) are scanned by the same native pcap scanner the file
reader uses, and every *complete* record becomes part of a `FrameBatch` at
once. The file reader (reader.py) fills whole chunks before it scans, which is
right for files and wrong for a pipe that delivers a packet now and the next
one in a minute; that is why this module has its own loop rather than a flag
on the file readers.

When the capture stops (``--count`` reached, `LiveCapture.stop`, or the
helper dying) tcpdump prints its statistics on standard error; they are
parsed into `CaptureStats`, including the kernel's drop counter. A helper that
cannot start says why on standard error too; that becomes a `LiveCaptureError`
whose ``kind`` tells the CLI what to print (``privilege``, ``no_device``,
``filter``, ``helper_missing``, ``helper_failed``).

What was read is saved with the pcapng writer (writer.py: `PcapngWriter`
in place, `write_batch`, `write_statistics` for the drop counters).
"""
from __future__ import annotations

import fcntl
import os
import re
import select
import shutil
import signal
import struct
import subprocess
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from tcpscope.capture import _scan
from tcpscope.capture.batch import FrameBatch, Interface
from tcpscope.capture.errors import CaptureError
from tcpscope.capture.pcap import LENGTHS_AS_STORED, PCAP_MAGICS, RECORD_HEADER_SIZE, caplen_limit
from tcpscope.capture.reader import ScanColumns

__all__ = [
    "CaptureStats",
    "LiveCapture",
    "LiveCaptureError",
    "helper_command",
    "parse_helper_stats",
]

# Bytes kept of each packet: every header (link + IPv6 + TCP with options is at
# most ~140 bytes) and the start of the payload. Not tcpdump's 262144: in
# immediate mode libpcap's ring (TPACKET_V2) has fixed-size slots of about
# min(snaplen, MTU) bytes, so on lo (MTU 65536) a 32 MiB ring holds only ~500
# packets and drops at 100k packets/s; with 256 it holds ~100 000 (docs/live.md).
DEFAULT_SNAPLEN = 256
FULL_SNAPLEN = 262144
# The kernel ring buffer tcpdump asks for (-B, KiB). libpcap's default is 2 MiB;
# 32 MiB absorbs bursts of a few hundred thousand small packets while this
# process is busy printing.
DEFAULT_BUFFER_KIB = 32 * 1024
# Pipe capacity asked for with F_SETPIPE_SZ (Linux caps it at
# /proc/sys/fs/pipe-max-size, 1 MiB by default); the default 64 KiB pipe fills
# in well under a millisecond at 100k packets/s.
PIPE_SIZE = 1 << 20
READ_SIZE = 1 << 20
DEFAULT_BATCH_FRAMES = 8192
# Bytes that arrived are scanned within this many seconds, or as soon as this
# many have piled up: low latency for a person, big batches at high rates.
DEFAULT_LATENCY = 0.005
COALESCE_BYTES = 256 * 1024
PCAP_FILE_HEADER = 24

_STAT_PATTERNS = {
    "captured": re.compile(r"^(\d+) packets? captured", re.M),
    "received_by_filter": re.compile(r"^(\d+) packets? received by filter", re.M),
    "dropped_by_kernel": re.compile(r"^(\d+) packets? dropped by kernel", re.M),
    "dropped_by_interface": re.compile(r"^(\d+) packets? dropped by interface", re.M),
}


class LiveCaptureError(CaptureError):
    """A live capture could not start (or its helper failed).

    ``kind``: ``privilege`` (not allowed to capture), ``no_device`` (no such
    interface), ``filter`` (the filter expression is wrong: a usage error),
    ``helper_missing`` (tcpdump is not installed), ``helper_failed``.
    """

    kind: str = "helper_failed"

    @classmethod
    def make(cls, iface: str, kind: str, reason: str) -> LiveCaptureError:
        exc = cls.for_file(iface, reason)
        exc.kind = kind
        return exc


@dataclass(frozen=True, slots=True)
class CaptureStats:
    """What the capture helper counted (tcpdump's closing lines; None = not printed)."""

    captured: int | None = None  # packets written to the pipe
    received_by_filter: int | None = None  # seen by the filter (on lo: each packet twice)
    dropped_by_kernel: int | None = None  # no room in the ring buffer: the drop counter
    dropped_by_interface: int | None = None  # the NIC / driver's own drops, when known

    @property
    def dropped(self) -> int | None:
        if self.dropped_by_kernel is None and self.dropped_by_interface is None:
            return None
        return (self.dropped_by_kernel or 0) + (self.dropped_by_interface or 0)


def parse_helper_stats(stderr_text: str) -> CaptureStats:
    """tcpdump's statistics lines ("N packets dropped by kernel", ...) as `CaptureStats`."""
    values = {}
    for key, pattern in _STAT_PATTERNS.items():
        m = pattern.search(stderr_text)
        values[key] = int(m.group(1)) if m else None
    return CaptureStats(**values)


def classify_helper_error(iface: str, stderr_text: str, helper: str = "tcpdump") -> LiveCaptureError:
    """One `LiveCaptureError` from what the helper said before it gave up."""
    text = " ".join(stderr_text.split())
    low = text.lower()
    if "permission" in low or "operation not permitted" in low:
        return LiveCaptureError.make(
            iface, "privilege",
            f"not allowed to capture (needs root, or CAP_NET_RAW and CAP_NET_ADMIN for {helper}: "
            f"setcap cap_net_raw,cap_net_admin=eip $(command -v {helper}))")
    if "no such device" in low or "doesn't exist" in low:
        return LiveCaptureError.make(iface, "no_device", "no such interface (see `ip link`)")
    if "filter" in low and ("syntax" in low or "parse" in low or "illegal" in low or "can't" in low):
        detail = text.split("tcpdump: ", 1)[-1]
        return LiveCaptureError.make(iface, "filter", f"bad filter expression: {detail}")
    return LiveCaptureError.make(iface, "helper_failed",
                                 f"{helper} failed: {text or 'no message'}")


def helper_command(iface: str, filter_words: Sequence[str] = (), *, snaplen: int = DEFAULT_SNAPLEN,
                   buffer_kib: int = DEFAULT_BUFFER_KIB, count: int | None = None,
                   netns: str | None = None, tcpdump: str = "tcpdump") -> list[str]:
    """The helper's command line (``ip netns exec NAME`` first when netns is given)."""
    cmd = [tcpdump, "-i", iface, "-w", "-", "-U", "--immediate-mode", "-s", str(snaplen),
           "-B", str(buffer_kib), "-n", "--time-stamp-precision", "nano"]
    if count is not None:
        cmd += ["-c", str(count)]
    if filter_words:
        cmd += ["--", *filter_words]
    if netns:
        cmd = ["ip", "netns", "exec", netns, *cmd]
    return cmd


class LiveCapture:
    """Frames from a live interface, through the tcpdump helper, in small batches.

    ::

        with LiveCapture("lo", ["tcp", "port", "5000"]) as cap:
            cap.wait_ready()                  # the helper is listening
            for batch in cap.batches(tick=0.2):
                ...                           # FrameBatch; empty when `tick` passed quietly
            cap.stats                         # CaptureStats, once the helper has exited

    `stop` (safe from a signal handler) asks the helper to finish: it flushes,
    prints its statistics and exits; `batches` then delivers what is left in
    the pipe and ends. ``interfaces`` holds one `Interface` (pcap has one link
    type) once the pcap header has arrived.
    """

    def __init__(self, iface: str, filter_words: Sequence[str] = (), *,
                 snaplen: int = DEFAULT_SNAPLEN, buffer_kib: int = DEFAULT_BUFFER_KIB,
                 count: int | None = None, netns: str | None = None,
                 batch_frames: int = DEFAULT_BATCH_FRAMES, tcpdump: str = "tcpdump",
                 command: Sequence[str] | None = None) -> None:
        self.iface = iface
        self.filter_words = list(filter_words)
        self.interfaces: list[Interface] = []
        self.stats: CaptureStats | None = None
        self.counters = {"frames": 0, "bytes_read": 0, "reads": 0}
        self._helper_name = os.path.basename(tcpdump)
        self._cmd = list(command) if command is not None else helper_command(
            iface, filter_words, snaplen=snaplen, buffer_kib=buffer_kib, count=count,
            netns=netns, tcpdump=tcpdump)
        self._columns = ScanColumns(max(1, int(batch_frames)))
        self._native_counters = np.zeros(len(_scan.COUNTER_NAMES), np.int64)
        self._buf = b""
        self._pos = 0
        self._header: tuple[str, bool, int, int] | None = None  # byteorder, ns, snaplen, linktype
        self._next_frame = 1
        self._stderr: list[str] = []
        self._ready = threading.Event()
        self._stderr_done = threading.Event()
        self._stopping = False
        self._eof = False
        self._start()

    # -- process ----------------------------------------------------------------

    def _start(self) -> None:
        exe = self._cmd[0]
        if shutil.which(exe) is None:
            raise LiveCaptureError.make(self.iface, "helper_missing",
                                        f"{exe} is not installed (or not on PATH); "
                                        "scripts/setup installs what tcpscope runs")
        rfd, wfd = os.pipe()
        try:
            fcntl.fcntl(wfd, fcntl.F_SETPIPE_SZ, PIPE_SIZE)
        except OSError:
            pass  # a smaller pipe still works, it just absorbs less
        try:
            # Its own session: a Ctrl-C on the terminal reaches only us, and we
            # stop the helper in order (flush, statistics, exit), then drain.
            self._proc = subprocess.Popen(self._cmd, stdin=subprocess.DEVNULL, stdout=wfd,
                                          stderr=subprocess.PIPE, start_new_session=True)
        except OSError as exc:
            os.close(rfd)
            os.close(wfd)
            raise LiveCaptureError.make(self.iface, "helper_failed",
                                        f"cannot start {exe}: {exc.strerror or exc}") from None
        os.close(wfd)
        self._fd = rfd
        self._stderr_thread = threading.Thread(target=self._read_stderr, daemon=True,
                                               name="tcpscope-helper-stderr")
        self._stderr_thread.start()

    def _read_stderr(self) -> None:
        assert self._proc.stderr is not None
        for raw in self._proc.stderr:
            line = raw.decode("utf-8", "replace")
            self._stderr.append(line)
            if "listening on" in line:
                self._ready.set()
        self._stderr_done.set()
        self._ready.set()  # wake waiters: the helper has gone

    @property
    def helper_stderr(self) -> str:
        return "".join(self._stderr)

    @property
    def pid(self) -> int:
        return self._proc.pid

    def wait_ready(self, timeout: float = 10.0) -> None:
        """Block until the helper listens; raise `LiveCaptureError` if it failed to start."""
        self._ready.wait(timeout)
        if any("listening on" in line for line in self._stderr):
            return
        if self._stderr_done.wait(2.0 if self._proc.poll() is not None else 0.0) or \
                self._proc.poll() is not None:
            self._proc.wait()
            self._stderr_done.wait(2.0)
            raise classify_helper_error(self.iface, self.helper_stderr, self._helper_name)
        raise LiveCaptureError.make(self.iface, "helper_failed",
                                    f"{self._helper_name} did not start within {timeout:g} s")

    def stop(self) -> None:
        """Ask the helper to finish (SIGINT: it flushes and prints its statistics)."""
        if self._stopping:
            return
        self._stopping = True
        if self._proc.poll() is None:
            try:
                os.killpg(self._proc.pid, signal.SIGINT)
            except ProcessLookupError:
                pass

    def kill(self) -> None:
        """Stop the helper at once (a second Ctrl-C)."""
        if self._proc.poll() is None:
            try:
                os.killpg(self._proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

    def close(self) -> None:
        self.stop()
        try:
            self._proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.kill()
            self._proc.wait()
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
        self._stderr_done.wait(2.0)
        if self.stats is None:
            self.stats = parse_helper_stats(self.helper_stderr)

    def __enter__(self) -> LiveCapture:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @property
    def returncode(self) -> int | None:
        return self._proc.poll()

    # -- reading ------------------------------------------------------------------

    def batches(self, tick: float | None = 0.2, *,
                latency: float = DEFAULT_LATENCY) -> Iterator[FrameBatch]:
        """Yield frames as they arrive; an empty batch every `tick` seconds of silence.

        Bytes are scanned at most `latency` seconds after they arrived (or at
        once when `COALESCE_BYTES` have piled up): a packet alone reaches the
        caller within a few milliseconds, and at high rates one batch holds
        hundreds of packets, so the per-batch cost (dissection, analysis, the
        Python around them) is paid once per batch, not once per packet.
        Ends when the helper closes the pipe.
        """
        poller = select.poll()
        poller.register(self._fd, select.POLLIN | select.POLLHUP | select.POLLERR)
        last_yield = time.monotonic()
        pending_since: float | None = None
        while not self._eof:
            now = time.monotonic()
            waits = []
            if pending_since is not None:
                waits.append(pending_since + latency - now)
            if tick is not None:
                waits.append(last_yield + tick - now)
            timeout_ms = None if not waits else max(0, int(min(waits) * 1000 + 0.999))
            if poller.poll(timeout_ms):
                data = os.read(self._fd, READ_SIZE)
                if not data:
                    self._eof = True
                else:
                    self.counters["bytes_read"] += len(data)
                    self.counters["reads"] += 1
                    self._append(data)
                    if pending_since is None:
                        pending_since = time.monotonic()
            now = time.monotonic()
            if pending_since is not None and (
                    self._eof or now - pending_since >= latency
                    or len(self._buf) - self._pos >= COALESCE_BYTES):
                pending_since = None
                for batch in self._scan():
                    last_yield = now
                    yield batch
            if tick is not None and now - last_yield >= tick:
                last_yield = now
                yield self._empty_batch()
        self._finish()

    def _finish(self) -> None:
        try:
            self._proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.kill()
            self._proc.wait()
        self._stderr_done.wait(5.0)
        self.stats = parse_helper_stats(self.helper_stderr)
        if self._header is None and self._proc.returncode not in (0, None) and not self._stopping:
            raise classify_helper_error(self.iface, self.helper_stderr, self._helper_name)
        if self._pos < len(self._buf) and self._header is not None:
            # The helper was killed inside a record: what arrived of it is lost.
            self.counters["partial_record_at_end"] = len(self._buf) - self._pos

    def _append(self, data: bytes) -> None:
        if self._pos:
            self._buf = self._buf[self._pos:] + data
            self._pos = 0
        elif self._buf:
            self._buf += data
        else:
            self._buf = data

    def _parse_header(self) -> bool:
        if len(self._buf) - self._pos < PCAP_FILE_HEADER:
            return False
        head = self._buf[self._pos:self._pos + 4]
        if head not in PCAP_MAGICS or PCAP_MAGICS[head][0] != "pcap":
            raise LiveCaptureError.make(self.iface, "helper_failed",
                                        f"the helper wrote something that is not pcap: "
                                        f"{head.hex(' ')}")
        _fmt, byteorder, nanosecond = PCAP_MAGICS[head]
        _major, _minor, _zone, _sig, snaplen, linktype_field = struct.unpack_from(
            byteorder + "HHiIII", self._buf, self._pos + 4)
        linktype = linktype_field & 0xFFFF
        self._header = (byteorder, nanosecond, snaplen, linktype)
        self.interfaces.append(Interface(index=0, linktype=linktype, snaplen=snaplen,
                                         name=self.iface, tsresol_base=10,
                                         tsresol_exp=9 if nanosecond else 6))
        self._pos += PCAP_FILE_HEADER
        return True

    def _scan(self) -> Iterator[FrameBatch]:
        if self._header is None and not self._parse_header():
            return
        assert self._header is not None
        byteorder, nanosecond, snaplen, linktype = self._header
        while True:
            status, pos, n, _need, message = _scan.scan_pcap(
                self._buf, self._pos, self._columns.as_tuple, self._native_counters,
                max_frames=len(self._columns.offset), big_endian=byteorder == ">",
                nanosecond=nanosecond, header_size=RECORD_HEADER_SIZE,
                lengths_mode=LENGTHS_AS_STORED, snaplen=snaplen,
                caplen_limit=caplen_limit(snaplen), linktype=linktype)
            self._pos = pos
            if n:
                yield self._batch(n)
            if status == _scan.DAMAGE:
                self.stop()
                raise LiveCaptureError.make(self.iface, "helper_failed",
                                            f"the helper's pcap stream is damaged: {message}")
            if status != _scan.FULL:
                return

    def _batch(self, n: int) -> FrameBatch:
        c = self._columns
        batch = FrameBatch(data=self._buf, offset=c.offset[:n].copy(), caplen=c.caplen[:n].copy(),
                           origlen=c.origlen[:n].copy(), ts_ns=c.ts_ns[:n].copy(),
                           iface=c.iface[:n].copy(), linktype=c.linktype[:n].copy(),
                           first_frame=self._next_frame)
        self._next_frame += n
        self.counters["frames"] += n
        return batch

    def _empty_batch(self) -> FrameBatch:
        return FrameBatch(data=b"", offset=np.empty(0, np.int64), caplen=np.empty(0, np.uint32),
                          origlen=np.empty(0, np.uint32), ts_ns=np.empty(0, np.int64),
                          iface=np.empty(0, np.uint16), linktype=np.empty(0, np.uint16),
                          first_frame=self._next_frame)
