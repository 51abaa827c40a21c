"""Capture filters on files: a pcap-filter expression, compiled by libpcap, run natively.

    f = CaptureFilter("tcp port 80 and host 10.0.0.1")   # FilterError: tcpdump's message
    keep = f.match(batch)                                # np.bool_ per frame

The expression means exactly what it means to ``tcpdump -r FILE EXPR``:
libpcap's own compiler (`pcap_compile`, optimised, netmask 0 as tcpdump uses
for files) turns it into a classic BPF program for each link type met (a
pcapng file can have several), and libpcap's own interpreter (`bpf_filter`)
runs it over the frames of a batch from C (_bpf.c): no Python call per frame.
The program is compiled on an offline handle, as tcpdump -r compiles it (a
capture file's header with no packet, of that link type and byte order):
libpcap compiles some primitives differently for files (``ip6`` on BSD
loopback accepts every BSD's AF_INET6; the loopback header is in the writer's
byte order).

libpcap is loaded with ctypes when the first filter is made, not linked at
build time: installing tcpscope needs no libpcap headers, and everything but
capture filters works without libpcap at all (tcpdump, which `live` runs,
brings it). Without it a filter is a `FilterError` saying so.
"""
from __future__ import annotations

import ctypes
import ctypes.util
from functools import lru_cache

import numpy as np

from tcpscope.capture import _bpf
from tcpscope.capture.batch import FrameBatch

__all__ = ["CaptureFilter", "FilterError"]

#: pcap-filter programs return the snapshot length for a match; any non-zero works.
SNAPLEN = 262144
#: A link type every expression that is valid at all compiles on: checked first,
#: so a syntax error stops a command before it reads anything.
LINKTYPE_ETHERNET = 1
#: Link types whose header libpcap reads in the file's byte order (BSD loopback, ENC).
HOST_ORDER_LINKTYPES = frozenset({0, 109})


class FilterError(ValueError):
    """The expression does not compile (the message is libpcap's, as tcpdump prints it)."""


class _BpfInsn(ctypes.Structure):
    _fields_ = [("code", ctypes.c_ushort), ("jt", ctypes.c_ubyte), ("jf", ctypes.c_ubyte),
                ("k", ctypes.c_uint)]


class _BpfProgram(ctypes.Structure):
    _fields_ = [("bf_len", ctypes.c_uint), ("bf_insns", ctypes.POINTER(_BpfInsn))]


@lru_cache(maxsize=1)
def _libpcap() -> ctypes.CDLL:
    name = ctypes.util.find_library("pcap")
    for candidate in ([name] if name else []) + ["libpcap.so.1", "libpcap.so.0.8", "libpcap.so"]:
        try:
            lib = ctypes.CDLL(candidate)
            break
        except OSError:
            continue
    else:
        raise FilterError("capture filters need libpcap (the library tcpdump uses): "
                          "install libpcap0.8 (Debian) or libpcap")
    lib.pcap_open_offline.restype = ctypes.c_void_p
    lib.pcap_open_offline.argtypes = [ctypes.c_char_p, ctypes.c_char_p]
    lib.pcap_compile.restype = ctypes.c_int
    lib.pcap_compile.argtypes = [ctypes.c_void_p, ctypes.POINTER(_BpfProgram), ctypes.c_char_p,
                                 ctypes.c_int, ctypes.c_uint32]
    lib.pcap_geterr.restype = ctypes.c_char_p
    lib.pcap_geterr.argtypes = [ctypes.c_void_p]
    lib.pcap_freecode.argtypes = [ctypes.POINTER(_BpfProgram)]
    lib.pcap_close.argtypes = [ctypes.c_void_p]
    return lib


def compile_filter(expression: str, linktype: int, swapped: bool = False) -> bytes:
    """The BPF program (bpf_insn array, host order) of `expression` for frames of
    `linktype` (a file's LINKTYPE_* value) from a file written in the other byte order
    than this host's (`swapped`). FilterError with libpcap's message."""
    import struct
    import sys
    import tempfile

    lib = _libpcap()
    order = ">" if (sys.byteorder == "little") == swapped else "<"
    header = struct.pack(order + "IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, SNAPLEN, linktype)
    errbuf = ctypes.create_string_buffer(512)
    with tempfile.NamedTemporaryFile(prefix="tcpscope-bpf-", suffix=".pcap") as tmp:
        tmp.write(header)
        tmp.flush()
        handle = lib.pcap_open_offline(tmp.name.encode(), errbuf)
    if not handle:
        raise FilterError(f"libpcap cannot compile for link type {linktype}: "
                          f"{errbuf.value.decode(errors='replace')}")
    try:
        prog = _BpfProgram()
        if lib.pcap_compile(handle, ctypes.byref(prog), expression.encode(), 1, 0) != 0:
            raise FilterError(lib.pcap_geterr(handle).decode(errors="replace"))
        try:
            return ctypes.string_at(prog.bf_insns, prog.bf_len * ctypes.sizeof(_BpfInsn))
        finally:
            lib.pcap_freecode(ctypes.byref(prog))
    finally:
        lib.pcap_close(handle)


class CaptureFilter:
    """A pcap-filter expression, compiled once per link type as frames of it arrive."""

    def __init__(self, expression: str) -> None:
        self.expression = expression
        self._programs: dict[tuple[int, bool], bytes] = {}
        try:
            self._programs[LINKTYPE_ETHERNET, False] = compile_filter(expression,
                                                                      LINKTYPE_ETHERNET)
        except FilterError as exc:
            # Only what cannot be right on any link type stops here; the rest (an
            # expression about a link layer) is judged per link type as it comes.
            if "syntax error" in str(exc) or "libpcap" in str(exc):
                raise
        self._fn = ctypes.cast(_libpcap().bpf_filter, ctypes.c_void_p).value

    def program(self, linktype: int, swapped: bool = False) -> bytes:
        key = (linktype, swapped and linktype in HOST_ORDER_LINKTYPES)
        prog = self._programs.get(key)
        if prog is None:
            try:
                prog = self._programs[key] = compile_filter(self.expression, *key)
            except FilterError as exc:
                from tcpscope.wire.linktypes import linktype_name

                raise FilterError(f"{exc} (link type {linktype_name(linktype)})") from None
        return prog

    def match(self, batch: FrameBatch, swapped: np.ndarray | None = None) -> np.ndarray:
        """One bool per frame of `batch`: does it pass the filter? `swapped`: per frame,
        whether its file was written in the other byte order (None: none was)."""
        n = len(batch)
        out = np.zeros(n, dtype=bool)
        if not n:
            return out
        lt = np.asarray(batch.linktype).astype(np.int64)
        if swapped is not None:
            lt = lt | (swapped.astype(np.int64) << 32)
        kinds = np.unique(lt)
        offset = np.ascontiguousarray(batch.offset, np.int64)
        caplen = np.ascontiguousarray(batch.caplen, np.uint32)
        origlen = np.ascontiguousarray(batch.origlen, np.uint32)
        for kind in kinds.tolist():
            rows = np.arange(n, dtype=np.int64) if kinds.size == 1 else \
                np.flatnonzero(lt == kind).astype(np.int64)
            hit = _bpf.run(self._fn, self.program(kind & 0xFFFF, bool(kind >> 32)), batch.data,
                           offset, caplen, origlen, rows)
            out[rows] = np.frombuffer(hit, dtype=np.uint8).astype(bool)
        return out
