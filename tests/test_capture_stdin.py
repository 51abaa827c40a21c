"""Standard input and pipes: detection on a non-seekable stream, compressed too."""
from __future__ import annotations

import gzip
import io
import lzma
import os
import subprocess
import sys
import threading

import pytest
import zstandard

from tcpscope.capture import PcapngWriter, open_capture, write_pcap

ETHERNET = 1
T0 = 1_600_000_000_000_000_000

READ_STDIN = """
import sys
from tcpscope.capture import CaptureError, open_capture
try:
    with open_capture("-", chunk_size=1000) as cap:
        n = sum(len(b) for b in cap)
    print(cap.name, cap.format, cap.compression, n, cap.damage)
except CaptureError as exc:
    print("error:", exc)
"""


def pcap_bytes(n: int = 200) -> bytes:
    out = io.BytesIO()
    write_pcap(out, [(T0 + i, bytes(range(i % 200))) for i in range(n)], ETHERNET, nanosecond=True)
    return out.getvalue()


def pcapng_bytes(n: int = 200) -> bytes:
    out = io.BytesIO()
    with PcapngWriter(out, byteorder=">") as w:
        w.add_interface(ETHERNET, "eth0")
        for i in range(n):
            w.write(T0 + i, 0, bytes(range(i % 200)))
    return out.getvalue()


def run_on_stdin(data: bytes) -> str:
    result = subprocess.run([sys.executable, "-c", READ_STDIN], input=data, capture_output=True,
                            timeout=60, check=True)
    return result.stdout.decode().strip()


@pytest.mark.parametrize("compress, kind", [
    (lambda d: d, None),
    (gzip.compress, "gzip"),
    (lambda d: zstandard.ZstdCompressor().compress(d), "zstd"),
    (lzma.compress, "xz"),
])
@pytest.mark.parametrize("make, fmt", [(pcap_bytes, "pcap"), (pcapng_bytes, "pcapng")])
def test_capture_on_stdin(make, fmt, compress, kind):
    assert run_on_stdin(compress(make())) == f"- {fmt} {kind} 200 None"


def test_truncated_capture_on_stdin():
    out = run_on_stdin(pcap_bytes()[:-5])
    assert out.startswith("- pcap None 199 capture damaged at byte")
    assert "file ends inside a record" in out


def test_not_a_capture_on_stdin():
    assert run_on_stdin(b"hello\n") == "error: -: not a capture file (pcap or pcapng): starts with 68 65 6c 6c"
    assert run_on_stdin(b"") == "error: -: not a capture file (pcap or pcapng): the file is empty"


def test_pipe_file_object_fed_slowly_by_a_thread():
    data = gzip.compress(pcapng_bytes(500))
    read_fd, write_fd = os.pipe()

    def feed():
        with os.fdopen(write_fd, "wb", buffering=0) as w:
            for i in range(0, len(data), 999):
                w.write(data[i:i + 999])

    feeder = threading.Thread(target=feed)
    feeder.start()
    with os.fdopen(read_fd, "rb", buffering=0) as pipe:
        with open_capture(pipe, chunk_size=4096) as cap:
            frames = list(cap.frames())
    feeder.join(timeout=30)
    assert len(frames) == 500 and cap.damage is None and cap.compression == "gzip"
    assert frames[499].data == bytes(range(499 % 200))
