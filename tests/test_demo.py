"""`tcpscope demo` on the bundled capture: the listing and the facts of its summary."""
from __future__ import annotations

import io
import subprocess
import sys

from tcpscope.present.demo import demo_capture, run_demo, tcp_packets


def test_demo_capture_is_the_classic_experiment():
    with demo_capture() as path:
        packets = tcp_packets(path)
    assert len(packets) == 18
    payloads = [p.payload for p in packets if p.payload]
    assert payloads == [b"Welcome!", b"Alice", b"Hello, Alice!", b"Bob", b"Hello, Bob!", b"exit"]
    assert {p.dport for p in packets if p.flags == 0x002} == {5000}


def test_demo_output_lists_every_packet_and_summarises():
    out = io.StringIO()
    run_demo(out)
    text = out.getvalue()
    assert text.count(" IP 127.0.0.1.") == 18
    summary = " ".join(text.split())  # undo the wrapping
    assert "acknowledges 2103642270 = the client's ISN + 1" in summary
    assert "The client sent 12 bytes in 3 segments (\"Alice\", \"Bob\", \"exit\")" in summary
    assert "The server sent 32 bytes in 3 segments" in summary
    assert "The client, which closed first, ends in TIME_WAIT" in summary
    assert all(len(line) <= 100 for line in text.split("\n\n", 1)[1].splitlines()
               if not line.startswith(("0", "1", "2")))


def test_demo_command_runs():
    res = subprocess.run([sys.executable, "-m", "tcpscope", "demo"], capture_output=True, text=True,
                         timeout=60)
    assert res.returncode == 0, res.stderr
    assert "3-way handshake" in res.stdout
